"""One classifier family for every dataset: logistic regression on frozen MiniLM embeddings of a task's
input fields and their interactions. `downstream` trains it on one set and tests it on another; `pvi`
cross-fits it within a set to measure how hard each instance is.

The family's members differ in regularisation strength C. A fixed C would not do: sklearn's penalty
does not shrink with the set size, so a C that suits 2,500 real instances flattens every probability
on 200 synthetic ones. Each dataset gets the C of `C_GRID` with the best cross-validated log
likelihood of its gold labels (the best member of the family, as V-information is defined).

A `Layout` says how a task's records become features; a task's spec declares it (`downstream:`). Text
fields are embedded and crossed pairwise (u, v, |u-v|, u*v, as in InferSent). A multiple-choice task
(COPA) is scored choice by choice: each choice is crossed with the text fields, a binary model scores
it, and the label is the index of the best choice. A condition field (COPA's cause/effect) gives each
of its values its own weights.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from targen_dspy.analysis.embeddings import Encoder
from targen_dspy.analysis.records import Record, label_key
from targen_dspy.errors import SpecError
from targen_dspy.signatures import TaskSpec
from targen_dspy.text.fields import text_fields

# Inverse regularisation strengths tried. On real RTE, COPA and WiC the best was 1e-4 to 1e-3 (features
# are many and correlated); small, clean synthetic sets need weaker regularisation.
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
_PROBABILITY_FLOOR = 1e-12  # keeps log2 finite when the model is certain and wrong


@dataclass(frozen=True)
class Layout:
    """Which fields of a record the classifier reads.

    Attributes:
        texts: fields embedded and crossed pairwise.
        choices: for a multiple-choice task, the alternative fields; the label is the index of the right one.
        condition: a categorical field whose values each get their own weights.
        condition_values: the values `condition` can take.
    """

    texts: tuple[str, ...]
    choices: tuple[str, ...] = ()
    condition: str | None = None
    condition_values: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.texts, *self.choices, *((self.condition,) if self.condition else ()))


def layout_for(spec: TaskSpec) -> Layout:
    """The layout a task's spec declares (`downstream:`), or else its free-text fields as the inputs."""
    declared = spec.downstream
    if declared is None:
        return Layout(texts=tuple(text_fields(spec)))
    condition = declared.condition
    return Layout(
        texts=declared.inputs,
        choices=declared.choices,
        condition=condition,
        condition_values=tuple(spec.fields[condition].choices) if condition else (),
    )


@dataclass(frozen=True)
class Encoded:
    """Features of n records, shape (n, k, d) with k = 1 or the number of choices, and their labels:
    label keys (`label_key`) for a classification layout, choice indices for a multiple-choice one."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray) -> Encoded:
        return Encoded(self.x[rows], self.y[rows])


def _cross(parts: list[np.ndarray]) -> np.ndarray:
    pairs = [block for u, v in combinations(parts, 2) for block in (np.abs(u - v), u * v)]
    return np.concatenate([*parts, *pairs], axis=1)


def encode(
    records: Sequence[Record],
    layout: Layout,
    encoder: Encoder,
    label_field: str = "label",
    progress: bool = False,
) -> Encoded:
    """Embed the layout's fields of `records` and build the classifier's features."""
    vectors = {
        name: encoder.embed([str(record[name]) for record in records], progress=progress)
        for name in (*layout.texts, *layout.choices)
    }
    texts = [vectors[name] for name in layout.texts]
    if layout.choices:
        x = np.stack([_cross([*texts, vectors[choice]]) for choice in layout.choices], axis=1)
        y = np.array([_choice_index(record[label_field], layout) for record in records])
    else:
        x = _cross(texts)[:, None, :]
        y = np.array([label_key(record[label_field]) for record in records])
    if layout.condition:
        x = _by_condition(x, [record[layout.condition] for record in records], layout)
    return Encoded(x, y)


def _choice_index(label: object, layout: Layout) -> int:
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(layout.choices):
        raise SpecError(f"label {label!r} is not the index of one of the choices {list(layout.choices)}")
    return label


def _by_condition(x: np.ndarray, values: list[object], layout: Layout) -> np.ndarray:
    """Each condition value's features in a block of their own, the other blocks zero."""
    width = x.shape[2]
    out = np.zeros((*x.shape[:2], width * len(layout.condition_values)), dtype=x.dtype)
    for row, value in enumerate(values):
        if value not in layout.condition_values:
            raise SpecError(f"{layout.condition} is {value!r}, not one of {list(layout.condition_values)}")
        block = layout.condition_values.index(value)
        out[row, :, block * width : (block + 1) * width] = x[row]
    return out


