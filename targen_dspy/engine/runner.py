"""Running a TarGEN program into a run directory. The program owns the algorithm (its stages); the engine
schedules the stages' calls on a pool of workers under rate limits and retries, writes each result as it
completes, meters the run and resumes it: re-running the same command goes on where it stopped."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import dspy
from dspy.utils.exceptions import is_retryable_lm_error
from tqdm import tqdm

from targen_dspy.backends.hot_paths import memoized_dspy_lookups
from targen_dspy.engine.limits import (
    PARSE_ATTEMPTS,
    RateLimiter,
    RetryPolicy,
    Unparseable,
    call_with_retries,
    until_parsed,
)
from targen_dspy.engine.meter import Meter
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.stats import RunStats
from targen_dspy.errors import AskAgain, RunError
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions
from targen_dspy.program.plan import Material, Slot, lopsided
from targen_dspy.program.records import Failure, LabelStats, Record
from targen_dspy.signatures.spec import HookFailed

if TYPE_CHECKING:
    from targen_dspy.text.vectors import Embed

logger = logging.getLogger(__name__)
T = TypeVar("T")
FEED_POLL_SECONDS = 0.05  # how long new slots may wait while every worker is busy


@dataclass(frozen=True)
class RunSettings:
    n: int
    seeds_per_context: int = 4
    workers: int = 1
    max_attempts: int = PARSE_ATTEMPTS  # per call, each with a sampling seed of its own
    rpm: float | None = None
    tpm: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dedup: float | None = None  # group checking: cosine at which an instance duplicates a kept one

    def __post_init__(self) -> None:
        if self.n < 1:
            raise RunError(f"-n must be at least 1, got {self.n}")
        if self.seeds_per_context < 1 or self.workers < 1 or self.max_attempts < 1:
            raise RunError("--seeds-per-context, --workers and attempts must be at least 1")
        if (self.rpm is not None and self.rpm <= 0) or (self.tpm is not None and self.tpm <= 0):
            raise RunError("--rpm and --tpm must be positive")
        if self.dedup is not None and not 0 < self.dedup <= 1:
            raise RunError(f"--dedup is a cosine in (0, 1], got {self.dedup}")


class CallEngine:
    """Shared by the workers of one invocation: limits, retries and the meter."""

    def __init__(self, settings: RunSettings):
        self.settings = settings
        self.meter = Meter()
        self.limiter = RateLimiter(settings.rpm, settings.tpm)

    def call(self, fn: Callable[[], T], requests: int) -> T:
        """One unit of model work under the rate limits, with retries on transient errors."""
        estimate = self.meter.mean_tokens_per_call() * requests
        self.limiter.acquire(requests, estimate)
        with self.meter.unit() as usage:
            result = call_with_retries(fn, self.settings.retry, self.meter.count_retry)
        self.limiter.settle(estimate, usage.tokens)
        return result

    def parsed(self, step: str, make: Callable[..., T], sampling_seed: int, requests: int) -> T:
        """`make(sampling_seed=...)` as one unit of `call`, asked again while its answer does not parse
        (or, with `--correction filter`, while the corrector judges the instance otherwise)."""

        def attempt(sampling_seed: int) -> T:
            return self.call(partial(make, sampling_seed=sampling_seed), requests)

        attempts, count = self.settings.max_attempts, self.meter.count_parse_retry
        return until_parsed(step, attempt, sampling_seed, attempts, count)


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


class _Scheduler:
    """The program's `Scheduler` for a run: stage calls on the run's workers, under its limits."""

    def __init__(self, engine: CallEngine, pool: ThreadPoolExecutor):
        self.engine, self.pool = engine, pool

    def map(self, step: str, stage: Callable[[Any, int], T], items: Sequence[Any]) -> Iterator[T]:
        """Every call started now (so that they run in parallel), results in the items' order."""
        futures = [
            _submit(self.pool, self.engine.parsed, step, partial(stage, item), item.sampling_seed, 1)
            for item in items
        ]
        return _in_order(futures)


def _in_order(futures: list[Future[T]]) -> Iterator[T]:
    try:
        for future in futures:
            yield future.result()
    finally:  # an error or a stop: drop the calls that have not started
        for future in futures:
            future.cancel()


