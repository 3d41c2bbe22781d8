"""Semantic diversity from unit-length embeddings: mean pairwise cosine, near-duplicates, and the
distribution of pairwise cosines, computed in row blocks so memory stays linear in the set size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR_DUPLICATE = 0.95
COSINE_EDGES = np.linspace(-1.0, 1.0, 81)
_BLOCK = 1024  # rows per block of the cosine matrix


@dataclass(frozen=True)
class CosineStats:
    mean: float  # over all unordered pairs; lower is more diverse
    near_duplicate_rate: float  # share of instances whose nearest other instance is >= threshold
    threshold: float
    histogram: np.ndarray  # pair counts in the bins of COSINE_EDGES


def cosine_stats(vectors: np.ndarray, threshold: float = NEAR_DUPLICATE) -> CosineStats:
    """Statistics of the pairwise cosines of unit-length `vectors` (one row per instance)."""
    n = len(vectors)
    if n < 2:
        return CosineStats(float("nan"), 0.0, threshold, np.zeros(len(COSINE_EDGES) - 1, dtype=np.int64))
    total = vectors.astype(np.float64).sum(axis=0)
    # sum over i != j of <v_i, v_j> = |sum v|^2 - sum |v_i|^2, and |v_i| = 1
    mean = (float(total @ total) - n) / (n * (n - 1))
    nearest = np.empty(n)
    histogram = np.zeros(len(COSINE_EDGES) - 1, dtype=np.int64)
    for start in range(0, n, _BLOCK):
        block = np.clip(vectors[start : start + _BLOCK] @ vectors.T, -1.0, 1.0)
        rows = np.arange(len(block))
        block[rows, start + rows] = -np.inf  # an instance is not its own neighbour
        nearest[start : start + len(block)] = block.max(axis=1)
        upper = block[np.triu_indices(len(block), k=start + 1, m=n)]  # each pair once
        histogram += np.histogram(upper, bins=COSINE_EDGES)[0]
    return CosineStats(
        mean=mean,
        near_duplicate_rate=float(np.mean(nearest >= threshold)),
        threshold=threshold,
        histogram=histogram,
    )
