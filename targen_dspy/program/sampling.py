"""Choosing the references of the next self-reference round, by one of four strategies.

Each strategy returns the reference sets of the next round's calls: one set per call. Similarity is
cosine between sentence embeddings (`embed`); random and tree need none.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Record = dict[str, Any]
Embed = Callable[[list[str]], np.ndarray]
STRATEGIES = ("random", "contrastive", "similar", "tree")


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def by_similarity_to_batch(pool: Sequence[str], batch: Sequence[str], embed: Embed) -> list[int]:
    """Pool indices ordered from most to least similar to the batch (mean cosine to its members)."""
    pool_vectors, batch_vectors = _unit(embed(list(pool))), _unit(embed(list(batch)))
    similarity = (pool_vectors @ batch_vectors.T).mean(axis=1)
    return [int(i) for i in np.argsort(-similarity, kind="stable")]


def next_references(
    strategy: str,
    pool: Sequence[Record],
    last_batch: Sequence[Record],
    k: int,
    rng: random.Random,
    text: Callable[[Record], str],
    embed: Embed | None = None,
) -> list[list[Record]]:
    """The reference sets for the next round.

    - random: one call with k examples drawn from everything generated so far;
    - similar / contrastive: one call with the k pool examples most / least similar to the last batch
      (the last batch itself excluded);
    - tree: breadth-first, one call per example of the last batch, with that example as its reference.
    """
    if strategy == "tree":
        return [[record] for record in last_batch]
    if strategy == "random":
        return [rng.sample(list(pool), min(k, len(pool)))]
    if strategy not in ("similar", "contrastive"):
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if embed is None:
        raise ValueError(f"the {strategy} strategy needs sentence embeddings")
    last_ids = {id(record) for record in last_batch}
    candidates = [record for record in pool if id(record) not in last_ids] or list(pool)
    order = by_similarity_to_batch([text(r) for r in candidates], [text(r) for r in last_batch], embed)
    if strategy == "contrastive":
        order = order[::-1]
    return [[candidates[i] for i in order[:k]]]
