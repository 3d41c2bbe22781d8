"""Running a TarGEN program into a run directory: contexts and seeds once, then one slot per instance,
dispatched to a pool of workers and written as each completes. Re-running the same command resumes."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError
from tqdm import tqdm

from targen_dspy.engine.plan import Slot, label_counts, plan_slots, seeds_needed
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from targen_dspy.program.distinct import normalise

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    n: int
    seeds_per_context: int = 4
    workers: int = 1
    max_attempts: int = 3  # per slot, each with a fresh sampling seed, for output that does not parse

    def __post_init__(self) -> None:
        if self.n < 1:
            raise RunError(f"-n must be at least 1, got {self.n}")
        if self.seeds_per_context < 1 or self.workers < 1 or self.max_attempts < 1:
            raise RunError("--seeds-per-context, --workers and attempts must be at least 1")


def program_hash(program: dspy.Module) -> str:
    """Hash of everything that shapes the prompts: instructions, fields and demos of every predictor
    (not which model answers them: that is recorded in the manifest separately)."""
    state = {
        name: {key: value for key, value in predictor.dump_state().items() if key != "lm"}
        for name, predictor in program.named_predictors()
    }
    state = json.dumps(state, sort_keys=True, default=str)
    return hashlib.sha256(state.encode()).hexdigest()[:16]


def _materials(program: TarGEN, run_dir: RunDirectory, settings: RunSettings, progress: bool):
    """Contexts and their seeds, generated once per run and kept in materials.json (grown if short).

    New contexts are asked for until there are enough seeds; a seed already used under another
    context is dropped. Gives up after three rounds that added nothing."""
    needed = seeds_needed(label_counts(program.spec, settings.n))
    materials: list[list[Any]] = run_dir.read_json(run_dir.materials) or []
    seen = {normalise(seed) for _, seeds in materials for seed in seeds}
    bar = tqdm(total=needed, initial=min(len(seen), needed), desc="seeds", unit="seed", disable=not progress)
    round_, idle = 0, 0
    while len(seen) < needed and idle < 3:
        round_, added = round_ + 1, 0
        known = [context for context, _ in materials]
        count = math.ceil((needed - len(seen)) / settings.seeds_per_context)
        for context in program.contexts(count=count, known=known, sampling_seed=100 * round_).contexts:
            seeds = []
            for seed in program.seeds(setting=context, count=settings.seeds_per_context).seeds:
                if normalise(seed) not in seen:
                    seen.add(normalise(seed))
                    seeds.append(seed)
            if seeds:
                materials.append([context, seeds])
                added += len(seeds)
                bar.update(min(len(seeds), needed - bar.n))
                run_dir.write_json(run_dir.materials, materials)
        idle = 0 if added else idle + 1
    bar.close()
    if len(seen) < needed:
        raise RunError(
            f"the model wrote only {len(seen)} distinct seeds of the {needed} this run needs; "
            "use a smaller -n, more --seeds-per-context or a stronger --model"
        )
    return [(context, seeds) for context, seeds in materials]


def _make(program: TarGEN, slot: Slot, max_attempts: int) -> dict[str, Any]:
    """One slot's record, or a failure record after `max_attempts` unparseable answers."""
    spec = program.spec
    for attempt in range(max_attempts):
        try:
            pred = program(
                setting=slot.context,
                seed=slot.seed,
                label=slot.label,
                sampling_seed=slot.sampling_seed + attempt,
            )
        except AdapterParseError as exc:
            last = exc
            continue
        return {
            "id": slot.id,
            **{name: pred[name] for name in spec.fields},
            spec.label_field: pred.label,
            "constrained_label": slot.label,
            "relabeled": pred.relabeled,
            "context": slot.context,
            "seed": slot.seed,
            "reasoning": pred.reasoning,
        }
    return {"id": slot.id, "failed": True, "error": "unparseable model output", "raw": last.lm_response}


def _dispatch(program: TarGEN, slots: list[Slot], settings: RunSettings) -> Iterator[dict[str, Any]]:
    """Rolling dispatch: a new slot starts as soon as any worker is free, so a slow call never idles
    the others; at most 2 × workers slots are in flight, whatever the size of the run."""
    pending = iter(slots)
    with ThreadPoolExecutor(settings.workers, thread_name_prefix="targen") as pool:
        running: set[Future] = set()
        try:
            while True:
                while len(running) < 2 * settings.workers and (slot := next(pending, None)) is not None:
                    # A copy of the caller's context per slot: dspy.context(...) holds in workers.
                    context = contextvars.copy_context()
                    running.add(pool.submit(context.run, _make, program, slot, settings.max_attempts))
                if not running:
                    return
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in running:
                future.cancel()


def run(
    program: TarGEN,
    run_dir: RunDirectory,
    settings: RunSettings,
    models: dict[str, str],
    *,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate `settings.n` instances into `run_dir` (resuming what is there) and return the run's stats."""
    spec = program.spec
    manifest = {
        "task": spec.name,
        "spec_hash": spec.hash,
        "program_hash": program_hash(program),
        "models": models,
        "settings": asdict(settings),
    }
    run_dir.create()
    previous = run_dir.read_json(run_dir.manifest)
    if previous and not force:
        for key, what in (("spec_hash", "task spec"), ("program_hash", "program")):
            if previous.get(key) != manifest[key]:
                raise RunError(
                    f"{run_dir.path} was made with another {what}; "
                    "use a new -o directory or --force to mix them"
                )
    run_dir.write_json(run_dir.manifest, manifest)

    slots = plan_slots(spec, settings.n, _materials(program, run_dir, settings, progress))
    done = {record["id"] for record in run_dir.records()}
    todo = [slot for slot in slots if slot.id not in done]
    failures = 0
    bar = tqdm(
        total=len(slots), initial=len(slots) - len(todo), desc=spec.name, unit="inst", disable=not progress
    )
    with run_dir.appender() as data, run_dir.appender(failed=True) as failed:
        for record in _dispatch(program, todo, settings):
            if record.get("failed"):
                failures += 1
                failed.append(record)
                bar.set_postfix(failed=failures)
            else:
                data.append(record)
            bar.update()
    bar.close()
    stats = run_stats(spec.label_field, run_dir.records(), failures)
    run_dir.write_json(run_dir.stats, stats)
    return stats


def run_stats(label_field: str, records: list[dict[str, Any]], failures: int) -> dict[str, Any]:
    """Counts and the self-correction confusion matrix (constrained label → final label)."""
    confusion: dict[str, Counter] = {}
    for record in records:
        row = confusion.setdefault(json.dumps(record["constrained_label"]), Counter())
        row[json.dumps(record[label_field])] += 1
    return {
        "instances": len(records),
        "failed_slots": failures,
        "relabeled": sum(record["relabeled"] for record in records),
        "labels": dict(Counter(json.dumps(record[label_field]) for record in records)),
        "confusion": {row: dict(cols) for row, cols in confusion.items()},
    }
