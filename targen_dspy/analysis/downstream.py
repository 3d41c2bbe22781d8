"""Downstream evaluation, the paper's main yardstick for synthetic data: train one classifier on a
training set (synthetic or real) and test it on a real held-out split.

The classifier is the same for every training set (`classifier.EmbeddingClassifier`: logistic
regression on frozen MiniLM features, its C chosen by cross-validation on the training set alone),
so differences come from the data. The interval comes from `rounds` seeded bootstrap rounds, each
resampling the training set (and refitting) and the test set, so it covers both the luck of the
training sample and the size of the test set.

    encoder = load_encoder()
    result = evaluate(train_records, val_records, load_task("rte"), encoder)
    print(result)  # accuracy 0.58 (95% CI 0.52-0.64), 200 train / 277 test, 10 rounds
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from targen_dspy.analysis.classifier import (
    C_GRID,
    EmbeddingClassifier,
    Encoded,
    Layout,
    best_cross_fit,
    encode,
    layout_for,
    stratified_splits,
)
from targen_dspy.analysis.embeddings import Encoder
from targen_dspy.analysis.records import Record, check_fields
from targen_dspy.signatures import TaskSpec

logger = logging.getLogger(__name__)
ROUNDS = 10
SELECTION_FOLDS = 3
_Z95 = 1.959964


@dataclass(frozen=True)
class DownstreamResult:
    accuracy: float  # trained on the whole training set, tested on the whole test set
    c: float  # the regularisation chosen on the training set
    ci_low: float  # 95% normal-approximation bootstrap interval around `accuracy`
    ci_high: float
    round_accuracies: tuple[float, ...]
    n_train: int
    n_test: int

    def __str__(self) -> str:
        return (
            f"accuracy {self.accuracy:.3f} (95% CI {self.ci_low:.3f}-{self.ci_high:.3f}), "
            f"{self.n_train} train / {self.n_test} test, {len(self.round_accuracies)} rounds"
        )


def evaluate(
    train: Sequence[Record],
    test: Sequence[Record],
    layout: Layout | TaskSpec,
    encoder: Encoder,
    *,
    label_field: str = "label",
    rounds: int = ROUNDS,
    c: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> DownstreamResult:
    """Accuracy on `test` of the embedding classifier trained on `train`, with a bootstrap interval.

    Args:
        train: records with the layout's fields and `label_field` (e.g. a run's data.jsonl).
        test: records in the same layout (e.g. a real split of the task).
        layout: a `Layout`, or a task spec: the layout it declares (`downstream:`).
        encoder: from `embeddings.load_encoder()`; reuse one so that the test set is embedded once.
        rounds: bootstrap rounds for the interval; seeds `seed` .. `seed + rounds - 1`.
        c: the classifier's regularisation; by default the best of `C_GRID` in a cross-validation
            on `train` (the middle of the grid when some label has a single instance).

    Raises:
        SpecError: a record lacks a field of the layout or has a label the layout cannot read.
    """
    if isinstance(layout, TaskSpec):
        layout = layout_for(layout)
    for name, records in (("training set", train), ("test set", test)):
        check_fields(records, [*layout.fields, label_field], name)
    train_data = encode(train, layout, encoder, label_field, progress)
    test_data = encode(test, layout, encoder, label_field, progress)
    if c is None:
        splits = stratified_splits(train_data, SELECTION_FOLDS, seed)
        c = C_GRID[len(C_GRID) // 2] if splits is None else best_cross_fit(train_data, splits).c
    accuracy = _accuracy(train_data, test_data, c)
    accuracies = []
    for round_ in tqdm(range(rounds), desc="bootstrap", unit="round", disable=not progress):
        rng = np.random.default_rng(seed + round_)
        resampled_train = train_data.take(rng.integers(0, len(train_data), len(train_data)))
        resampled_test = test_data.take(rng.integers(0, len(test_data), len(test_data)))
        accuracies.append(_accuracy(resampled_train, resampled_test, c))
    spread = _Z95 * float(np.std(accuracies, ddof=1)) if rounds > 1 else 0.0
    logger.info("downstream: %d train, %d test, C %g, accuracy %.3f", len(train), len(test), c, accuracy)
    return DownstreamResult(
        accuracy=accuracy,
        c=c,
        ci_low=max(0.0, accuracy - spread),
        ci_high=min(1.0, accuracy + spread),
        round_accuracies=tuple(accuracies),
        n_train=len(train),
        n_test=len(test),
    )


def _accuracy(train: Encoded, test: Encoded, c: float) -> float:
    predictions = EmbeddingClassifier(c).fit(train).predict(test)
    return float(np.mean(predictions == test.y))
