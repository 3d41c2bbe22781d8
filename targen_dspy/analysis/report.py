"""report.md and its plots, written to one directory."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from targen_dspy.analysis import plots
from targen_dspy.analysis.embeddings import MODEL_NAME
from targen_dspy.analysis.entities import CATEGORIES, INSTALL, EntityBias
from targen_dspy.analysis.records import label_name
from targen_dspy.analysis.summary import Analysis, SetAnalysis

logger = logging.getLogger(__name__)
REPORT = "report.md"
FIGURES = "figures.json"  # the figures of report.md for programs (the dataset card)
_SNIPPET = 90  # characters of an instance's text in the hardest-instances table


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _rows(analysis: Analysis, metrics: Sequence[tuple[str, Callable[[SetAnalysis], str]]]) -> str:
    """A metric per row, a set per column."""
    header = ["", *(result.dataset.name for result in analysis.sets)]
    return _table(header, [[name, *(cell(result) for result in analysis.sets)] for name, cell in metrics])


def _share(count: int, total: int) -> str:
    return f"{count} ({count / total:.1%})" if total else "0"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _snippet(text: str) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def _labels_section(analysis: Analysis) -> list[str]:
    rows = []
    for key in analysis.labels:
        row = [label_name(key)]
        for result in analysis.sets:
            row.append(_share(result.labels.get(key, 0), sum(result.labels.values())))
        rows.append(row)
    header = ["label", *(result.dataset.name for result in analysis.sets)]
    return ["## Labels", "", _table(header, rows), "", "![label distribution](labels.png)", ""]


def _lexical_section(analysis: Analysis) -> list[str]:
    metrics = [
        ("instances measured", lambda r: str(r.lexical.documents)),
        ("mean tokens per instance", lambda r: f"{r.lexical.mean_tokens:.1f}"),
        ("vocabulary size", lambda r: str(r.lexical.vocabulary)),
        ("distinct-1", lambda r: f"{r.lexical.distinct_1:.3f}"),
        ("distinct-2", lambda r: f"{r.lexical.distinct_2:.3f}"),
        ("self-BLEU-4 (lower: more diverse)", lambda r: f"{r.lexical.self_bleu:.3f}"),
    ]
    note = (
        f"On {analysis.lexical_sample} randomly drawn instances of each set (the smaller set's size): "
        "vocabulary and distinct-n fall as a set grows, so only equal sizes compare. "
        "Distinct-n is distinct n-grams over all n-grams; self-BLEU scores each instance against all others."
    )
    return ["## Lexical diversity", "", note, "", _rows(analysis, metrics), ""]


def _semantic_section(analysis: Analysis) -> list[str]:
    threshold = analysis.sets[0].cosine.threshold
    metrics = [
        ("mean pairwise cosine (lower: more diverse)", lambda r: f"{r.cosine.mean:.3f}"),
        (
            f"near-duplicates (nearest other instance ≥ {threshold:g})",
            lambda r: f"{r.cosine.near_duplicate_rate:.1%}",
        ),
    ]
    note = (
        f"{MODEL_NAME} embeddings of each text field, averaged per instance; over all pairs of "
        "instances of each whole set."
    )
    return [
        "## Semantic diversity",
        "",
        note,
        "",
        _rows(analysis, metrics),
        "",
        "![pairwise cosine](cosine.png)",
        "",
    ]


def _pvi_section(analysis: Analysis) -> list[str]:
    layout = analysis.layout
    reads = ", ".join(layout.texts)
    if layout.choices:
        reads += f", each of {', '.join(layout.choices)} scored as a choice"
    if layout.condition:
        reads += f", weights per {layout.condition}"
    note = (
        "Pointwise V-usable information (Ethayarajh et al., 2022): log2 P(gold | input) of a logistic "
        f"regression on {MODEL_NAME} features ({reads}; pairs crossed as u, v, |u-v|, u*v) minus log2 "
        "P(gold) of the label prior, cross-fitted so that every instance is scored by a model that did "
        "not train on it. Higher: easier; below 0: the input does not help, often a wrong label."
    )
    metrics = [
        ("V-usable information (mean PVI, bits)", lambda r: _number(r.pvi and r.pvi.v_information)),
        ("instances with PVI < 0", lambda r: "n/a" if r.pvi is None else f"{np.mean(r.pvi.values < 0):.1%}"),
        ("cross-fitted accuracy", lambda r: _number(r.pvi and r.pvi.accuracy)),
        (
            "folds; regularisation C chosen",
            lambda r: "n/a" if r.pvi is None else f"{r.pvi.folds}; {r.pvi.c:g}",
        ),
    ]
    for key in analysis.labels:
        metrics.append((f"mean PVI of {label_name(key)}", lambda r, key=key: _number(r.mean_pvi(key))))
    lines = ["## Difficulty (PVI)", "", note, "", _rows(analysis, metrics), ""]
    if any(result.pvi is None for result in analysis.sets):
        lines += ["n/a: PVI needs at least two instances of every label.", ""]
    if any(result.pvi is not None for result in analysis.sets):
        lines += ["![PVI distribution](pvi.png)", ""]
    data = analysis.sets[0]
    rows = [
        [f"{value:.2f}", label_name(key), _snippet(" / ".join(str(record[f]) for f in analysis.fields))]
        for value, key, record in data.hardest()
    ]
    if rows:
        lines += [
            f"Hardest instances of the {data.dataset.name} (lowest PVI):",
            "",
            _table(["PVI", "label", "text"], rows),
            "",
        ]
    return lines


def _confusion_section(analysis: Analysis) -> list[str]:
    results = [result for result in analysis.sets if result.confusion is not None]
    if not results:
        return []
    lines = [
        "## Self-correction",
        "",
        "Rows: the label the generator was asked for; columns: the label after self-correction.",
        "",
    ]
    names = [label_name(key) for key in analysis.labels]
    for result in results:
        rows = [
            [names[i], *(result.confusion.get(row, {}).get(col, 0) for col in analysis.labels)]
            for i, row in enumerate(analysis.labels)
        ]
        total = len(result.keys)
        lines += [
            f"{result.dataset.name}: {_share(result.relabeled, total)} relabeled.",
            "",
            _table(["constrained \\ final", *names], rows),
            "",
        ]
    return [*lines, "![self-correction confusion matrix](confusion.png)", ""]


_TOP_NAMES = 5  # most mentioned entities per category in the report


def _entities_section(bias: EntityBias | None) -> list[str]:
    if bias is None:
        return [
            "## Named entities",
            "",
            f"Named-entity bias (GPE, PERSON, NORP, ORG) needs spaCy and its English model: `{INSTALL}`.",
            "",
        ]
    note = (
        "Mentions of places (GPE), people (PERSON), nationalities, religious and political groups (NORP) "
        "and organisations (ORG), found by spaCy's en_core_web_sm, as in the TarGEN paper's bias "
        "analysis; per 100 instances, so that sets of different sizes compare."
    )
    header = ["", *(name for name, _ in bias.sets)]
    rows = [
        [category, *(f"{c.mentions[category]} ({c.per_100(category):.1f})" for _, c in bias.sets)]
        for category in CATEGORIES
    ]
    lines = ["## Named entities", "", note, "", _table(header, rows), ""]
    if len(bias.sets) > 1 and bias.category_divergence is None:
        silent = [name for name, counts in bias.sets if not sum(counts.mentions.values())]
        lines += [f"Divergence n/a: {' and '.join(silent)} mentions no entity of the four categories.", ""]
    elif bias.category_divergence is not None:
        lines += [
            f"Jensen-Shannon divergence of the four categories' shares, {bias.sets[0][0]} vs "
            f"{bias.sets[1][0]}: {bias.category_divergence:.3f} bits (0: the same mix, 1: disjoint). "
            "Of the entity names within each category (are the same places and people named?): "
            + ", ".join(f"{c} {_number(bias.name_divergence(c))}" for c in CATEGORIES)
            + ".",
            "",
        ]
    top = [
        [
            category,
            *(
                _snippet(", ".join(n for n, _ in c.names[category].most_common(_TOP_NAMES)))
                for _, c in bias.sets
            ),
        ]
        for category in CATEGORIES
    ]
    lines += [f"Most mentioned ({_TOP_NAMES} per category):", "", _table(header, top), ""]
    return [*lines, "![named entities](entities.png)", ""]


def figures(analysis: Analysis) -> dict[str, dict[str, float | int | None]]:
    """The headline figures of each set, by set name: what `targen export` puts in the dataset card."""
    return {
        result.dataset.name: {
            "instances": len(result.keys),
            "distinct_1": result.lexical.distinct_1,
            "distinct_2": result.lexical.distinct_2,
            "self_bleu": result.lexical.self_bleu,
            "mean_cosine": result.cosine.mean,
            "near_duplicate_rate": result.cosine.near_duplicate_rate,
            "near_duplicate_threshold": result.cosine.threshold,
            "v_information": None if result.pvi is None else result.pvi.v_information,
        }
        for result in analysis.sets
    }


def write_report(analysis: Analysis, out: Path, entities: EntityBias | None = None) -> Path:
    """Write report.md and its PNG plots into `out` (created if needed); returns the report's path.
    `entities`: the named-entity counts of the same sets, None without the `bias` extra."""
    out.mkdir(parents=True, exist_ok=True)
    plots.label_bars(analysis, out / "labels.png")
    plots.cosine_histograms(analysis, out / "cosine.png")
    if any(result.pvi is not None for result in analysis.sets):
        plots.pvi_histograms(analysis, out / "pvi.png")
    if any(result.confusion is not None for result in analysis.sets):
        plots.confusion_matrices(analysis, out / "confusion.png")
    if entities is not None:
        plots.entity_bars(entities, out / "entities.png")
    sources = "\n".join(
        f"- {result.dataset.name}: `{result.dataset.path}`, {len(result.keys)} instances"
        for result in analysis.sets
    )
    lines = [
        "# Dataset analysis",
        "",
        sources,
        "",
        f"Text fields: {', '.join(analysis.fields)}; label field: {analysis.label_field}.",
        "",
        *_labels_section(analysis),
        *_lexical_section(analysis),
        *_semantic_section(analysis),
        *_pvi_section(analysis),
        *_confusion_section(analysis),
        *_entities_section(entities),
    ]
    path = out / REPORT
    path.write_text("\n".join(lines), encoding="utf-8")
    (out / FIGURES).write_text(json.dumps(figures(analysis), indent=2), encoding="utf-8")
    logger.info("wrote %s", path)
    return path