def _submit(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> Future[T]:
    """`fn(*args)` on a worker, in a copy of the caller's context so that dspy.context(...) holds there."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


def _make(program: TarGEN, slot: Slot, engine: CallEngine) -> Record | Failure:
    """One slot's record, or a failure after repeated unusable answers, transient errors or a failing
    postprocess hook."""
    try:
        return engine.parsed(
            "instances", partial(program.make, slot), slot.sampling_seed, program.calls_per_slot
        )
    except Unparseable as exc:
        if isinstance(exc.error, AskAgain):
            return Failure(slot.id, exc.error.gave_up())
        return Failure(slot.id, "unparseable model output", exc.error.lm_response or "")
    except HookFailed as exc:
        return Failure(slot.id, str(exc)[:500])
    except Exception as exc:
        if not is_retryable_lm_error(exc):
            raise  # e.g. a bad key: every other slot would fail the same way
        return Failure(slot.id, f"{type(exc).__name__}: {exc}"[:500])


class _Feed:
    """Reads an iterator in a thread of its own: the slots come from the contexts and seeds as they are
    written, and waiting for the next one must not hold up dispatching and writing finished slots."""

    _END = object()

    def __init__(self, items: Iterator[T]):
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.done = False
        context = contextvars.copy_context()  # dspy.context(...) holds in the reader, as in the workers
        threading.Thread(
            target=context.run, args=(self._read, items), name="targen-feed", daemon=True
        ).start()

    def _read(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if self._stop.is_set():
                    break
                self._queue.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._queue.put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a stopped generator cancels the calls it has not started
            self._queue.put(self._END)

    def get(self, block: bool) -> T | None:
        """The next item, or None if none is ready (`block` false) or there are no more."""
        if self.done:
            return None
        try:
            item = self._queue.get(block=block)
        except queue.Empty:
            return None
        if item is self._END:
            self.done = True
            return None
        if isinstance(item, BaseException):
            self.done = True
            raise item
        return item

    def stop(self) -> None:
        self._stop.set()


def _dispatch(
    program: TarGEN, slots: Iterator[Slot], engine: CallEngine, pool: ThreadPoolExecutor
) -> Iterator[Record | Failure]:
    """Rolling dispatch: a new slot starts as soon as any worker is free, so a slow call never idles
    the others; at most 2 × workers slots are in flight, whatever the size of the run. `slots` may
    still be waiting for seeds: it is read by a feed thread and polled between completions. Finished
    slots arrive through a queue (`concurrent.futures.wait` would visit every slot in flight per
    completion). If the feed fails (contexts or seeds that never parse), the slots in flight are
    finished and yielded before its error is raised."""
    workers = engine.settings.workers
    feed = _Feed(slots)
    finished: queue.Queue[Future] = queue.Queue()
    running: set[Future] = set()
    feed_error: Exception | None = None
    try:
        while True:
            while len(running) < 2 * workers:
                try:
                    slot = feed.get(block=not running)
                except Exception as exc:  # noqa: BLE001 - raised below, once the running slots are written
                    feed_error, slot = exc, None
                if slot is None:
                    break
                future = _submit(pool, _make, program, slot, engine)
                running.add(future)
                future.add_done_callback(finished.put)
            if not running:
                if feed_error is not None:
                    raise feed_error
                return
            try:
                future = finished.get(timeout=None if feed.done else FEED_POLL_SECONDS)
            except queue.Empty:
                continue
            running.discard(future)
            yield future.result()
    finally:  # Ctrl-C or an error: drop what has not started, let running calls finish
        feed.stop()
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
    embed: Embed | None = None,
) -> RunStats:
    """Generate `settings.n` instances into `run_dir` (resuming what is there) and return the run's stats.

    With `settings.dedup`, `embed` (texts to an array of vectors) drives group checking: an instance
    whose cosine to a kept one reaches the threshold goes to duplicates.jsonl, not data.jsonl, and is
    not replaced."""
    spec = program.spec
    if settings.dedup is not None and embed is None:
        raise RunError('--dedup needs sentence embeddings: pip install -e ".[embeddings]"')
    manifest = {
        "task": spec.name,
        "spec_hash": spec.hash,
        "program_hash": program_hash(program),
        "models": models,
        "settings": {k: v for k, v in asdict(settings).items() if k != "retry"},
        "options": run_options(program),
    }
    run_dir.claim(manifest, force)
    group = None
    if settings.dedup is not None:  # numpy and the embeddings only for group checking
        from targen_dspy.text.fields import text_fields
        from targen_dspy.text.vectors import NearDuplicateFilter

        group = NearDuplicateFilter(embed, settings.dedup, text_fields(spec))
        group.load(run_dir.iter_records())  # a resumed run's kept instances, embedded again

    engine = CallEngine(settings)
    started = time.monotonic()
    # No per-call history, and no trace (DSPy keeps the last 10,000 predictions, inputs included): both
    # would grow with the run; the meter keeps counts instead. One pool for the whole run: DSPy's disk
    # cache opens a SQLite connection per thread, so every new thread costs memory.
    with (
        dspy.context(disable_history=True, trace=None),
        memoized_dspy_lookups(),
        engine.meter.counting(program),
        ThreadPoolExecutor(settings.workers, thread_name_prefix="targen") as pool,
    ):
        done = {record["id"] for record in run_dir.iter_records()}
        done |= {record["id"] for record in run_dir.iter_jsonl(run_dir.duplicates)}
        done |= {record["id"] for record in run_dir.iter_jsonl(run_dir.rejected)}
        materials = _materials(program, run_dir, _Scheduler(engine, pool), settings, progress)
        todo = (slot for slot in program.plan(settings.n, materials) if slot.id not in done)
        failures = removed = attempted = 0
        stopped: Unparseable | None = None
        bar = tqdm(
            total=settings.n,
            initial=min(len(done), settings.n),
            desc=spec.name,
            unit="inst",
            disable=not progress,
        )
        with (
            run_dir.appender() as data,
            run_dir.appender(run_dir.failed) as failed,
            run_dir.appender(run_dir.rejected) as rejected,
            run_dir.appender(run_dir.duplicates) as duplicates,
        ):
            try:
                for made in _dispatch(program, todo, engine, pool):
                    attempted += 1
                    if isinstance(made, Failure):
                        failures += 1
                        failed.append(made.row())
                        bar.set_postfix(failed=failures)
                        bar.update()
                        continue
                    row = made.row(spec.label_field)
                    if made.rejected:
                        rejected.append(row)
                    elif group is not None and (duplicate := group.check(row)) is not None:
                        removed += 1
                        found = {"duplicate_of": duplicate.of, "cosine": duplicate.cosine}
                        duplicates.append({**row, **found})
                        bar.set_postfix(failed=failures, duplicates=removed)
                    else:
                        data.append(row)
                    bar.update()
            except Unparseable as exc:  # contexts or seeds: no more slots can be planned without them
                stopped = exc
        bar.close()
    elapsed = time.monotonic() - started
    verified = {"verify_code", "corpus"} & run_options(program).keys()
    stats = RunStats(
        data=LabelStats.of(run_dir.iter_records(), spec.label_field),
        failed_slots=failures,
        retries=dict(_earlier_retries(run_dir) + engine.meter.parse_retries),
        duplicates_removed=_count(run_dir.iter_jsonl(run_dir.duplicates)) if group else None,
        rejected_by=_rejected_by(run_dir) if verified else None,
        this_invocation={
            **engine.meter.summary(),
            "slots_made": attempted - failures,
            "seconds": round(elapsed, 3),
            "instances_per_second": round((attempted - failures) / elapsed, 3) if elapsed else None,
        },
    )
    if program.options.correction == "relabel":
        stats.label_imbalance = lopsided(spec, settings.n, dict(stats.data.labels))
    run_dir.write_json(run_dir.stats, stats.to_json())
    if stopped is not None:
        raise RunError(
            f"{stopped.describe(models['generator'])}; {stats.instances} instances are kept: check the "
            "model or its server, or try a stronger --model, then rerun to resume"
        )
    return stats


def _materials(
    program: TarGEN, run_dir: RunDirectory, run: _Scheduler, settings: RunSettings, progress: bool
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
