"""Running a TarGEN program into a run directory: contexts and seeds once, then one slot per instance,
dispatched to a pool of workers and written as each completes. Re-running the same command resumes."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, TypeVar

import dspy
from dspy.utils.exceptions import AdapterParseError, is_retryable_lm_error
from tqdm import tqdm

from targen_dspy.engine.limits import RateLimiter, RetryPolicy, call_with_retries
from targen_dspy.engine.meter import Meter
from targen_dspy.engine.plan import Slot, label_counts, plan_slots, seeds_needed
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from targen_dspy.program.distinct import normalise

logger = logging.getLogger(__name__)
T = TypeVar("T")
CALLS_PER_SLOT = 2  # label-constrained generation + self-correction


@dataclass(frozen=True)
class RunSettings:
    n: int
    seeds_per_context: int = 4
    workers: int = 1
    max_attempts: int = 3  # per slot, each with a fresh sampling seed, for output that does not parse
    rpm: float | None = None
    tpm: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise RunError(f"-n must be at least 1, got {self.n}")
        if self.seeds_per_context < 1 or self.workers < 1 or self.max_attempts < 1:
            raise RunError("--seeds-per-context, --workers and attempts must be at least 1")
        if (self.rpm is not None and self.rpm <= 0) or (self.tpm is not None and self.tpm <= 0):
            raise RunError("--rpm and --tpm must be positive")


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


def program_hash(program: dspy.Module) -> str:
    """Hash of everything that shapes the prompts: instructions, fields and demos of every predictor
    (not which model answers them: that is recorded in the manifest separately)."""
    state = {
        name: {key: value for key, value in predictor.dump_state().items() if key != "lm"}
        for name, predictor in program.named_predictors()
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _materials(
    program: TarGEN, run_dir: RunDirectory, engine: CallEngine, pool: ThreadPoolExecutor, progress: bool
):
    """Contexts and their seeds, generated once per run and kept in materials.json (grown if short).

    New contexts are asked for until there are enough seeds; a seed already used under another
    context is dropped. Gives up after three rounds that added nothing."""
    settings = engine.settings
    needed = seeds_needed(label_counts(program.spec, settings.n))
    materials: list[list[Any]] = run_dir.read_json(run_dir.materials) or []
    seen = {normalise(seed) for _, seeds in materials for seed in seeds}
    bar = tqdm(total=needed, initial=min(len(seen), needed), desc="seeds", unit="seed", disable=not progress)
    round_, idle = 0, 0
    while len(seen) < needed and idle < 3:
        round_, added = round_ + 1, 0
        known = [context for context, _ in materials]
        count = math.ceil((needed - len(seen)) / settings.seeds_per_context)
        propose = partial(program.contexts, count=count, known=known, sampling_seed=100 * round_)
        contexts = engine.call(propose, 1).contexts
        # The round's seed calls run on the workers, not one after another; results are taken in
        # context order, so the materials are the same as with one worker.
        write = partial(program.seeds, count=settings.seeds_per_context)
        futures = [_submit(pool, engine.call, partial(write, setting=context), 1) for context in contexts]
        try:
            for context, future in zip(contexts, futures, strict=True):
                seeds = []
                for seed in future.result().seeds:
                    if normalise(seed) not in seen:
                        seen.add(normalise(seed))
                        seeds.append(seed)
                if seeds:
                    materials.append([context, seeds])
                    added += len(seeds)
                    bar.update(min(len(seeds), needed - bar.n))
        finally:  # an error or Ctrl-C: drop the seed calls that have not started
            for future in futures:
                future.cancel()
        if added:  # once per round: rewriting the growing file per context costs O(n²)
            run_dir.write_json(run_dir.materials, materials)
        idle = 0 if added else idle + 1
    bar.close()
    if len(seen) < needed:
        raise RunError(
            f"the model wrote only {len(seen)} distinct seeds of the {needed} this run needs; "
            "use a smaller -n, more --seeds-per-context or a stronger --model"
        )
    return [(context, seeds) for context, seeds in materials]


def _submit(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> Future[T]:
    """`fn(*args)` on a worker, in a copy of the caller's context so that dspy.context(...) holds there."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


