"""The analysis of a dataset, and of a reference set beside it: labels, lexical and semantic diversity,
difficulty (PVI) and the self-correction confusion matrix."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from targen_dspy.analysis.classifier import Layout, encode, layout_for
from targen_dspy.analysis.embeddings import Encoder
from targen_dspy.analysis.lexical import LexicalStats, lexical_stats
from targen_dspy.analysis.pvi import FOLDS, PviResult, pvi
from targen_dspy.analysis.records import Record, check_fields, label_key
from targen_dspy.analysis.semantic import NEAR_DUPLICATE, CosineStats, cosine_stats
from targen_dspy.errors import RunError, SpecError
from targen_dspy.program.records import LabelStats
from targen_dspy.signatures import TaskSpec
from targen_dspy.text.fields import record_text, text_fields
from targen_dspy.text.vectors import record_vectors

logger = logging.getLogger(__name__)
HARDEST = 5  # lowest-PVI instances listed in the report


@dataclass(frozen=True)
class Dataset:
    name: str  # as the report calls it: "data", "reference"
    path: Path
    records: list[Record]


@dataclass(frozen=True)
class SetAnalysis:
    dataset: Dataset
    keys: tuple[str, ...]  # each record's label key
    lexical: LexicalStats
    cosine: CosineStats
    pvi: PviResult | None  # None when some label has fewer than two instances
    confusion: dict[str, dict[str, int]] | None  # constrained -> final label; None without constrained_label
    relabeled: int | None

    @property
    def labels(self) -> Counter[str]:
        return Counter(self.keys)

    def mean_pvi(self, key: str) -> float | None:
        """Mean PVI of the instances labeled `key`: which label the data makes harder to recognise."""
        if self.pvi is None or key not in self.keys:
            return None
        return float(self.pvi.values[np.array(self.keys) == key].mean())

    def hardest(self, count: int = HARDEST) -> list[tuple[float, str, Record]]:
        """PVI, label key and record of the `count` lowest-PVI instances: the likeliest mislabeled."""
        if self.pvi is None:
            return []
        order = np.argsort(self.pvi.values, kind="stable")[:count]
        return [(float(self.pvi.values[i]), self.keys[i], self.dataset.records[i]) for i in order]


@dataclass(frozen=True)
class Analysis:
    fields: tuple[str, ...]
    label_field: str
    labels: tuple[str, ...]  # label keys in display order
    layout: Layout
    lexical_sample: int
    sets: tuple[SetAnalysis, ...]  # the data, then the reference if any


def analyse(
    data: Dataset,
    reference: Dataset | None,
    encoder: Encoder,
    *,
    spec: TaskSpec | None = None,
    near_duplicate: float = NEAR_DUPLICATE,
    folds: int = FOLDS,
    progress: bool = False,
) -> Analysis:
    """Analyse `data`, and `reference` the same way.

    The text fields are the spec's when given, else the string fields of `data` (see `text_fields`).
    Lexical figures depend on set size, so both sets are measured on random samples of the smaller
    set's size.
    """
    if not 0 < near_duplicate <= 1:
        raise RunError(f"--near-duplicate is a cosine in (0, 1], got {near_duplicate}")
    if folds < 2:
        raise RunError(f"--folds must be at least 2, got {folds}")
    label_field = spec.label_field if spec else "label"
    datasets = [data] if reference is None else [data, reference]
    for dataset in datasets:  # a spec names fields that every record must have
        check_fields(dataset.records, [*(spec.fields if spec else ()), label_field], dataset.path)
    fields = tuple(text_fields(spec, data.records, label_field))
    if not fields:
        raise SpecError(f"{data.path} has no text fields; pass --task to name them")
    layout = layout_for(spec) if spec else Layout(texts=fields)
    for dataset in datasets:
        check_fields(dataset.records, list(dict.fromkeys([*fields, *layout.fields])), dataset.path)
    sample = min(len(dataset.records) for dataset in datasets)
    sets = tuple(
        _analyse_set(dataset, fields, label_field, layout, encoder, sample, near_duplicate, folds, progress)
        for dataset in datasets
    )
    keys = set().union(*(analysis.labels for analysis in sets))
    declared = [label_key(value) for value in spec.label_values] if spec else []
    ordered = [key for key in declared if key in keys] + sorted(keys - set(declared))
    return Analysis(fields, label_field, tuple(ordered), layout, sample, sets)


def _analyse_set(
    dataset: Dataset,
    fields: Sequence[str],
    label_field: str,
    layout: Layout,
    encoder: Encoder,
    sample: int,
    near_duplicate: float,
    folds: int,
    progress: bool,
) -> SetAnalysis:
    records = dataset.records
    logger.info("analysing %s: %d records", dataset.path, len(records))
    picked = np.sort(np.random.default_rng(0).choice(len(records), sample, replace=False))
    lexical = lexical_stats([record_text(records[i], fields) for i in picked])
    vectors = record_vectors(records, fields, partial(encoder.embed, progress=progress))
    cosine = cosine_stats(vectors, near_duplicate)
    difficulty = pvi(encode(records, layout, encoder, label_field), folds=folds, progress=progress)
    confusion, relabeled = None, None
    if all("constrained_label" in r and "relabeled" in r for r in records):
        stats = LabelStats.of(records, label_field, key=label_key)
        confusion, relabeled = stats.to_json()["confusion"], stats.relabeled
    return SetAnalysis(
        dataset=dataset,
        keys=tuple(label_key(r[label_field]) for r in records),
        lexical=lexical,
        cosine=cosine,
        pvi=difficulty,
        confusion=confusion,
        relabeled=relabeled,
    )
