"""Dataset difficulty as pointwise V-usable information (Ethayarajh, Choi & Swayamdipta, ICML 2022).

PVI(x -> y) = log2 g[x](y) - log2 g'[null](y): how many more bits about the gold label a model gets
from the input than from nothing. g is the embedding classifier, with the C of the grid that gives the
gold labels the highest likelihood (V-information takes the best member of the family); g' sees a null
input, and the best any model can do on a null input is the label prior, so g' is the training labels'
frequencies. The models are cross-fitted: each instance is scored by models trained on the other folds,
so PVI measures what generalises, not what was memorised. Mean PVI estimates the V-usable information;
instances with negative PVI are hard or mislabeled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from targen_dspy.analysis.classifier import C_GRID, Encoded, best_cross_fit, stratified_splits

FOLDS = 5


@dataclass(frozen=True)
class PviResult:
    values: np.ndarray  # one PVI in bits per instance, in record order
    correct: np.ndarray  # whether the cross-fitted model's answer was the gold label
    folds: int
    c: float  # the regularisation of the family member used

    @property
    def v_information(self) -> float:
        return float(self.values.mean())

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def pvi(
    data: Encoded, folds: int = FOLDS, grid: Sequence[float] = C_GRID, seed: int = 0, progress: bool = False
) -> PviResult | None:
    """Cross-fitted PVI of every instance, or None when some label has fewer than two instances
    (every training fold must hold every label for the null model to be defined)."""
    splits = stratified_splits(data, folds, seed)
    if splits is None:
        return None
    fit = best_cross_fit(data, splits, grid, progress)
    null = np.empty(len(data))
    for train, held_out in splits:
        prior = Counter(data.y[train].tolist())
        null[held_out] = [prior[y] / len(train) for y in data.y[held_out].tolist()]
    return PviResult(
        values=np.log2(fit.gold) - np.log2(null), correct=fit.correct, folds=len(splits), c=fit.c
    )