class EmbeddingClassifier:
    """Standardised features + logistic regression. A training set with a single label yields a model
    that always answers it (logistic regression needs two classes)."""

    def __init__(self, c: float):
        self.c = c
        self._model: Pipeline | None = None
        self._constant: object = None

    def _new_model(self) -> Pipeline:
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=2000))

    def fit(self, data: Encoded) -> EmbeddingClassifier:
        n, k, d = data.x.shape
        if k > 1:  # one row per choice, target: is this the right one
            targets = (np.arange(k)[None, :] == data.y[:, None]).reshape(-1)
            self._model = self._new_model().fit(data.x.reshape(n * k, d), targets)
        elif len(set(data.y.tolist())) == 1:
            self._model, self._constant = None, data.y[0]
        else:
            self._model = self._new_model().fit(data.x[:, 0, :], data.y)
        return self

    def probabilities(self, data: Encoded) -> tuple[np.ndarray, list[object]]:
        """P(label | input) for each record, shape (n, classes), and the classes of its columns."""
        n, k, d = data.x.shape
        if self._model is None:
            return np.ones((n, 1)), [self._constant]
        if k > 1:  # softmax over the choices' scores
            scores = self._model.decision_function(data.x.reshape(n * k, d)).reshape(n, k)
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            return scores / scores.sum(axis=1, keepdims=True), list(range(k))
        return self._model.predict_proba(data.x[:, 0, :]), list(self._model.classes_)

    def predict(self, data: Encoded) -> np.ndarray:
        probabilities, classes = self.probabilities(data)
        return np.array(classes, dtype=object)[probabilities.argmax(axis=1)]

    def gold_probability(self, data: Encoded) -> np.ndarray:
        """P(gold label | input) for each record; 0 (floored) for a label the model never saw."""
        probabilities, classes = self.probabilities(data)
        column = {label: i for i, label in enumerate(classes)}
        gold = np.array(
            [probabilities[row, column[y]] if y in column else 0.0 for row, y in enumerate(data.y.tolist())]
        )
        return np.maximum(gold, _PROBABILITY_FLOOR)


Splits = list[tuple[np.ndarray, np.ndarray]]


def stratified_splits(data: Encoded, folds: int, seed: int = 0) -> Splits | None:
    """Up to `folds` stratified folds, each training part holding every label; None when some label
    has fewer than two instances."""
    folds = min(folds, *Counter(data.y.tolist()).values())
    if folds < 2:
        return None
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(data.y, data.y))


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold predictions: each instance scored by the model trained on the other folds."""

    c: float
    gold: np.ndarray  # P(gold label | input)
    correct: np.ndarray  # whether the answer was the gold label

    @property
    def log_likelihood(self) -> float:
        return float(np.log(self.gold).mean())


def cross_fit(data: Encoded, splits: Splits, c: float) -> CrossFit:
    gold = np.empty(len(data))
    correct = np.empty(len(data), dtype=bool)
    for train, held_out in splits:
        model = EmbeddingClassifier(c).fit(data.take(train))
        test = data.take(held_out)
        gold[held_out] = model.gold_probability(test)
        correct[held_out] = model.predict(test) == test.y
    return CrossFit(c, gold, correct)


def best_cross_fit(
    data: Encoded, splits: Splits, grid: Sequence[float] = C_GRID, progress: bool = False
) -> CrossFit:
    """The cross-fit, over the C values of `grid` on the same folds, with the highest log likelihood.

    The likelihood rises and then falls with C, so the scan (weakest C first) stops at the first C
    that does worse than the best so far: the large C values, which take longest to fit, are mostly
    skipped."""
    weakest, *others = sorted(grid)
    best = cross_fit(data, splits, weakest)
    for c in tqdm(others, desc="choosing C", unit="C", disable=not progress):
        fit = cross_fit(data, splits, c)
        if fit.log_likelihood <= best.log_likelihood:
            break
        best = fit
    return best
