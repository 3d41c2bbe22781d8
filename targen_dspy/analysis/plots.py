"""The report's PNG plots. Figures are built with matplotlib's object API and rendered by the Agg
canvas: no pyplot, so no global figure state and no display needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from targen_dspy.analysis.entities import CATEGORIES, EntityBias
from targen_dspy.analysis.records import label_name
from targen_dspy.analysis.semantic import COSINE_EDGES
from targen_dspy.analysis.summary import Analysis

_COLOURS = ("tab:blue", "tab:orange")
_DPI = 110
_PVI_FLOOR = -6  # bits; a few confidently wrong instances would otherwise squeeze the rest into a bar


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")
    return path


def label_bars(analysis: Analysis, path: Path) -> Path:
    """Share of each label, one bar per set, annotated with counts."""
    figure = Figure(figsize=(1.6 + 1.4 * len(analysis.labels), 3.4))
    axes = figure.add_subplot()
    width = 0.8 / len(analysis.sets)
    positions = np.arange(len(analysis.labels))
    for i, (result, colour) in enumerate(zip(analysis.sets, _COLOURS, strict=False)):
        total = sum(result.labels.values())
        counts = [result.labels.get(key, 0) for key in analysis.labels]
        bars = axes.bar(
            positions + (i - (len(analysis.sets) - 1) / 2) * width,
            [count / total for count in counts],
            width,
            label=f"{result.dataset.name} (n={total})",
            color=colour,
        )
        axes.bar_label(bars, labels=[str(count) for count in counts], fontsize=8)
    axes.set_xticks(positions, [label_name(key) for key in analysis.labels])
    axes.set_ylabel("share of instances")
    axes.set_ylim(0, 1.05)
    axes.set_title("Label distribution")
    axes.legend(fontsize=8)
    return _save(figure, path)


def cosine_histograms(analysis: Analysis, path: Path) -> Path:
    """Distribution of pairwise cosines per set; mass near 1 means redundant instances."""
    figure = Figure(figsize=(6, 3.4))
    axes = figure.add_subplot()
    widths = np.diff(COSINE_EDGES)
    for result, colour in zip(analysis.sets, _COLOURS, strict=False):
        counts = result.cosine.histogram
        density = counts / max(counts.sum(), 1) / widths
        label = f"{result.dataset.name}: mean {result.cosine.mean:.3f}"
        axes.stairs(density, COSINE_EDGES, label=label, color=colour, fill=True, alpha=0.35)
        axes.stairs(density, COSINE_EDGES, color=colour)
    occupied = np.flatnonzero(sum(result.cosine.histogram for result in analysis.sets))
    if occupied.size:  # MiniLM cosines rarely go below -0.2: show the occupied range only
        axes.set_xlim(
            COSINE_EDGES[max(occupied[0] - 2, 0)], COSINE_EDGES[min(occupied[-1] + 3, len(COSINE_EDGES) - 1)]
        )
    threshold = analysis.sets[0].cosine.threshold
    _finish_density(
        axes,
        (threshold, f"near-duplicate ≥ {threshold:g}"),
        "cosine similarity of a pair of instances (all-MiniLM-L6-v2)",
        "Semantic diversity: pairwise cosine",
    )
    return _save(figure, path)


def pvi_histograms(analysis: Analysis, path: Path) -> Path:
    """Distribution of PVI per set; left of zero are instances the input does not help to label."""
    results = [result for result in analysis.sets if result.pvi is not None]
    figure = Figure(figsize=(6, 3.4))
    axes = figure.add_subplot()
    values = np.concatenate([result.pvi.values for result in results])
    edges = np.histogram_bin_edges(np.clip(values, _PVI_FLOOR, None), bins=40)
    for result, colour in zip(analysis.sets, _COLOURS, strict=False):
        if result.pvi is None:
            continue
        clipped = np.clip(result.pvi.values, edges[0], None)
        label = f"{result.dataset.name}: V-info {result.pvi.v_information:.3f} bits"
        axes.hist(
            clipped, bins=edges, density=True, histtype="stepfilled", alpha=0.35, color=colour, label=label
        )
        axes.hist(clipped, bins=edges, density=True, histtype="step", color=colour)
    clipped_note = f", values below {_PVI_FLOOR} shown at {_PVI_FLOOR}" if values.min() < _PVI_FLOOR else ""
    _finish_density(
        axes, (0, None), f"PVI (bits){clipped_note}", "Difficulty: pointwise V-usable information"
    )
    return _save(figure, path)


def _finish_density(axes, line: tuple[float, str | None], xlabel: str, title: str) -> None:
    """Labels of a density plot, with a dashed reference line at `line` (position, legend text)."""
    at, label = line
    axes.axvline(at, color="grey", linestyle="--", linewidth=1, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("density")
    axes.set_title(title)
    axes.legend(fontsize=8)


def confusion_matrices(analysis: Analysis, path: Path) -> Path:
    """Constrained label (asked of the generator) against final label (after self-correction)."""
    results = [result for result in analysis.sets if result.confusion is not None]
    figure = Figure(figsize=(0.5 + 3.4 * len(results), 3.2))
    names = [label_name(key) for key in analysis.labels]
    for i, result in enumerate(results):
        matrix = np.array(
            [
                [result.confusion.get(row, {}).get(col, 0) for col in analysis.labels]
                for row in analysis.labels
            ]
        )
        axes = figure.add_subplot(1, len(results), i + 1)
        axes.imshow(matrix, cmap="Blues", vmin=0)
        for (row, col), count in np.ndenumerate(matrix):
            colour = "white" if count > matrix.max() / 2 else "black"
            axes.text(col, row, str(count), ha="center", va="center", color=colour)
        ticks = np.arange(len(names))
        axes.set_xticks(ticks, names, rotation=20)
        axes.set_yticks(ticks, names)
        axes.set_xlabel("final label")
        axes.set_ylabel("constrained label")
        axes.set_title(f"Self-correction: {result.dataset.name}")
    return _save(figure, path)


def entity_bars(bias: EntityBias, path: Path) -> Path:
    """Mentions of each entity category per 100 instances, one bar per set."""
    figure = Figure(figsize=(6, 3.4))
    axes = figure.add_subplot()
    width = 0.8 / len(bias.sets)
    positions = np.arange(len(CATEGORIES))
    for i, ((name, counts), colour) in enumerate(zip(bias.sets, _COLOURS, strict=False)):
        values = [counts.per_100(category) for category in CATEGORIES]
        bars = axes.bar(
            positions + (i - (len(bias.sets) - 1) / 2) * width,
            values,
            width,
            label=f"{name} (n={counts.documents})",
            color=colour,
        )
        axes.bar_label(bars, labels=[f"{value:.0f}" for value in values], fontsize=8)
    axes.set_xticks(positions, list(CATEGORIES))
    axes.set_ylabel("mentions per 100 instances")
    divergence = bias.category_divergence
    title = "Named entities"
    axes.set_title(title if divergence is None else f"{title} (JS divergence {divergence:.3f} bits)")
    axes.legend(fontsize=8)
    return _save(figure, path)
