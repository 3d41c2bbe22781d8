"""Choosing the references of the next self-reference round, by one of four strategies.

Each strategy returns the reference sets of the next round's calls: one set per call. Similarity is the
cosine between record vectors (`vectors`, e.g. `text.vectors.record_vectors`); random and tree need none.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Record = dict[str, Any]
Vectors = Callable[[Sequence[Record]], np.ndarray]  # records -> one unit vector a row
STRATEGIES = ("random", "contrastive", "similar", "tree")


def by_similarity_to_batch(pool: np.ndarray, batch: np.ndarray) -> list[int]:
    """Rows of `pool` ordered from most to least similar to the batch (mean cosine to its members);
    both are unit vectors, one a row."""
    similarity = (pool @ batch.T).mean(axis=1)
    return [int(i) for i in np.argsort(-similarity, kind="stable")]


def next_references(
    strategy: str,
    pool: Sequence[Record],
    last_batch: Sequence[Record],
    k: int,
    rng: random.Random,
    vectors: Vectors | None = None,
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
    if vectors is None:
        raise ValueError(f"the {strategy} strategy needs sentence embeddings")
    last_ids = {id(record) for record in last_batch}
    candidates = [record for record in pool if id(record) not in last_ids] or list(pool)
    order = by_similarity_to_batch(vectors(candidates), vectors(list(last_batch)))
    if strategy == "contrastive":
        order = order[::-1]
    return [[candidates[i] for i in order[:k]]]
