"""Running a TarGEN program into a run directory. The program owns the algorithm (its stages); the engine
schedules the stages' calls on workers under rate limits and retries (`calls`, `dispatch`; the workers
are threads of this process or Ray actors, `workers`), writes each result as it completes, meters the
run and resumes it: re-running the same command goes on where it stopped."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy
from tqdm import tqdm

from targen_dspy.backends.hot_paths import RUN_SETTINGS, memoized_dspy_lookups
from targen_dspy.engine.calls import CallEngine, RunSettings
from targen_dspy.engine.dispatch import StageScheduler, dispatch
from targen_dspy.engine.limits import Unparseable
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.stats import RunStats
from targen_dspy.engine.workers import Workers, make_slot, thread_workers
from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions
from targen_dspy.program.plan import Material, lopsided
from targen_dspy.program.records import Failure, LabelStats, Record
from targen_dspy.program.targen import Scheduler

if TYPE_CHECKING:
    from targen_dspy.engine.batch import BatchBackend
    from targen_dspy.text.vectors import Embed, NearDuplicateFilter

logger = logging.getLogger(__name__)
# Where the calls of a run are made, for the length of the run: threads (`thread_workers`) or Ray actors.
StartWorkers = Callable[[TarGEN, CallEngine], AbstractContextManager[Workers]]


def program_hash(program: dspy.Module) -> str:
    """Hash of everything that shapes the prompts: instructions, fields and demos of every predictor
    (not which model answers them: that is recorded in the manifest separately)."""
    state = {
        name: {key: value for key, value in predictor.dump_state().items() if key != "lm"}
        for name, predictor in program.named_predictors()
    }
    options = run_options(program)
    if options:  # constraints shape prompts without being a predictor's state
        state["options"] = options
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_options(program: dspy.Module) -> dict[str, Any]:
    """The program's generation options that differ from the defaults (none: plain TarGEN)."""
    options = getattr(program, "options", None)
    if not isinstance(options, GenerationOptions):
        return {}
    default = asdict(GenerationOptions())
    changed = {key: value for key, value in asdict(options).items() if value != default[key]}
    return {key: str(value) if isinstance(value, Path) else value for key, value in changed.items()}


def run(
    program: TarGEN,
    run_dir: RunDirectory,
    settings: RunSettings,
    models: dict[str, str],
    *,
    force: bool = False,
    progress: bool = True,
    embed: Embed | None = None,
    workers: StartWorkers = thread_workers,
    batch: BatchBackend | None = None,
) -> RunStats:
    """Generate `settings.n` instances into `run_dir` (resuming what is there) and return the run's stats.

    `workers` makes the calls (default: threads of this process; Ray actors), or with `batch` (and
    `settings.batch`) the provider's batch API in rounds (`engine.batch`); whatever makes them, this
    process plans the slots and alone writes the run directory, so the guarantees are the same. With
    `settings.dedup`, `embed` (texts to an array of vectors) drives group checking: an instance whose
    cosine to a kept one reaches the threshold goes to duplicates.jsonl, not data.jsonl, and is not
    replaced."""
    if settings.dedup is not None and embed is None:
        raise RunError('--dedup needs sentence embeddings: pip install -e ".[embeddings]"')
    run_dir.claim(_manifest(program, settings, models), force)
    engine = CallEngine(settings)
    outputs = _Outputs(run_dir, program.spec.label_field, _group_check(program, run_dir, settings, embed))
    started = time.monotonic()
    stopped: Unparseable | None = None
    with (
        dspy.context(**RUN_SETTINGS),
        memoized_dspy_lookups(),
        outputs,
        ExitStack() as stack,
    ):
        if batch is None:
            stack.enter_context(engine.meter.counting(program))
            calls = stack.enter_context(workers(program, engine))
            scheduler: Scheduler = StageScheduler(calls)
            make_all = partial(dispatch, calls.make, in_flight=calls.in_flight)
        else:
            rounds = stack.enter_context(batch.rounds(run_dir, engine.meter, settings, progress))
            scheduler = rounds.scheduler()
            make_all = partial(rounds.make, partial(make_slot, program))
        done = done_slots(run_dir)
        materials = _materials(program, run_dir, scheduler, settings, progress)
        failed = _failed_before(run_dir)
        todo = (
            replace(slot, failed_before=failed[slot.id])
            for slot in program.plan(settings.n, materials)
            if slot.id not in done
        )
        bar = tqdm(total=settings.n, initial=min(len(done), settings.n), desc=program.spec.name, unit="inst",
                   disable=not progress)  # fmt: skip
        try:
            for made in make_all(todo):
                outputs.put(made)
                bar.set_postfix(outputs.postfix, refresh=False)
                bar.update()
        except Unparseable as exc:  # contexts or seeds: no more slots can be planned without them
            stopped = exc
        bar.close()
    figures = calls.figures() if batch is None else {}
    stats = _stats(program, run_dir, engine, outputs, time.monotonic() - started, figures)
    if batch is not None:
        stats.batch = rounds.summary()
    run_dir.write_json(run_dir.stats, stats.to_json())
    if stopped is not None:
        raise RunError(
            f"{stopped.describe(models['generator'])}; {stats.instances} instances are kept: check the "
            "model or its server, or try a stronger --model, then rerun to resume"
        )
    return stats


def _manifest(program: TarGEN, settings: RunSettings, models: dict[str, str]) -> dict[str, Any]:
    """What a resumed run must match (spec and program hashes) and what it was made with."""
    return {
        "task": program.spec.name,
        "spec_hash": program.spec.hash,
        "program_hash": program_hash(program),
        "models": models,
        "settings": {k: v for k, v in asdict(settings).items() if k != "retry"},
        "options": run_options(program),
    }


