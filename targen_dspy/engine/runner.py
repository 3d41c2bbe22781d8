"""Running a TarGEN program into a run directory: contexts and seeds once, then one slot per instance,
dispatched to a pool of workers and written as each completes. Re-running the same command resumes."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import math
import queue
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
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
from targen_dspy.engine.plan import Slot, label_counts, lopsided, plan_slots, seeds_needed
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from targen_dspy.program.correction import JudgedOtherwise
from targen_dspy.program.distinct import normalise
from targen_dspy.program.options import GenerationOptions
from targen_dspy.signatures.spec import HookFailed

if TYPE_CHECKING:
    from targen_dspy.text.vectors import Embed

logger = logging.getLogger(__name__)
T = TypeVar("T")
CALLS_PER_SLOT = 2  # label-constrained generation + self-correction
CONTEXTS_PER_CALL = 8
FEED_POLL_SECONDS = 0.05  # how long new slots may wait while every worker is busy
# Record keys of the versions before an optional rewrite, and the stats key that counts them.
REWRITES = {"before_harder": "made_harder", "before_reflection": "rewritten_by_reflection"}


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
        return until_parsed(step, attempt, sampling_seed, attempts, count, redo=(JudgedOtherwise,))


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


def _materials(
    program: TarGEN, run_dir: RunDirectory, engine: CallEngine, pool: ThreadPoolExecutor, progress: bool
) -> Iterator[tuple[str, list[str]]]:
    """Contexts and their seeds, generated once per run and kept in materials.json (grown if short),
    yielded one context at a time as its seeds come in, so that instances start before the last seeds.

    New contexts are asked for until there are enough seeds; a seed already used under another
    context is dropped. Gives up after three rounds that added nothing. The file is written once per
    round: a run killed mid-round replays that round's calls from DSPy's cache when it resumes."""
    settings = engine.settings
    needed = seeds_needed(label_counts(program.spec, settings.n))
    materials: list[list[Any]] = run_dir.read_json(run_dir.materials) or []
    seen = {normalise(seed) for _, seeds in materials for seed in seeds}
    for context, seeds in materials:
        yield context, seeds
    bar = tqdm(total=needed, initial=min(len(seen), needed), desc="seeds", unit="seed", disable=not progress)
    round_, idle = 0, 0
    while len(seen) < needed and idle < 3:
        round_, added = round_ + 1, 0
        known = [context for context, _ in materials]
        contexts = _propose_contexts(program, engine, pool, round_, known, needed - len(seen))
        # The round's seed calls run on the workers, not one after another; results are taken in
        # context order, so the materials are the same as with one worker.
        futures = [
            _submit(
                pool,
                engine.parsed,
                "seeds",
                partial(program.seeds, setting=context, count=settings.seeds_per_context),
                0,
                1,
            )
            for context in contexts
        ]
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
                    yield context, seeds
        finally:  # an error or Ctrl-C: drop the seed calls that have not started, keep what came in
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


def _propose_contexts(
    program: TarGEN, engine: CallEngine, pool: ThreadPoolExecutor, round_: int, known: list[str], seeds: int
) -> list[str]:
    """New contexts for `seeds` more seeds: CONTEXTS_PER_CALL per call, the calls in parallel (one call
    for a few hundred would be as slow as a few hundred seed calls in a row), duplicates dropped."""
    count = math.ceil(seeds / engine.settings.seeds_per_context)
    sizes = [min(CONTEXTS_PER_CALL, count - start) for start in range(0, count, CONTEXTS_PER_CALL)]
    futures = [
        _submit(
            pool,
            engine.parsed,
            "contexts",
            partial(program.contexts, count=size, known=known),
            zlib.crc32(f"{round_}-{i}".encode()),
            1,
        )
        for i, size in enumerate(sizes)
    ]
    seen, contexts = {normalise(context) for context in known}, []
    try:
        for future in futures:
            for context in future.result().contexts:
                if normalise(context) not in seen:
                    seen.add(normalise(context))
                    contexts.append(context)
    finally:  # an error or Ctrl-C: drop the calls that have not started
        for future in futures:
            future.cancel()
    return contexts


def _submit(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> Future[T]:
    """`fn(*args)` on a worker, in a copy of the caller's context so that dspy.context(...) holds there."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


