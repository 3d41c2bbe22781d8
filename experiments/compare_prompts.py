"""Compiled vs hand-written TarGEN prompts (issue 5), and TarGEN vs self-reference (issue 7), judged on
real data: one downstream classifier per training set, all tested on the task's real val split.

    python experiments/compare_prompts.py --task rte --n 200 --model local
    python experiments/compare_prompts.py --task rte --n 30 --methods targen-hand targen-compiled \\
        self-reference-random self-reference-contrastive self-reference-similar self-reference-tree

Steps, in experiments/results/TASK-MODEL/nN-goldG/:
1. gold: --gold examples drawn from the real *train* split (never val); compile the TarGEN program from
   them (`optimizers.compile_program`, bootstrap) into ../program-goldG-seedS.json, unless it is already
   there: every n on the same task and model shares it.
2. generate: one run directory per method under runs/. Every TarGEN run gets the same contexts and seeds:
   the first run's materials.json is kept beside the runs and copied into every other TarGEN run
   directory before it starts (the engine reuses an existing materials.json with enough seeds).
3. judge: the downstream classifier (`analysis.downstream.evaluate`) trained on each set, the real train
   split (capped at --real-cap) included, tested on the real val split; and the analysis figures of each
   set on equal-size samples (report.md and plots per set under analysis/).
4. write table.md, results.json, accuracy.png, labels.png, diversity.png, and the summary of every
   experiment so far, experiments/results/compare_prompts.md.

Rerunning the same command resumes: the compiled program and finished runs are reused, unfinished runs resume,
and timings.json adds up the wall time of every invocation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the package is imported where it is used: --help and the tests stay fast
    import dspy

    from targen_dspy.analysis.downstream import DownstreamResult
    from targen_dspy.analysis.embeddings import Encoder
    from targen_dspy.program import TarGEN
    from targen_dspy.signatures import TaskSpec

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"
SUMMARY = "compare_prompts.md"
DEFAULT_DATA = REPO.parent / "shared" / "data"
TASKS = ("rte", "copa", "wic", "boolq")
SELF_REFERENCE = "self-reference-"
METHODS = (
    "targen-hand",
    "targen-compiled",
    *(SELF_REFERENCE + s for s in ("random", "contrastive", "similar", "tree")),
)
REAL = "real-train"
BEFORE = ", labels before self-correction"


@dataclass(frozen=True)
class SetRow:
    """One training set's line in the table; None where a figure does not apply or could not be had."""

    name: str
    size: int
    labels: dict[str, int]  # label name -> count
    accuracy: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    corrector: float | None = None  # self-correction accuracy (%) on the held-out gold examples
    distinct_1: float | None = None
    distinct_2: float | None = None
    cosine: float | None = None
    near_duplicates: float | None = None
    pvi: float | None = None
    note: str = ""


# ---- arguments ----


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--n", type=int, default=200, help="instances per synthetic set (default 200)")
    parser.add_argument(
        "--gold", type=int, default=30, help="real train examples to compile from (default 30)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS[:2]), help=", ".join(METHODS))
    parser.add_argument("--model", default="local", help="'local' (embedded SmolLM2) or a litellm string")
    parser.add_argument("--api-base", help="base URL of an OpenAI-compatible server")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="real splits (../shared/data)")
    parser.add_argument("--real-cap", type=int, default=2000, help="real train examples for the baseline")
    parser.add_argument("--rounds", type=int, default=10, help="bootstrap rounds of each accuracy interval")
    parser.add_argument(
        "--seeds-per-context",
        type=int,
        default=4,
        help="TarGEN seeds asked for per context (more when a small model repeats its contexts)",
    )
    parser.add_argument("--workers", type=int, default=1, help="instances made in parallel (remote models)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--judge-only",
        action="store_true",
        help="no model calls: judge the runs as they are on disk (an interrupted run at its size so far)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    problem = check_args(args)
    if problem:
        parser.error(problem)
    return args


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, or None. WiC and BoolQ need their catalogue specs, checked later."""
    if args.task not in TASKS:
        return f"--task must be one of {', '.join(TASKS)}, got {args.task!r}"
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        return f"unknown --methods {unknown}; use some of {', '.join(METHODS)}"
    if len(set(args.methods)) != len(args.methods):
        return "--methods lists a method twice"
    if args.n < 2:
        return f"--n must be at least 2 (one instance per label), got {args.n}"
    if args.gold < 4:
        return f"--gold must be at least 4 (compile holds some out), got {args.gold}"
    if args.real_cap < 2 or args.rounds < 2 or args.workers < 1 or args.seeds_per_context < 1:
        return "--real-cap and --rounds must be at least 2, --workers and --seeds-per-context at least 1"
    return None


def model_slug(model: str) -> str:
    """A model string as a folder name: openai/gpt-4o-mini -> openai-gpt-4o-mini."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", model).strip("-").lower()


