"""Lexical diversity: vocabulary size, distinct-n and self-BLEU over tokenised documents.

Every figure here except the mean length grows or shrinks with the number of documents, so two sets
are only comparable on samples of one size (`analysis.summary` takes care of that).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\w+")
BLEU_ORDER = 4
_EPSILON = 0.1  # numerator for an n-gram order with no match (Chen & Cherry's method 1, as in Texygen)

Tokens = list[str]


def tokenize(text: str) -> Tokens:
    return _WORD.findall(text.casefold())


def ngrams(tokens: Tokens, n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(documents: Sequence[Tokens], n: int) -> float:
    """Distinct n-grams over all n-grams (Li et al., 2016); 0 when no document has n tokens."""
    grams = [gram for tokens in documents for gram in ngrams(tokens, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(documents: Sequence[Tokens], order: int = BLEU_ORDER) -> float:
    """Mean BLEU of each document against all the others as references (Zhu et al., 2018).

    1 when every document has an exact copy in the set; near 0 when documents share no n-grams.
    Exact and linear in the corpus size: the clip count of an n-gram against "all other documents"
    is its highest count in any document, or the second highest when the document itself holds the
    only highest count. A document shorter than `order` is scored on the orders it has.
    """
    if len(documents) < 2:
        return 0.0
    counts = [{n: Counter(ngrams(tokens, n)) for n in range(1, order + 1)} for tokens in documents]
    best: dict[tuple[str, ...], list[int]] = {}  # n-gram -> [highest count, documents with it, second]
    for document in counts:
        for counter in document.values():
            for gram, count in counter.items():
                top = best.setdefault(gram, [0, 0, 0])
                if count > top[0]:
                    top[:] = [count, 1, top[0]]
                elif count == top[0]:
                    top[1] += 1
                elif count > top[2]:
                    top[2] = count
    lengths = sorted(len(tokens) for tokens in documents)
    scores = []
    for tokens, document in zip(documents, counts, strict=True):
        if not tokens:
            continue
        log_precision = 0.0
        orders = min(order, len(tokens))
        for n in range(1, orders + 1):
            matched = 0
            for gram, count in document[n].items():
                top, holders, second = best[gram]
                others = second if count == top and holders == 1 else top
                matched += min(count, others)
            log_precision += math.log((matched or _EPSILON) / (len(tokens) - n + 1)) / orders
        scores.append(
            _brevity_penalty(len(tokens), _closest_other_length(lengths, len(tokens)))
            * math.exp(log_precision)
        )
    return sum(scores) / len(scores) if scores else 0.0


def _closest_other_length(lengths: list[int], length: int) -> int:
    """The reference length closest to `length` (the shorter on a tie) among the other documents;
    `lengths` is sorted and holds this document's length, so its first occurrence is this one."""
    i = bisect_left(lengths, length)
    neighbours = [lengths[j] for j in (i - 1, i + 1) if 0 <= j < len(lengths)]
    return min(neighbours, key=lambda other: (abs(other - length), other))


def _brevity_penalty(length: int, reference: int) -> float:
    return 1.0 if length >= reference else math.exp(1 - reference / length)


@dataclass(frozen=True)
class LexicalStats:
    documents: int
    mean_tokens: float
    vocabulary: int
    distinct_1: float
    distinct_2: float
    self_bleu: float


def lexical_stats(texts: Sequence[str]) -> LexicalStats:
    documents = [tokenize(text) for text in texts]
    return LexicalStats(
        documents=len(documents),
        mean_tokens=sum(map(len, documents)) / len(documents) if documents else 0.0,
        vocabulary=len({token for tokens in documents for token in tokens}),
        distinct_1=distinct_n(documents, 1),
        distinct_2=distinct_n(documents, 2),
        self_bleu=self_bleu(documents),
    )
