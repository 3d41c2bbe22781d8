"""Task-shaped text on the embedded model (issue 17): the share of instances that pass the shape check
(`targen_dspy.text.shape`: a several-word context, a seed that fits its description, every field
within its word bounds, no copy of the spec's text or bare label name, no two fields the same text),
with the levers that get it out of a 135M model switched on and off.

    python experiments/embedded_quality.py                       # every closed-label task, before/after
    python experiments/embedded_quality.py --tasks rte ticket_urgency --configs only:examples without:reject

Levers (`LEVERS`): `examples` (one formatting example per step), `bounds` (the spec's min_words/max_words,
enforced by the local grammar and checked for any model), `reject` (the program asks again for contexts,
seeds and instances that are not task-shaped), `one_seed` (one seed per call), `hide_avoid` (the
contexts and seeds steps are not shown what to avoid), `no_copy` (no run of about five words repeated
from the prompt or within the answer). A configuration is `before` (none: the program as
it was), `after` (all), `only:LEVER` or `without:LEVER`.

Each run is `targen generate TASK -n N --correction off` (self-correction changes labels, not shape) into
OUT/TASK/CONFIG/ (resumed if there); a run that stops early (too few distinct seeds) counts the instances
it wrote. Writes OUT/table.md and OUT/results.json, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "experiments" / "results" / "embedded_quality"
TASKS = ("rte", "cb", "copa", "boolq", "wic", "wsc", "axg", "multirc", "record", "ticket_urgency")
LEVERS = ("examples", "bounds", "reject", "one_seed", "hide_avoid", "no_copy")
TARGET = 0.9


def levers_of(config: str) -> frozenset[str]:
    """The levers a configuration switches on."""
    if config == "before":
        return frozenset()
    if config == "after":
        return frozenset(LEVERS)
    kind, _, lever = config.partition(":")
    if lever not in LEVERS or kind not in ("only", "without"):
        raise argparse.ArgumentTypeError(
            f"{config!r}: a configuration is before, after, only:LEVER or without:LEVER ({', '.join(LEVERS)})"
        )
    return frozenset({lever}) if kind == "only" else frozenset(LEVERS) - {lever}


@dataclass(frozen=True)
class Cell:
    task: str
    config: str
    passing: int
    written: int
    n: int
    calls: int
    seconds: float
    error: str | None = None
    example_problems: tuple[str, ...] = ()  # a few problems of failing instances, to read

    @property
    def share(self) -> float:
        return self.passing / self.n


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--configs", nargs="+", default=["before", "after"], type=_config)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--model", default="local")
    parser.add_argument("--api-base")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--score-only", action="store_true", help="judge the runs on disk again, no model calls"
    )
    return parser.parse_args(argv)


def _config(text: str) -> str:
    levers_of(text)
    return text


def without_bounds(spec: Any) -> Any:
    """The spec with every field's and seed part's min_words/max_words taken out."""
    from targen_dspy.signatures.spec import parse_spec

    data = spec.model_dump(mode="json")
    for group in (data["fields"], data.get("generate") or {}, data["seed"].get("parts") or {}):
        for field in group.values():
            field.pop("min_words", None)
            field.pop("max_words", None)
    return parse_spec(data, source=spec.name)


def run_dir_of(spec: Any, config: str, args: argparse.Namespace) -> Path:
    return args.out / spec.name / config.replace(":", "-")


def generate(spec: Any, config: str, lm: Any, args: argparse.Namespace) -> Cell:
    """One run (resumed if there) and its shape-check figures."""
    import dspy

    from targen_dspy.backends import LOCAL, adapter_for
    from targen_dspy.backends.compact_adapter import CompactJSONAdapter, LocalLevers
    from targen_dspy.engine.limits import parse_attempts
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.engine.runner import RunSettings, run
    from targen_dspy.errors import TargenError
    from targen_dspy.program import TarGEN
    from targen_dspy.program.options import GenerationOptions

    levers = levers_of(config)
    task_spec = spec if "bounds" in levers else without_bounds(spec)
    program = TarGEN(task_spec, GenerationOptions(correction="off"))
    program.check_shapes("reject" in levers)
    program.set_lm(lm)
    if args.model == LOCAL:
        local = LocalLevers(
            examples="examples" in levers,
            word_bounds="bounds" in levers,
            one_seed="one_seed" in levers,
            hide_avoid="hide_avoid" in levers,
            no_copy="no_copy" in levers,
        )
        adapter = CompactJSONAdapter(task_spec, local)
    else:  # a remote model gets the prompts it always gets; bounds and rejection are the program's
        adapter = adapter_for(args.model, task_spec)
    run_dir = RunDirectory(run_dir_of(spec, config, args))
    print(f"{spec.name} {config}: {args.n} instances", flush=True)
    started, error, calls = time.monotonic(), None, 0
    try:
        with dspy.context(adapter=adapter):
            stats = run(
                program,
                run_dir,
                RunSettings(n=args.n, max_attempts=parse_attempts(args.model)),
                {"generator": args.model},
                progress=not args.quiet,
            )
        calls = stats.this_invocation["calls"]
    except TargenError as exc:
        error = str(exc)
    return score(spec, config, args, calls, round(time.monotonic() - started, 1), error)


def score(
    spec: Any, config: str, args: argparse.Namespace, calls: int, seconds: float, error: str | None
) -> Cell:
    """The shape-check figures of a run on disk, judged by the full spec (its bounds are the task's
    shape) with the current check."""
    from targen_dspy.analysis.records import read_jsonl
    from targen_dspy.text.shape import ShapeCheck

    data = run_dir_of(spec, config, args) / "data.jsonl"
    records = read_jsonl(data) if data.exists() else []
    check = ShapeCheck(spec)
    problems = [check.record(record) for record in records]
    return Cell(
        task=spec.name,
        config=config,
        passing=sum(not found for found in problems),
        written=len(records),
        n=args.n,
        calls=calls,
        seconds=seconds,
        error=error,
        example_problems=tuple(found[0] for found in problems if found)[:3],
    )


def rescored(spec: Any, config: str, args: argparse.Namespace) -> Cell:
    """--score-only: the run on disk judged again, its calls and time as the run recorded them. (Running
    it again would not do: a rerun asks its failed slots again, with new seeds.)"""
    previous = args.out / "results.json"
    cells = json.loads(previous.read_text(encoding="utf-8"))["cells"] if previous.exists() else []
    old = next((c for c in cells if (c["task"], c["config"]) == (spec.name, config)), {})
    return score(spec, config, args, old.get("calls", 0), old.get("seconds", 0.0), old.get("error"))


def merged(cells: list[Cell], previous: Path) -> list[Cell]:
    """The cells of this invocation with those of earlier ones (other tasks or configurations) kept."""
    if not previous.exists():
        return cells
    new = {(cell.task, cell.config) for cell in cells}
    old = json.loads(previous.read_text(encoding="utf-8"))["cells"]
    kept = [Cell(**{**row, "example_problems": tuple(row["example_problems"])}) for row in old]
    return [cell for cell in kept if (cell.task, cell.config) not in new] + cells


def config_order(config: str) -> tuple[int, str]:
    return (["before", "only", "without", "after"].index(config.partition(":")[0]), config)


def markdown_table(cells: list[Cell]) -> str:
    """Tasks by configurations: instances passing the shape check of the N asked for, and all tasks."""
    configs = sorted({cell.config for cell in cells}, key=config_order)
    tasks = sorted({cell.task for cell in cells}, key=lambda task: (TASKS + (task,)).index(task))
    by_key = {(cell.task, cell.config): cell for cell in cells}
    lines = ["| task | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    for task in tasks:
        row = [_share(c.passing, c.n) if (c := by_key.get((task, config))) else "" for config in configs]
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    totals = []
    for config in configs:
        column = [cell for cell in cells if cell.config == config]
        totals.append(_share(sum(c.passing for c in column), sum(c.n for c in column)))
    lines.append("| all | " + " | ".join(totals) + " |")
    return "\n".join(lines) + "\n"


def _share(passing: int, n: int) -> str:
    return f"{passing}/{n} ({passing / n:.0%})"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from targen_dspy.backends import build_lm
    from targen_dspy.engine.cache import run_cache
    from targen_dspy.errors import TargenError
    from targen_dspy.signatures import load_task

    try:
        specs = [load_task(task) for task in args.tasks]
        lm = build_lm(args.model, api_base=args.api_base)
    except TargenError as exc:
        sys.exit(f"embedded_quality: {exc}")
    if any(spec.open_label for spec in specs):
        sys.exit("embedded_quality: the shape check is for closed-label tasks (math_word is open-label)")
    args.out.mkdir(parents=True, exist_ok=True)
    command = " ".join(
        ["python experiments/embedded_quality.py", *(argv if argv is not None else sys.argv[1:])]
    )
    cells: list[Cell] = []
    with run_cache():
        for spec in specs:
            for config in args.configs:
                judge = rescored if args.score_only else partial(generate, lm=lm)
                cells.append(judge(spec, config, args=args))
                # written after every run: a long measurement shows what it has so far
                table = write_results(merged(cells, args.out / "results.json"), command, args)
    print(f"\n{table}\nwritten to {args.out}")


def write_results(cells: list[Cell], command: str, args: argparse.Namespace) -> str:
    """table.md and results.json under --out; returns the table."""
    table = markdown_table(cells)
    notes = [f"- {cell.task} {cell.config}: {cell.error}" for cell in cells if cell.error is not None]
    text = (
        f"# Task-shaped instances: model {args.model}, n = {args.n}, --correction off\n\n`{command}`\n\n"
        f"Instances passing the shape check of the {args.n} asked for (target {TARGET:.0%}).\n\n{table}"
        + ("\nRuns that stopped early:\n" + "\n".join(notes) + "\n" if notes else "")
    )
    (args.out / "table.md").write_text(text, encoding="utf-8")
    result = {
        "command": command,
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": args.model,
        "n": args.n,
        "cells": [asdict(cell) for cell in cells],
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return table


if __name__ == "__main__":
    from targen_dspy.backends.remote import bundled_price_tables

    with bundled_price_tables():  # the price tables litellm and DSPy ship, as `targen` reads them
        main()