def _make(program: TarGEN, slot: Slot, engine: CallEngine) -> dict[str, Any]:
    """One slot's record, or a failure record after repeated unparseable answers, transient errors or a
    failing postprocess hook."""
    spec = program.spec
    make = partial(
        program,
        setting=slot.context,
        seed=slot.seed,
        label=slot.label,
        **({"attributes": slot.attribute_values} if slot.attributes else {}),
    )
    try:
        pred = engine.parsed(
            "instances", make, slot.sampling_seed, getattr(program, "calls_per_slot", CALLS_PER_SLOT)
        )
    except Unparseable as exc:
        if isinstance(exc.error, JudgedOtherwise):
            error = f"self-correction judged every attempt otherwise (last: {exc.error.judged!r})"
            return {"id": slot.id, "failed": True, "error": error}
        return {
            "id": slot.id,
            "failed": True,
            "error": "unparseable model output",
            "raw": exc.error.lm_response,
        }
    except HookFailed as exc:
        return {"id": slot.id, "failed": True, "error": str(exc)[:500]}
    except Exception as exc:
        if not is_retryable_lm_error(exc):
            raise  # e.g. a bad key: every other slot would fail the same way
        return {"id": slot.id, "failed": True, "error": f"{type(exc).__name__}: {exc}"[:500]}
    record = {
        "id": slot.id,
        **{name: pred[name] for name in spec.fields},
        spec.label_field: pred.label,
        "constrained_label": pred.constrained_label,  # an open label's: the one the model wrote
        "relabeled": pred.relabeled,
        "context": slot.context,
        "seed": slot.seed,
        "reasoning": pred.reasoning,
        **(pred.get("extra") or {}),  # attributes, versions before optional rewrites, verification
    }
    # Dropped by a verification step (code that fails, facts the corpus contradicts): not retried.
    return {"id": slot.id, "rejected": pred.rejected, **record} if pred.get("rejected") else record


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
) -> Iterator[dict[str, Any]]:
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
) -> dict[str, Any]:
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
        slots = plan_slots(spec, settings.n, _materials(program, run_dir, engine, pool, progress))
        todo = (slot for slot in slots if slot.id not in done)
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
                for record in _dispatch(program, todo, engine, pool):
                    attempted += 1
                    if record.get("failed"):
                        failures += 1
                        failed.append(record)
                        bar.set_postfix(failed=failures)
                    elif record.get("rejected"):
                        rejected.append(record)
                    elif group is not None and (duplicate := group.check(record)) is not None:
                        removed += 1
                        found = {"duplicate_of": duplicate.of, "cosine": duplicate.cosine}
                        duplicates.append({**record, **found})
                        bar.set_postfix(failed=failures, duplicates=removed)
                    else:
                        data.append(record)
                    bar.update()
            except Unparseable as exc:  # contexts or seeds: no more slots can be planned without them
                stopped = exc
        bar.close()
    elapsed = time.monotonic() - started
    stats = {
        **run_stats(spec.label_field, run_dir.iter_records()),
        "failed_slots": failures,
        "retries": dict(_earlier_retries(run_dir) + engine.meter.parse_retries),
        **({"duplicates_removed": _count(run_dir.iter_jsonl(run_dir.duplicates))} if group else {}),
        **(_rejected(run_dir) if {"verify_code", "corpus"} & run_options(program).keys() else {}),
        "this_invocation": {
            **engine.meter.summary(),
            "slots_made": attempted - failures,
            "seconds": round(elapsed, 3),
            "instances_per_second": round((attempted - failures) / elapsed, 3) if elapsed else None,
        },
    }
    if program.options.correction == "relabel":
        warning = lopsided(spec, settings.n, stats["labels"])
        stats.update({"label_imbalance": warning} if warning else {})
    run_dir.write_json(run_dir.stats, stats)
    if stopped is not None:
        raise RunError(
            f"{stopped.describe(models['generator'])}; {stats['instances']} instances are kept: check the "
            "model or its server, or try a stronger --model, then rerun to resume"
        )
    return stats


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


def _rejected(run_dir: RunDirectory) -> dict[str, Any]:
    """Instances dropped by verification, by the step that dropped them (`code`, `corpus`)."""
    by = Counter(record["rejected"]["by"] for record in run_dir.iter_jsonl(run_dir.rejected))
    return {"rejected": sum(by.values()), "rejected_by": dict(by)}


def run_stats(label_field: str, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts and the self-correction confusion matrix (constrained label → final label), in one pass
    so that `records` can be streamed from disk."""
    confusion: dict[str, Counter] = {}
    labels: Counter = Counter()
    rewritten: Counter = Counter()  # by the optional steps that keep the version before
    checks: Counter = Counter()  # verification: answers computed by code, facts judged against a corpus
    grounding: Counter = Counter()
    instances = relabeled = 0
    for record in records:
        final = json.dumps(record[label_field])
        confusion.setdefault(json.dumps(record["constrained_label"]), Counter())[final] += 1
        labels[final] += 1
        instances += 1
        relabeled += record["relabeled"]
        rewritten.update(key for key in REWRITES if key in record)
        if "verified_answer" in record:
            checks.update(verified_by_code=1, relabeled_by_code=int(record["relabeled_by_code"]))
        if "grounding" in record:
            grounding[record["grounding"]["verdict"]] += 1
    return {
        "instances": instances,
        "relabeled": relabeled,
        **{REWRITES[key]: count for key, count in rewritten.items()},
        **checks,
        **({"grounding": dict(grounding)} if grounding else {}),
        "labels": dict(labels),
        "confusion": {row: dict(cols) for row, cols in confusion.items()},
    }