def _group_check(
    program: TarGEN, run_dir: RunDirectory, settings: RunSettings, embed: Embed | None
) -> NearDuplicateFilter | None:
    """Group checking's filter, holding a resumed run's kept instances (embedded again); numpy and the
    embeddings are imported only for it."""
    if settings.dedup is None or embed is None:
        return None
    from targen_dspy.text.fields import text_fields
    from targen_dspy.text.vectors import NearDuplicateFilter

    group = NearDuplicateFilter(embed, settings.dedup, text_fields(program.spec))
    group.load(run_dir.iter_records())
    return group


def done_slots(run_dir: RunDirectory) -> set[str]:
    """The ids of the slots a run has finished: kept, found duplicate or rejected (failed ones are
    tried again)."""
    files = (run_dir.data, run_dir.duplicates, run_dir.rejected)
    return {record["id"] for path in files for record in run_dir.iter_jsonl(path)}


class _Outputs:
    """Where each finished slot goes (data, failed, rejected or duplicates .jsonl), counted."""

    def __init__(self, run_dir: RunDirectory, label_field: str, group: NearDuplicateFilter | None):
        self.run_dir, self.label_field, self.group = run_dir, label_field, group
        self.made = self.failed = self.duplicates = 0
        self._files = ExitStack()

    def __enter__(self) -> _Outputs:
        run_dir = self.run_dir
        self.data, self.failures, self.rejections, self.copies = (
            self._files.enter_context(run_dir.appender(path))
            for path in (run_dir.data, run_dir.failed, run_dir.rejected, run_dir.duplicates)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._files.close()

    def put(self, made: Record | Failure) -> None:
        if isinstance(made, Failure):
            self.failed += 1
            self.failures.append(made.row())
            return
        self.made += 1
        row = made.row(self.label_field)
        if made.rejected:
            self.rejections.append(row)
        elif self.group is not None and (duplicate := self.group.check(row)) is not None:
            self.duplicates += 1
            self.copies.append({**row, "duplicate_of": duplicate.of, "cosine": duplicate.cosine})
        else:
            self.data.append(row)

    @property
    def postfix(self) -> dict[str, int]:
        return {"failed": self.failed, **({"duplicates": self.duplicates} if self.group else {})}


def _stats(
    program: TarGEN,
    run_dir: RunDirectory,
    engine: CallEngine,
    outputs: _Outputs,
    seconds: float,
    figures: dict[str, int],
) -> RunStats:
    verified = {"verify_code", "corpus"} & run_options(program).keys()
    stats = RunStats(
        data=LabelStats.of(run_dir.iter_records(), program.spec.label_field),
        failed_slots=outputs.failed,
        retries=dict(_earlier_retries(run_dir) + engine.meter.parse_retries),
        duplicates_removed=_count(run_dir.iter_jsonl(run_dir.duplicates)) if outputs.group else None,
        rejected_by=_rejected_by(run_dir) if verified else None,
        this_invocation={
            **engine.meter.summary(),
            "slots_made": outputs.made,
            "seconds": round(seconds, 3),
            "instances_per_second": round(outputs.made / seconds, 3) if seconds else None,
            **figures,
        },
    )
    if program.options.correction == "relabel":
        stats.label_imbalance = lopsided(program.spec, engine.settings.n, dict(stats.data.labels))
    return stats


def _materials(
    program: TarGEN, run_dir: RunDirectory, run: Scheduler, settings: RunSettings, progress: bool
) -> Iterator[Material]:
    """The program's contexts and seeds, kept in materials.json (written once per round: rewriting the
    growing file per context would cost O(n²); a run killed mid-round replays that round's calls from
    DSPy's cache when it resumes), with a progress bar of the seeds."""
    stored = [
        Material(context, tuple(seeds)) for context, seeds in run_dir.read_json(run_dir.materials) or []
    ]

    def save(materials: list[Material]) -> None:
        run_dir.write_json(run_dir.materials, [[m.context, list(m.seeds)] for m in materials])

    needed = program.seeds_needed(settings.n)
    with tqdm(total=needed, desc="seeds", unit="seed", disable=not progress) as bar:
        for material in program.materials(settings.n, stored, run, settings.seeds_per_context, save):
            bar.update(min(len(material.seeds), needed - bar.n))
            yield material


def _failed_before(run_dir: RunDirectory) -> Counter[str]:
    """How many earlier invocations each failed slot failed in (failed.jsonl keeps one line per failure)."""
    return Counter(record["id"] for record in run_dir.iter_jsonl(run_dir.failed) if "id" in record)


def _earlier_retries(run_dir: RunDirectory) -> Counter[str]:
    """The earlier invocations' retries by step (answers that did not parse), from their stats.json (a
    corrupt one is rewritten: it only holds figures derived from the run)."""
    try:
        earlier = run_dir.read_json(run_dir.stats)
    except RunError:
        return Counter()
    retries = earlier.get("retries") if isinstance(earlier, dict) else None
    if not isinstance(retries, dict):
        return Counter()
    return Counter({step: count for step, count in retries.items() if isinstance(count, int)})


def _count(records: Iterable[Any]) -> int:
    return sum(1 for _ in records)


def _rejected_by(run_dir: RunDirectory) -> dict[str, int]:
    """Instances dropped by verification, by the step that dropped them (`code`, `corpus`)."""
    return dict(Counter(record["rejected"]["by"] for record in run_dir.iter_jsonl(run_dir.rejected)))