def split_path(data_dir: Path, task: str, split: str) -> Path:
    """The real split's file: TASK/SPLIT.jsonl, else the one TASK/SPLIT_*.jsonl (BoolQ's train is FewGLUE's
    32-example subset, train_fewglue32.jsonl)."""
    exact = data_dir / task / f"{split}.jsonl"
    found = [exact] if exact.exists() else sorted((data_dir / task).glob(f"{split}_*.jsonl"))
    if len(found) != 1:
        sys.exit(f"no single {split} split for {task} in {data_dir / task}; pass --data-dir (see SOURCES.md)")
    return found[0]


# ---- formatting ----


def _figure(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _labels(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return " / ".join(f"{name} {count / total:.0%}" for name, count in counts.items()) if total else "-"


def markdown_table(rows: Sequence[SetRow]) -> str:
    """The comparison table: one training set per row."""
    header = [
        "training set",
        "n",
        "labels",
        "accuracy on real val (95% CI)",
        "corrector acc. on held-out gold",
        "distinct-1",
        "distinct-2",
        "mean pairwise cosine",
        "near-duplicates",
        "mean PVI (bits)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        accuracy = (
            "n/a" if row.accuracy is None else f"{row.accuracy:.3f} ({row.ci_low:.3f}-{row.ci_high:.3f})"
        )
        cells = [
            row.name + (f" ({row.note})" if row.note else ""),
            str(row.size),
            _labels(row.labels),
            accuracy,
            "n/a" if row.corrector is None else f"{row.corrector:.1f}%",
            _figure(row.distinct_1),
            _figure(row.distinct_2),
            _figure(row.cosine),
            "n/a" if row.near_duplicates is None else f"{row.near_duplicates:.1%}",
            _figure(row.pvi),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def section(result: dict[str, Any], images: str) -> str:
    """An experiment's part of the summary, or its own table.md; `images` is the plots' folder from there."""
    s = result["settings"]
    timings = "; ".join(f"{step} {_minutes(sec)}" for step, sec in result["timings"].items())
    lines = [
        f"## {s['task']}, model `{s['model']}`, n = {s['n']}, gold = {s['gold']}",
        "",
        f"`{result['command']}`, finished {result['finished']}. Test set: the real val split, "
        f"{result['test_size']} examples (majority class {result['majority']:.3f}). Accuracy: "
        f"`analysis.downstream.evaluate`, {s['rounds']} bootstrap rounds. Diversity and PVI: each set "
        f"on a random sample of {result['analysis_size']} (the smallest set's size). Corrector: "
        f"self-correction accuracy on the {result['held_out_gold']} held-out gold examples (of the "
        f"real train split), each shown with its true and with a wrong label. Same contexts and seeds in "
        f"every TarGEN run: {result['same_materials']}.",
        "",
        markdown_table([SetRow(**row) for row in result["rows"]]),
        "",
        f"Wall time (all invocations): {_minutes(sum(result['timings'].values()))} ({timings}).",
        "",
        f"![accuracy]({images}/accuracy.png) ![labels]({images}/labels.png) "
        f"![diversity]({images}/diversity.png)",
        "",
    ]
    generation = result.get("generation") or {}
    if generation:
        lines += ["| run | instances | relabeled | failed | stopped |", "|---|---|---|---|---|"]
        for name, g in generation.items():
            lines.append(
                f"| {name} | {g['instances']} | {g.get('relabeled', 'n/a')} | {g['failed']} "
                f"| {g.get('stopped') or '-'} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_summary(out: Path) -> Path:
    """compare_prompts.md: every experiment under `out`, by folder name."""
    found = sorted(out.glob("*/n*-gold*/results.json"))  # not other experiments' (datagen/)
    parts = [
        "# Compiled vs hand-written prompts, TarGEN vs self-reference",
        "",
        "Written by `experiments/compare_prompts.py`; one section per experiment folder. Synthetic sets "
        "and the real train split train the same classifier (logistic regression on all-MiniLM-L6-v2 "
        "features); all are tested on the task's real val split.",
        "",
        *(section(json.loads(p.read_text(encoding="utf-8")), str(p.parent.relative_to(out))) for p in found),
    ]
    path = out / SUMMARY
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# ---- resumable steps ----


@contextmanager
def timed(experiment: Path, step: str) -> Iterator[None]:
    """Adds the step's wall time to timings.json, also when it is interrupted."""
    started = time.monotonic()
    try:
        yield
    finally:
        path = experiment / "timings.json"
        timings = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        timings[step] = round(timings.get(step, 0.0) + time.monotonic() - started, 1)
        path.write_text(json.dumps(timings, indent=2), encoding="utf-8")


def compiled_program(
    spec: TaskSpec,
    gold: list[dict],
    gold_rows: list[int],
    experiment: Path,
    lm: dspy.LM,
    args: argparse.Namespace,
) -> tuple[TarGEN, dict[str, Any]]:
    """The compiled program and its held-out scores, read back when it was compiled from this gold."""
    from targen_dspy.optimizers import CompileSettings, compile_program, load_compiled, save_compiled
    from targen_dspy.optimizers.program_file import RECORD_KEY
    from targen_dspy.program import TarGEN

    path = _program_path(experiment, args)
    if path.exists():
        record = json.loads(path.read_text(encoding="utf-8"))[RECORD_KEY]
        if record.get("gold_rows") == gold_rows:
            program = load_compiled(spec, path)
            program.set_lm(lm)
            return program, record["scores"]
    print(f"compiling from {len(gold)} gold examples (bootstrap)", flush=True)
    settings = CompileSettings(optimizer="bootstrap", seed=args.seed)
    program = TarGEN(spec)
    program.set_lm(lm)
    with timed(experiment, "compile"):
        compiled, scores = compile_program(program, gold, settings, progress=not args.quiet)
    record = {"models": {"generator": args.model}, "optimizer": asdict(settings), "scores": scores}
    save_compiled(compiled, path, {**record, "gold_rows": gold_rows})
    compiled.set_lm(lm)
    return compiled, scores


def _program_path(experiment: Path, args: argparse.Namespace) -> Path:
    return experiment.parent / f"program-gold{args.gold}-seed{args.seed}.json"


def on_disk(run_dir: Path) -> dict[str, Any]:
    """What a run holds so far, for --judge-only (stats.json is written only when a run finishes)."""
    records = _records(run_dir / "data.jsonl")
    failed = run_dir / "failed.jsonl"
    stats = run_dir / "stats.json"
    stopped = json.loads(stats.read_text(encoding="utf-8")).get("stopped") if stats.exists() else None
    return {
        "instances": len(records),
        "relabeled": sum(r["relabeled"] for r in records if "relabeled" in r),
        "failed": len(failed.read_text(encoding="utf-8").splitlines()) if failed.exists() else 0,
        "stopped": stopped if stats.exists() else "interrupted: judged at its size so far",
    }


def generate_targen(program: TarGEN, name: str, experiment: Path, args: argparse.Namespace) -> dict[str, Any]:
    from targen_dspy.engine.limits import parse_attempts
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.engine.runner import RunSettings, run

    run_dir = RunDirectory(experiment / "runs" / name)
    shared = experiment / "materials.json"
    if shared.exists() and not run_dir.materials.exists():
        run_dir.create()
        shutil.copyfile(shared, run_dir.materials)
    print(f"generating {args.n} instances: {name}", flush=True)
    with timed(experiment, name):
        stats = run(
            program,
            run_dir,
            RunSettings(
                n=args.n,
                seeds_per_context=args.seeds_per_context,
                workers=args.workers,
                max_attempts=parse_attempts(args.model),  # as `targen generate` asks this model
            ),
            _models(args),
            progress=not args.quiet,
        )
    if not shared.exists():
        shutil.copyfile(run_dir.materials, shared)
    return {"instances": stats.instances, "relabeled": stats.relabeled, "failed": stats.failed_slots}


def generate_self_reference(
    spec: TaskSpec, name: str, experiment: Path, lm: dspy.LM, encoder: Encoder, args: argparse.Namespace
) -> dict[str, Any]:
    from targen_dspy.engine.rounds import RoundSettings, format_example, run_self_reference
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.engine.runner import RunSettings
    from targen_dspy.program.self_reference import SelfReferenceGenerator

    program = SelfReferenceGenerator(spec, format_example(spec, None))
    program.set_lm(lm)
    settings = RoundSettings(n=args.n, strategy=name.removeprefix(SELF_REFERENCE), seed=args.seed)
    run_dir = RunDirectory(experiment / "runs" / name)
    print(f"generating {args.n} examples: {name}", flush=True)
    with timed(experiment, name):
        stats = run_self_reference(
            program,
            run_dir,
            settings,
            _models(args),
            calls=RunSettings(n=args.n, workers=args.workers),  # a tree round's calls in parallel
            embed=encoder.embed,
            progress=not args.quiet,
        )
    return {"instances": stats["instances"], "failed": stats["failed_calls"], "stopped": stats["stopped"]}


def _models(args: argparse.Namespace) -> dict[str, str]:
    return {"generator": args.model, "corrector": args.model}


# ---- judging ----


def downstream(
    spec: TaskSpec,
    records: list[dict],
    test: list[dict],
    encoder: Encoder,
    cache: Path,
    args: argparse.Namespace,
) -> DownstreamResult:
    """`analysis.downstream.evaluate`, its results kept in `cache` by the content of train and test and the
    settings: a rerun, or another n on the same task and model (the real baseline), does not refit."""
    from targen_dspy.analysis.downstream import DownstreamResult, evaluate

    key = hashlib.sha256(
        json.dumps([records, test, args.rounds, args.seed], sort_keys=True, default=str).encode()
    ).hexdigest()
    known = json.loads(cache.read_text(encoding="utf-8")) if cache.exists() else {}
    if key in known:
        return DownstreamResult(**{**known[key], "round_accuracies": tuple(known[key]["round_accuracies"])})
    result = evaluate(
        records, test, spec, encoder, rounds=args.rounds, seed=args.seed, progress=not args.quiet
    )
    known[key] = asdict(result)
    cache.write_text(json.dumps(known, indent=1), encoding="utf-8")
    return result


def judge(
    spec: TaskSpec,
    sets: dict[str, tuple[Path, list[dict]]],
    test: list[dict],
    correctors: dict[str, float],
    encoder: Encoder,
    experiment: Path,
    args: argparse.Namespace,
) -> tuple[list[SetRow], dict[str, Any]]:
    """Accuracy on `test` and the analysis figures of each training set; writes analysis/NAME/report.md."""
    from targen_dspy.analysis.records import label_key, label_name
    from targen_dspy.analysis.report import write_report
    from targen_dspy.analysis.summary import Dataset, analyse

    counts = {
        name: Counter(label_key(r[spec.label_field]) for r in records) for name, (_, records) in sets.items()
    }
    # the analysis compares sets on samples of one size; a classifier needs two labels
    size = min(len(records) for _, records in sets.values() if records)
    rows, analyses = [], {}
    for name, (path, records) in sets.items():
        labels = {label_name(label_key(v)): counts[name].get(label_key(v), 0) for v in spec.label_values}
        if not records:
            rows.append(SetRow(name, 0, labels, corrector=correctors.get(name), note="no instances"))
            continue
        print(f"judging {name}: {len(records)} training examples", flush=True)
        result = None
        if len(counts[name]) > 1:
            result = downstream(spec, records, test, encoder, experiment.parent / "downstream.json", args)
        sample = random.Random(args.seed).sample(records, size)
        analysis = analyse(Dataset(name, path, sample), None, encoder, spec=spec, progress=not args.quiet)
        write_report(analysis, experiment / "analysis" / model_slug(name))
        figures = analysis.sets[0]
        analyses[name] = figures
        rows.append(
            SetRow(
                name,
                len(records),
                labels,
                accuracy=result.accuracy if result else None,
                ci_low=result.ci_low if result else None,
                ci_high=result.ci_high if result else None,
                corrector=correctors.get(name),
                distinct_1=figures.lexical.distinct_1,
                distinct_2=figures.lexical.distinct_2,
                cosine=figures.cosine.mean,
                near_duplicates=figures.cosine.near_duplicate_rate,
                pvi=figures.pvi.v_information if result and figures.pvi else None,  # 0 with one label
                note="" if result else "one label only: no classifier",
            )
        )
    return rows, {"size": size, "sets": analyses}


def plot(rows: Sequence[SetRow], analyses: dict[str, Any], majority: float, experiment: Path) -> None:
    """accuracy.png, labels.png and diversity.png across the training sets."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from targen_dspy.analysis.semantic import COSINE_EDGES

    def save(figure: Figure, name: str) -> None:
        FigureCanvasAgg(figure)
        figure.savefig(experiment / name, dpi=110, bbox_inches="tight")

    judged = [row for row in rows if row.accuracy is not None]
    figure = Figure(figsize=(6.5, 0.6 + 0.45 * len(judged)))
    axes = figure.add_subplot()
    y = np.arange(len(judged))
    accuracy = np.array([row.accuracy for row in judged])
    spread = [accuracy - [row.ci_low for row in judged], [row.ci_high for row in judged] - accuracy]
    axes.barh(y, accuracy, xerr=spread, color="tab:blue", alpha=0.7, capsize=3)
    axes.axvline(majority, color="grey", linestyle="--", linewidth=1, label=f"majority class {majority:.3f}")
    axes.set_yticks(y, [f"{row.name} (n={row.size})" for row in judged])
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("accuracy on the real val split (95% CI)")
    axes.legend(fontsize=8, loc="lower right")
    save(figure, "accuracy.png")

    figure = Figure(figsize=(6.5, 0.6 + 0.45 * len(rows)))
    axes = figure.add_subplot()
    names = list(rows[0].labels)
    left = np.zeros(len(rows))
    for i, label in enumerate(names):
        share = np.array([row.labels[label] / max(sum(row.labels.values()), 1) for row in rows])
        axes.barh(np.arange(len(rows)), share, left=left, color=f"C{i}", label=label)
        left += share
    axes.set_yticks(np.arange(len(rows)), [row.name for row in rows])
    axes.invert_yaxis()
    axes.set_xlabel("share of the training set")
    axes.legend(fontsize=8, ncols=len(names), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    save(figure, "labels.png")

    figure = Figure(figsize=(11, 3.6))
    cosine, pvi = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    widths = np.diff(COSINE_EDGES)
    for i, (name, figures) in enumerate(analyses.items()):
        counts = figures.cosine.histogram
        cosine.stairs(counts / max(counts.sum(), 1) / widths, COSINE_EDGES, color=f"C{i}", label=name)
        if figures.pvi is not None:
            pvi.hist(
                np.clip(figures.pvi.values, -6, None),
                bins=30,
                density=True,
                histtype="step",
                color=f"C{i}",
                label=name,
            )
    cosine.set_xlim(-0.3, 1)
    cosine.set_xlabel("pairwise cosine (all-MiniLM-L6-v2)")
    cosine.set_title("Semantic diversity")
    pvi.axvline(0, color="grey", linestyle="--", linewidth=1)
    pvi.set_xlabel("PVI (bits; below -6 shown at -6)")
    pvi.set_title("Difficulty")
    for axes in (cosine, pvi):
        axes.set_ylabel("density")
        axes.legend(fontsize=7)
    save(figure, "diversity.png")


# ---- the experiment ----


def _experiment_dir(args: argparse.Namespace) -> Path:
    return args.out / f"{args.task}-{model_slug(args.model)}" / f"n{args.n}-gold{args.gold}"


def _records(data: Path) -> list[dict]:
    from targen_dspy.analysis.records import read_jsonl

    return read_jsonl(data) if data.exists() and data.stat().st_size else []


def _load_split(spec: TaskSpec, path: Path) -> list[dict]:
    from targen_dspy.optimizers import load_gold

    return load_gold(spec, path)  # checks fields and labels; keeps only the task's fields and label


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # `kill` stops a background run like Ctrl-C does: the engine's and timed()'s cleanup still runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    from targen_dspy.analysis.embeddings import load_encoder
    from targen_dspy.signatures import load_task

    spec = load_task(args.task)
    train_path = split_path(args.data_dir, args.task, "train")
    train = _load_split(spec, train_path)
    test = _load_split(spec, split_path(args.data_dir, args.task, "val"))
    if args.gold > len(train):
        sys.exit(f"--gold {args.gold} is more than the {len(train)} examples of the real train split")
    rng = random.Random(args.seed)
    gold_rows = sorted(rng.sample(range(len(train)), args.gold))
    real_rows = sorted(rng.sample(range(len(train)), min(args.real_cap, len(train))))
    experiment = _experiment_dir(args)
    experiment.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder()

    sets, generation, scores = _generate_all(
        spec, [train[i] for i in gold_rows], gold_rows, experiment, encoder, args
    )
    sets = _with_ablations(spec, sets)
    sets[REAL] = (train_path, [train[i] for i in real_rows])
    scores = _compile_scores(experiment, args) if args.judge_only else scores
    correctors = (
        {
            "targen-hand": scores["correction_accuracy"]["hand_written"],
            "targen-compiled": scores["correction_accuracy"]["compiled"],
        }
        if scores
        else {}
    )
    with timed(experiment, "judge"):
        rows, analyses = judge(spec, sets, test, correctors, encoder, experiment, args)
        majority = max(Counter(json.dumps(r[spec.label_field]) for r in test).values()) / len(test)
        plot(rows, analyses["sets"], majority, experiment)
    result = {
        "command": " ".join(["python experiments/compare_prompts.py", *(argv or sys.argv[1:])]),
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "directory": str(experiment.relative_to(args.out)),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"},
        "gold_rows": gold_rows,
        "held_out_gold": scores["held_out_gold_examples"] if scores else 0,
        "compile_scores": scores,
        "test_size": len(test),
        "majority": majority,
        "analysis_size": analyses["size"],
        "same_materials": _same_materials(experiment, generation),
        "generation": generation,
        "rows": [asdict(row) for row in rows],
        "timings": json.loads((experiment / "timings.json").read_text(encoding="utf-8")),
    }
    (experiment / "results.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (experiment / "table.md").write_text(section(result, "."), encoding="utf-8")
    print(f"\n{section(result, str(experiment))}\nwritten to {experiment} and {write_summary(args.out)}")


def _generate_all(
    spec, gold: list[dict], gold_rows: list[int], experiment: Path, encoder, args: argparse.Namespace
) -> tuple[dict[str, tuple[Path, list[dict]]], dict[str, dict[str, Any]], dict | None]:
    """Each method's run (or, with --judge-only, what is on disk): its data, its figures, and the compile
    scores when a compiled program was made. One method's failure does not lose the others' results."""
    import dspy

    from targen_dspy.backends import adapter_for, build_lm
    from targen_dspy.errors import TargenError
    from targen_dspy.program import TarGEN

    lm = build_lm(args.model, api_base=args.api_base)
    sets: dict[str, tuple[Path, list[dict]]] = {}
    generation: dict[str, dict[str, Any]] = {}
    scores = None
    with dspy.context(adapter=adapter_for(args.model, spec)):
        for method in args.methods:
            try:
                if args.judge_only:
                    generation[method] = on_disk(experiment / "runs" / method)
                elif method.startswith("targen"):
                    if scores is None:  # compiled once, also when only the hand-written run is asked for
                        compiled, scores = compiled_program(spec, gold, gold_rows, experiment, lm, args)
                    program = compiled if method == "targen-compiled" else TarGEN(spec)
                    program.set_lm(lm)
                    generation[method] = generate_targen(program, method, experiment, args)
                else:
                    generation[method] = generate_self_reference(spec, method, experiment, lm, encoder, args)
            except TargenError as exc:
                print(f"{method} failed: {exc}", file=sys.stderr)
                generation[method] = {"instances": 0, "failed": "-", "stopped": str(exc)}
                continue
            data = experiment / "runs" / method / "data.jsonl"
            sets[method] = (data, _records(data))
    return sets, generation, scores


def _with_ablations(spec, sets: dict[str, tuple[Path, list[dict]]]) -> dict[str, tuple[Path, list[dict]]]:
    """The sets in table order, each TarGEN set followed by its labels before self-correction: the
    ablation, and the only trainable set when a weak corrector maps everything to one label."""
    ordered: dict[str, tuple[Path, list[dict]]] = {}
    for method in [m for m in METHODS if m in sets]:
        ordered[method] = data, records = sets[method]
        if method.startswith("targen"):
            before = [{**r, spec.label_field: r["constrained_label"]} for r in records]
            ordered[method + BEFORE] = (data, before)
    return ordered


def _compile_scores(experiment: Path, args: argparse.Namespace) -> dict | None:
    """The scores recorded in the experiment's compiled program, when there is one (--judge-only)."""
    from targen_dspy.optimizers.program_file import RECORD_KEY

    path = _program_path(experiment, args)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))[RECORD_KEY]["scores"]


def _same_materials(experiment: Path, generation: dict[str, dict[str, Any]]) -> str:
    """Whether the TarGEN runs shared their contexts and seeds (the comparison isolates the prompts)."""
    runs = [experiment / "runs" / m / "materials.json" for m in generation if m.startswith("targen")]
    if len(runs) < 2:
        return "n/a (one TarGEN run)"
    shared = (experiment / "materials.json").read_bytes()
    return "yes" if all(p.read_bytes() == shared for p in runs if p.exists()) else "no"


if __name__ == "__main__":
    from targen_dspy.backends.price_tables import bundled_price_tables

    with bundled_price_tables():  # the price tables litellm and DSPy ship, as `targen` reads them
        main()
