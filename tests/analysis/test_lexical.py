import math
import random
from collections import Counter

import pytest

from targen_dspy.analysis.lexical import distinct_n, lexical_stats, ngrams, self_bleu, tokenize


def test_tokenize_ignores_case_and_punctuation():
    assert tokenize("The cat, the CAT!") == ["the", "cat", "the", "cat"]


def test_distinct_n_counts_repeats():
    documents = [["a", "b", "a", "b"]]
    assert distinct_n(documents, 1) == 2 / 4
    assert distinct_n(documents, 2) == 2 / 3  # ab, ba, ab
    assert distinct_n([["a"]], 2) == 0.0


def test_identical_sets_have_identical_stats_and_doubling_halves_distinct_n():
    texts = ["A premise about rivers.", "Another one about mountains and rivers.", "Snow falls."]
    assert lexical_stats(texts) == lexical_stats(list(texts))
    single, doubled = lexical_stats(texts), lexical_stats(texts + texts)
    assert doubled.distinct_1 == pytest.approx(single.distinct_1 / 2)
    assert doubled.distinct_2 == pytest.approx(single.distinct_2 / 2)
    assert doubled.vocabulary == single.vocabulary


def test_self_bleu_of_duplicated_documents_is_one():
    documents = [tokenize(t) for t in ["the cat sat on the mat", "a dog ran far away today"]] * 2
    assert self_bleu(documents) == pytest.approx(1.0)


def test_self_bleu_of_disjoint_documents_is_the_smoothing_floor():
    documents = [["a", "b", "c", "d"], ["e", "f", "g", "h"], ["i", "j", "k", "l"]]
    # no n-gram matches: each order scores 0.1 / (number of n-grams) = 0.1/4, 0.1/3, 0.1/2, 0.1/1
    assert self_bleu(documents) == pytest.approx(0.1 / 24**0.25)


def test_self_bleu_brevity_penalty_and_partial_matches():
    long, short = tokenize("a b c d e f"), tokenize("a b c d")
    # short against long: all n-grams match, but 4 < 6 tokens; long against short: 4/6, 3/5, 2/4, 1/3
    expected = (math.exp(1 - 6 / 4) + (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25) / 2
    assert self_bleu([long, short]) == pytest.approx(expected)


def _naive_bleu(hypothesis: list[str], references: list[list[str]]) -> float:
    """Sentence BLEU-4 with method-1 smoothing, straight from the definition."""
    orders = min(4, len(hypothesis))
    log_precision = 0.0
    for n in range(1, orders + 1):
        counts = Counter(ngrams(hypothesis, n))
        clip = Counter()
        for reference in references:
            clip |= Counter(ngrams(reference, n))
        matched = sum(min(count, clip[gram]) for gram, count in counts.items())
        log_precision += math.log((matched or 0.1) / (len(hypothesis) - n + 1)) / orders
    closest = min((len(r) for r in references), key=lambda length: (abs(length - len(hypothesis)), length))
    penalty = 1.0 if len(hypothesis) >= closest else math.exp(1 - closest / len(hypothesis))
    return penalty * math.exp(log_precision)


def test_self_bleu_matches_the_quadratic_definition():
    rng = random.Random(7)
    documents = [[rng.choice("abcdef") for _ in range(rng.randint(2, 9))] for _ in range(30)]
    expected = [_naive_bleu(d, documents[:i] + documents[i + 1 :]) for i, d in enumerate(documents)]
    assert self_bleu(documents) == pytest.approx(sum(expected) / len(expected))
