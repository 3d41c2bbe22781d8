"""The effect of DataGen's diversity options (issue 8) on one task: attribute-guided generation and group
checking (streaming near-duplicate removal), each alone and together, against plain TarGEN.

    python experiments/datagen_diversity.py                      # rte, --model local, --n 24
    python experiments/datagen_diversity.py --task cb --n 60 --model openai/gpt-4o-mini

Four runs of the project's engine, in OUT/TASK-MODEL-nN/runs/:
- plain: TarGEN as it is;
- attributes: the spec's attributes (or, for a task without any, ATTRIBUTES below): each label spread
  evenly over their combinations;
- dedup: plain with group checking (--dedup, MiniLM cosine);
- attributes+dedup: both.
All four share the same contexts and seeds (the first run's materials.json is copied into the others). A
run with group checking makes the same slots with the same prompts and sampling seeds as the run without
it, so DSPy's cache answers its model calls: it is that run's instances, filtered as they stream in.

Then the analysis (targen_dspy.analysis) of each run's kept instances: lexical distinct-1/2, mean
pairwise cosine of MiniLM embeddings, near-duplicate rate, on random samples of one size (the smallest
set's: lexical figures depend on set size), with a `targen analyze` report per run under analysis/.
Writes table.md, results.json and diversity.png, and prints the table. Rerunning resumes the runs.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results" / "datagen"
# For a task whose spec has no attributes: properties any task's text can vary in.
ATTRIBUTES = {
    "style": ("plain and formal", "casual and conversational", "technical"),
    "length": ("as short as possible", "long and detailed"),
}
RUNS = ("plain", "attributes", "dedup", "attributes+dedup")


@dataclass(frozen=True)
class Row:
    name: str
    generated: int  # instances made (kept + removed as near-duplicates)
    kept: int
    removed: int
    labels: dict[str, int]
    combinations: int | None  # distinct attribute combinations among the kept instances
    distinct_1: float
    distinct_2: float
    cosine: float
    near_duplicates: float  # share with a neighbour at cosine >= 0.95 (the analysis's default)
    near_threshold: float  # the same at the group-checking threshold
    calls: int  # LLM calls the model answered in the generating invocation (not DSPy's cache)
    seconds: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--task", default="rte", help="catalogue name or spec file (default rte)")
    parser.add_argument("--n", type=int, default=24, help="instances per run (default 24)")
    parser.add_argument("--model", default="local", help="'local' (embedded SmolLM2) or a litellm string")
    parser.add_argument("--api-base", help="base URL of an OpenAI-compatible server")
    parser.add_argument(
        "--dedup", type=float, default=0.9, help="group checking threshold: MiniLM cosine (default 0.9)"
    )
    parser.add_argument("--seeds-per-context", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="instances made in parallel (remote models)")
    parser.add_argument("--seed", type=int, default=0, help="of the equal-size samples")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n must be at least 2")
    if not 0 < args.dedup <= 1:
        parser.error("--dedup is a cosine in (0, 1]")
    return args


def model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", model).strip("-").lower()


def with_attributes(spec: Any) -> Any:
    """The spec with attributes: its own, or ATTRIBUTES for a task that has none."""
    from targen_dspy.signatures import parse_spec

    if spec.attributes:
        return spec
    return parse_spec({**spec.model_dump(), "attributes": ATTRIBUTES}, source=f"{spec.name} + attributes")


def without_attributes(spec: Any) -> Any:
    from targen_dspy.signatures import parse_spec

    return parse_spec({**spec.model_dump(), "attributes": {}}, source=spec.name)


def generate(spec: Any, name: str, lm: Any, encoder: Any, experiment: Path, args: argparse.Namespace):
    """One run of the engine into runs/NAME (resumed if there); its stats and wall time."""
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.engine.runner import RunSettings, run
    from targen_dspy.program import TarGEN

    run_dir = RunDirectory(experiment / "runs" / name)
    shared = experiment / "materials.json"
    if shared.exists() and not run_dir.materials.exists():
        run_dir.create()
        shutil.copyfile(shared, run_dir.materials)
    program = TarGEN(spec)
    program.set_lm(lm)
    dedup = args.dedup if name.endswith("dedup") else None
    settings = RunSettings(
        n=args.n, seeds_per_context=args.seeds_per_context, workers=args.workers, dedup=dedup
    )
    print(f"{name}: {args.n} instances", flush=True)
    started = time.monotonic()
    stats = run(
        program,
        run_dir,
        settings,
        {"generator": args.model, "corrector": args.model},
        progress=not args.quiet,
        embed=encoder.embed if dedup else None,
    )
    if not shared.exists():
        shutil.copyfile(run_dir.materials, shared)
    return stats, time.monotonic() - started


def analyse_runs(
    spec: Any, runs: dict[str, tuple[dict, float]], encoder: Any, experiment: Path, args: argparse.Namespace
) -> tuple[list[Row], dict[str, Any]]:
    """The analysis of each run's kept instances (a report per run); the lexical figures, which depend on
    set size, on random samples of the smallest run's size."""
    from targen_dspy.analysis.lexical import lexical_stats
    from targen_dspy.analysis.records import label_key, label_name, read_jsonl
    from targen_dspy.analysis.report import write_report
    from targen_dspy.analysis.semantic import cosine_stats
    from targen_dspy.analysis.summary import Dataset, analyse
    from targen_dspy.text.fields import record_text
    from targen_dspy.text.vectors import record_vectors

    records = {name: read_jsonl(experiment / "runs" / name / "data.jsonl") for name in runs}
    size = min(len(kept) for kept in records.values())
    rows, figures = [], {}
    for name, (stats, seconds) in runs.items():
        kept = records[name]
        path = experiment / "runs" / name / "data.jsonl"
        analysis = analyse(Dataset(name, path, kept), None, encoder, spec=spec, progress=False)
        write_report(analysis, experiment / "analysis" / name.replace("+", "-"))
        figures[name] = result = analysis.sets[0]
        sample = random.Random(args.seed).sample(kept, size)
        lexical = lexical_stats([record_text(r, analysis.fields) for r in sample])
        vectors = record_vectors(kept, analysis.fields, encoder.embed)
        at_threshold = cosine_stats(vectors, args.dedup).near_duplicate_rate
        counts = Counter(label_key(r[spec.label_field]) for r in kept)
        has_attributes = all("attributes" in r for r in kept)
        rows.append(
            Row(
                name=name,
                generated=len(kept) + stats.get("duplicates_removed", 0),
                kept=len(kept),
                removed=stats.get("duplicates_removed", 0),
                labels={label_name(label_key(v)): counts.get(label_key(v), 0) for v in spec.label_values},
                combinations=len({json.dumps(r["attributes"]) for r in kept}) if has_attributes else None,
                distinct_1=lexical.distinct_1,
                distinct_2=lexical.distinct_2,
                cosine=result.cosine.mean,
                near_duplicates=result.cosine.near_duplicate_rate,
                near_threshold=at_threshold,
                calls=stats.this_invocation["calls"] - stats.this_invocation["cache_hits"],
                seconds=round(seconds, 1),
            )
        )
    return rows, {"size": size, "sets": figures}