def _make(program: TarGEN, slot: Slot, engine: CallEngine) -> dict[str, Any]:
    """One slot's record, or a failure record after repeated unparseable answers or transient errors.

    A retry of the slot replays its already-answered call from DSPy's cache."""
    spec = program.spec
    error: Exception | None = None
    for attempt in range(engine.settings.max_attempts):
        try:
            make = partial(
                program,
                setting=slot.context,
                seed=slot.seed,
                label=slot.label,
                sampling_seed=slot.sampling_seed + attempt,
            )
            pred = engine.call(make, CALLS_PER_SLOT)
        except AdapterParseError as exc:
            error = exc
            continue
        except Exception as exc:
            if not is_retryable_lm_error(exc):
                raise  # e.g. a bad key: every other slot would fail the same way
            return {"id": slot.id, "failed": True, "error": f"{type(exc).__name__}: {exc}"[:500]}
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
    return {"id": slot.id, "failed": True, "error": "unparseable model output", "raw": error.lm_response}


def _dispatch(
    program: TarGEN, slots: list[Slot], engine: CallEngine, pool: ThreadPoolExecutor
) -> Iterator[dict[str, Any]]:
    """Rolling dispatch: a new slot starts as soon as any worker is free, so a slow call never idles
    the others; at most 2 × workers slots are in flight, whatever the size of the run."""
    workers = engine.settings.workers
    pending = iter(slots)
    running: set[Future] = set()
    try:
        while True:
            while len(running) < 2 * workers and (slot := next(pending, None)) is not None:
                running.add(_submit(pool, _make, program, slot, engine))
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:  # Ctrl-C or an error: drop what has not started, let running calls finish
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
        "settings": {k: v for k, v in asdict(settings).items() if k != "retry"},
    }
    run_dir.claim(manifest, force)

    engine = CallEngine(settings)
    started = time.monotonic()
    # No per-call history, and no trace (DSPy keeps the last 10,000 predictions, inputs included): both
    # would grow with the run; the meter keeps counts instead. One pool for the whole run: DSPy's disk
    # cache opens a SQLite connection per thread and shard, so every new thread costs memory.
    with (
        dspy.context(disable_history=True, trace=None, callbacks=[*dspy.settings.callbacks, engine.meter]),
        ThreadPoolExecutor(settings.workers, thread_name_prefix="targen") as pool,
    ):
        slots = plan_slots(spec, settings.n, _materials(program, run_dir, engine, pool, progress))
        done = {record["id"] for record in run_dir.iter_records()}
        todo = [slot for slot in slots if slot.id not in done]
        failures = 0
        bar = tqdm(
            total=len(slots),
            initial=len(slots) - len(todo),
            desc=spec.name,
            unit="inst",
            disable=not progress,
        )
        with run_dir.appender() as data, run_dir.appender(failed=True) as failed:
            for record in _dispatch(program, todo, engine, pool):
                if record.get("failed"):
                    failures += 1
                    failed.append(record)
                    bar.set_postfix(failed=failures)
                else:
                    data.append(record)
                bar.update()
        bar.close()
    elapsed = time.monotonic() - started
    stats = {
        **run_stats(spec.label_field, run_dir.iter_records()),
        "failed_slots": failures,
        "this_invocation": {
            **engine.meter.summary(),
            "slots_made": len(todo) - failures,
            "seconds": round(elapsed, 3),
            "instances_per_second": round((len(todo) - failures) / elapsed, 3) if elapsed else None,
        },
    }
    run_dir.write_json(run_dir.stats, stats)
    return stats


def run_stats(label_field: str, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts and the self-correction confusion matrix (constrained label → final label), in one pass
    so that `records` can be streamed from disk."""
    confusion: dict[str, Counter] = {}
    labels: Counter = Counter()
    instances = relabeled = 0
    for record in records:
        final = json.dumps(record[label_field])
        confusion.setdefault(json.dumps(record["constrained_label"]), Counter())[final] += 1
        labels[final] += 1
        instances += 1
        relabeled += record["relabeled"]
    return {
        "instances": instances,
        "relabeled": relabeled,
        "labels": dict(labels),
        "confusion": {row: dict(cols) for row, cols in confusion.items()},
    }