def markdown_table(rows: Sequence[Row], size: int, threshold: float) -> str:
    header = [
        "run",
        "generated",
        "kept",
        f"removed (cosine ≥ {threshold})",
        "labels (kept)",
        "attribute combinations",
        f"distinct-1 ({size} sampled)",
        f"distinct-2 ({size} sampled)",
        "mean pairwise cosine (all kept)",
        "near-duplicates ≥ 0.95 (all kept)",
        f"near-duplicates ≥ {threshold} (all kept)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        labels = " / ".join(f"{label} {count}" for label, count in row.labels.items())
        cells = [
            row.name,
            str(row.generated),
            str(row.kept),
            str(row.removed) if row.name.endswith("dedup") else "-",
            labels,
            "-" if row.combinations is None else str(row.combinations),
            f"{row.distinct_1:.3f}",
            f"{row.distinct_2:.3f}",
            "n/a" if row.kept < 2 else f"{row.cosine:.3f}",
            f"{row.near_duplicates:.1%}",
            f"{row.near_threshold:.1%}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Row], path: Path, threshold: float) -> None:
    """Bars of the four diversity figures, one group per run."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = [
        ("distinct-1\n(higher: more diverse)", [r.distinct_1 for r in rows]),
        ("distinct-2\n(higher: more diverse)", [r.distinct_2 for r in rows]),
        ("mean pairwise cosine\n(lower: more diverse)", [r.cosine for r in rows]),
        ("near-duplicates, cosine ≥ 0.95\n(lower: more diverse)", [r.near_duplicates for r in rows]),
        (f"near-duplicates, cosine ≥ {threshold}\n(lower: more diverse)", [r.near_threshold for r in rows]),
    ]
    figure = Figure(figsize=(14, 3.4))
    FigureCanvasAgg(figure)
    x = np.arange(len(rows))
    for i, (title, values) in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), i + 1)
        values = np.nan_to_num(np.array(values, dtype=float))  # a figure of fewer than two instances
        bars = axes.bar(x, values, color=[f"C{j}" for j in range(len(rows))])
        axes.bar_label(bars, fmt="%.3f", fontsize=7)
        axes.set_xticks(x, [r.name for r in rows], rotation=30, ha="right", fontsize=8)
        axes.set_title(title, fontsize=9)
        axes.set_ylim(0, max(max(values) * 1.2, 0.05))
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")


def kept_timings(rows: list[Row], previous: Path) -> list[Row]:
    """Rows whose run was finished before this invocation (no model calls now) keep the calls and wall
    time of the invocation that generated them, from the previous results.json."""
    if not previous.exists():
        return rows
    before = {row["name"]: row for row in json.loads(previous.read_text(encoding="utf-8"))["rows"]}
    return [
        replace(row, calls=before[row.name]["calls"], seconds=before[row.name]["seconds"])
        if row.calls == 0 and row.name in before
        else row
        for row in rows
    ]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import dspy

    from targen_dspy.analysis.embeddings import load_encoder
    from targen_dspy.backends import adapter_for, build_lm
    from targen_dspy.errors import TargenError
    from targen_dspy.signatures import load_task

    try:
        base = load_task(args.task)
        plain, attributed = without_attributes(base), with_attributes(base)
        encoder = load_encoder()
        lm = build_lm(args.model, api_base=args.api_base)
    except TargenError as exc:
        sys.exit(f"datagen_diversity: {exc}")
    experiment = args.out / f"{plain.name}-{model_slug(args.model)}-n{args.n}"
    experiment.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name in RUNS:
        spec = attributed if name.startswith("attributes") else plain
        with dspy.context(adapter=adapter_for(args.model, spec)):
            runs[name] = generate(spec, name, lm, encoder, experiment, args)
    rows, analyses = analyse_runs(plain, runs, encoder, experiment, args)
    rows = kept_timings(rows, experiment / "results.json")
    plot(rows, experiment / "diversity.png", args.dedup)
    attributes = dict(attributed.attributes)
    table = markdown_table(rows, analyses["size"], args.dedup)
    spent = "; ".join(f"{row.name} {row.calls} calls, {row.seconds:.0f} s" for row in rows)
    command = " ".join(
        ["python experiments/datagen_diversity.py", *(argv if argv is not None else sys.argv[1:])]
    )
    text = (
        f"# DataGen diversity options: {plain.name}, model {args.model}, n = {args.n}\n\n"
        f"`{command}`\n\nAttributes: {json.dumps(attributes)}. Lexical figures on random samples of "
        f"{analyses['size']} kept instances per run (the smallest run's size), semantic ones on all kept "
        f"instances; a run's full analysis is in analysis/RUN/report.md.\n\n{table}\n"
        f"Generation (model calls answered by the model, not DSPy's cache; wall time): {spent}.\n\n"
        "![diversity](diversity.png)\n"
    )
    (experiment / "table.md").write_text(text, encoding="utf-8")
    result = {
        "command": command,
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "task": plain.name,
        "model": args.model,
        "n": args.n,
        "dedup": args.dedup,
        "attributes": attributes,
        "sample_size": analyses["size"],
        "rows": [row.__dict__ for row in rows],
    }
    (experiment / "results.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"\n{table}\nwritten to {experiment}")


if __name__ == "__main__":
    from targen_dspy.backends.price_tables import bundled_price_tables

    with bundled_price_tables():  # the price tables litellm and DSPy ship, as `targen` reads them
        main()
