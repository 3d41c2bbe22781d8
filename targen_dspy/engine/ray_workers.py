"""Ray actors as a run's workers (`targen generate --ray`): the driver plans the slots and writes the run
directory as in a local run (`runner.run`); only the model calls move to actors.

Each actor builds the program once (`ProgramBuilder`: the spec, the driver's prompts and demos, its
models) and keeps its model clients; it runs `--workers` calls at once (a threaded actor) through a
`CallEngine` of its own. Slots are spread over the actors by their load. The run directory is the truth,
not Ray: tasks are never retried by Ray (`max_task_retries=0`); an actor that dies takes only its
started slots and stage calls with it, and the driver starts them again on a new actor (which has the
dead one's endpoint) before anything of theirs was written.

Ray is imported only here and only for a Ray run: an ordinary run's start-up does not pay for it."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import pickle
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Protocol, TypeVar

import dspy

from targen_dspy.backends.hot_paths import RUN_SETTINGS, memoized_dspy_lookups
from targen_dspy.backends.remote import bundled_price_tables
from targen_dspy.engine.cache import RunCache, run_cache
from targen_dspy.engine.calls import CallEngine, RunSettings
from targen_dspy.engine.runner import StartWorkers, program_hash
from targen_dspy.engine.workers import Workers, make_slot, run_stage
from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from targen_dspy.program.plan import Slot
from targen_dspy.program.records import Failure, Record

logger = logging.getLogger(__name__)
T = TypeVar("T")
Outcome = tuple[Any, Exception | None, dict[str, Any]]  # an actor call's result, error and meter so far
RESTARTS_PER_ACTOR = 3  # actors that may die over a run, per actor asked for, before the run stops
INSTALL = 'pip install -e ".[ray]"'


class ProgramBuilder(Protocol):
    def __call__(self, index: int) -> tuple[TarGEN, dspy.Adapter]:
        """Actor `index`'s program, its models set (e.g. the index-th endpoint), and the adapter its
        model's prompts are formatted with."""
        ...


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None  # None: start a local cluster; "auto": join the running one
    actors: int | None = None  # default: one per CPU of the cluster

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise RunError(f"--actors must be at least 1, got {self.actors}")


def import_ray() -> ModuleType:
    """Ray, or a one-line error saying how to install it. Ray's C++ core logs warnings to stderr (each
    retry to reach a cluster, for instance): errors only, unless the user set RAY_BACKEND_LOG_LEVEL."""
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    try:
        import ray
    except ImportError:
        raise RunError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


class SlotActor:
    """A Ray actor's state: the program built once, its model clients and a call engine of its own, under
    the settings the driver entered for the run (DSPy's disk-only run cache, no history, the adapter)."""

    def __init__(
        self, build: ProgramBuilder, index: int, settings: RunSettings, cache_dir: str | None, expected: str
    ):
        self._stack = ExitStack()
        self._stack.enter_context(bundled_price_tables())
        self._stack.enter_context(run_cache(cache_dir))
        self.program, adapter = build(index)
        if program_hash(self.program) != expected:  # the actor would write other prompts than the driver
            raise RunError("a Ray actor built another program than the driver; use one targen version")
        self.engine = CallEngine(settings)
        self._stack.enter_context(dspy.context(**RUN_SETTINGS, adapter=adapter))
        self._stack.enter_context(memoized_dspy_lookups())
        self._stack.enter_context(self.engine.meter.counting(self.program))
        # Calls run on the actor's threads: each in a copy of this context, where the settings hold.
        self._context = contextvars.copy_context()

    def ready(self) -> bool:
        return True

    def stage(self, step: str, name: str, item: Any) -> Outcome:
        return self._run(run_stage, self.engine, step, getattr(self.program, name), item)

    def make(self, slot: Slot) -> Outcome:
        return self._run(make_slot, self.program, slot, self.engine)

    def _run(self, fn: Callable[..., Any], *args: Any) -> Outcome:
        """`fn(*args)` in the actor's settings: its result or its error, with the actor's meter so far
        (an error is a value, so that the counts of a call that raised reach the driver too)."""
        try:
            return self._context.copy().run(fn, *args), None, self.engine.meter.snapshot()
        except Exception as exc:
            return None, _portable(exc), self.engine.meter.snapshot()


def _portable(error: Exception) -> Exception:
    """`error`, or a RunError saying the same in one line if it would not reach the driver intact."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RunError(_first_line(f"{type(error).__name__}: {error}"))
    return error


class RayWorkers:
    """`Workers` on `count` actors, each making `settings.workers` calls at once.

    Every call returns the actor's meter so far with its result, so the run's counts include those of an
    actor that died later (but not the calls it was making when it died). Finished calls are handled by a
    thread of the driver's (`_settle`), not in Ray's callback, which must not call Ray itself (a dead
    actor's calls are started again)."""

    def __init__(
        self, ray: ModuleType, build: ProgramBuilder, settings: RunSettings, count: int, expected: str
    ):
        self._ray = ray
        self._remote = ray.remote(SlotActor)
        # The driver's run cache, so that a resumed run replays the answered calls (on this machine).
        cache_dir = dspy.cache.disk_cache_dir if isinstance(dspy.cache, RunCache) else None
        self._state = {"build": build, "settings": settings, "cache_dir": cache_dir, "expected": expected}
        cpus = ray.cluster_resources().get("CPU", 1.0)
        self._options = {
            "num_cpus": min(1.0, cpus / count),  # more actors than CPUs share them: they mostly wait
            "max_concurrency": settings.workers,
            "max_restarts": 0,  # a dead actor is replaced by the driver, which knows what it was doing
            "max_task_retries": 0,  # the run directory, not Ray, says what is done
            "scheduling_strategy": "SPREAD",
        }
        self._lock = threading.Lock()
        self._actors = [self._new(i) for i in range(count)]
        self._generation = [0] * count
        self._load = [0] * count
        self._meters: dict[tuple[int, int], dict[str, Any]] = {}
        self._restarts = RESTARTS_PER_ACTOR * count
        self.in_flight = 2 * settings.workers * count
        self.lost = self.redone = 0
        self._finished: queue.Queue = queue.Queue()
        threading.Thread(target=self._settle, name="targen-ray", daemon=True).start()
        self._get(actor.ready.remote() for actor in self._actors)  # a model or spec the actors cannot use

    def _new(self, index: int) -> Any:
        return self._remote.options(**self._options).remote(index=index, **self._state)

    def _get(self, refs: Iterator[Any]) -> None:
        try:
            self._ray.get(list(refs))
        except self._ray.exceptions.RayError as exc:
            raise RunError(f"the Ray actors could not start: {_first_line(exc)}") from None

    def stage(self, step: str, stage: Callable[[Any, int], T], item: Any) -> Future[T]:
        return self._start("stage", (step, stage.__name__, item))

    def make(self, slot: Slot) -> Future[Record | Failure]:
        return self._start("make", (slot,))

    def _start(self, method: str, args: tuple) -> Future:
        result: Future = Future()
        self._submit(result, method, args)
        return result

    def _submit(self, result: Future, method: str, args: tuple) -> None:
        with self._lock:
            index = min(range(len(self._actors)), key=self._load.__getitem__)  # the least busy actor
            self._load[index] += 1
            actor, generation = self._actors[index], self._generation[index]
        ref = getattr(actor, method).remote(*args)
        call = (result, method, args, index, generation)
        ref.future().add_done_callback(lambda done: self._finished.put((*call, done)))

    def _settle(self) -> None:
        while (finished := self._finished.get()) is not None:
            self._settle_one(*finished)

    def _settle_one(
        self, result: Future, method: str, args: tuple, index: int, generation: int, done: Future
    ) -> None:
        exceptions = self._ray.exceptions
        with self._lock:
            if self._generation[index] == generation:
                self._load[index] -= 1
        try:
            value, error, meter = done.result()
        except exceptions.RayActorError as exc:  # the actor died: its call is made again elsewhere
            if not result.cancelled():
                self._replace(index, generation, exc, result, method, args)
            return
        except exceptions.RayError as exc:  # Ray itself failed the call (not the call's own error)
            value, error, meter = None, RunError(f"a Ray actor failed: {_first_line(exc)}"), None
        if meter is not None:
            with self._lock:  # calls of one actor may settle out of order: keep its latest meter
                kept = self._meters.get((index, generation))
                if kept is None or _progress(meter) > _progress(kept):
                    self._meters[index, generation] = meter
        if not result.set_running_or_notify_cancel():
            return
        if error is None:
            result.set_result(value)
        else:
            result.set_exception(error)

    def _replace(
        self, index: int, generation: int, error: Exception, result: Future, method: str, args: tuple
    ) -> None:
        """A new actor in place of the dead one (once, however many of its calls report it), then the
        call again on the least busy actor."""
        with self._lock:
            if self._generation[index] == generation:
                self.lost += 1
                logger.warning("Ray actor %d died (%s); starting another", index, _first_line(error))
                self._ray.kill(self._actors[index], no_restart=True)
                self._actors[index], self._load[index] = self._new(index), 0
                self._generation[index] += 1
            self.redone += 1
            exhausted = self.lost > self._restarts
        if exhausted:
            if result.set_running_or_notify_cancel():
                result.set_exception(
                    RunError(
                        f"{self.lost} Ray actors died in this run (last: {_first_line(error)}); "
                        "check the cluster's memory and logs, then rerun to resume"
                    )
                )
            return
        self._submit(result, method, args)

    def figures(self) -> dict[str, int]:
        return {"ray_actors": len(self._actors), "actors_lost": self.lost, "calls_redone": self.redone}

    def close(self, meter: Any) -> None:
        """Add the actors' counts to the run's meter and stop the actors."""
        self._finished.put(None)
        with self._lock:
            for snapshot in self._meters.values():
                meter.add(snapshot)
            self._meters.clear()
            actors = list(self._actors)
        for actor in actors:
            self._ray.kill(actor, no_restart=True)


def _progress(meter: dict[str, Any]) -> tuple[int, ...]:
    """Orders one actor's meter snapshots in time: taken under the meter's lock, a later one has every
    count at least as high."""
    return meter["calls"], meter["billed_calls"], meter["retries"], sum(meter["parse_retries"].values())


def _first_line(error: BaseException | str) -> str:
    """The last non-empty line of an error's text (Ray's end with the cause), cut at 300 characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]


def _check_reachable(address: str | None, timeout: float = 3.0) -> None:
    """A one-line error at once for a HOST:PORT nothing listens on (Ray would retry it for minutes)."""
    if address in (None, "auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RunError(f"--ray {address!r} is not a cluster address; use HOST:PORT, auto, or nothing")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RunError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); "
            "is it running (`ray start --head`)?"
        ) from None


def ray_workers(settings: RaySettings, build: ProgramBuilder) -> StartWorkers:
    """The run's workers on Ray (`runner.run`'s `workers`): joins the cluster at `settings.address` (or
    starts a local one, stopped after the run; a process already connected keeps its cluster).

    The rate limits are split evenly over the actors: each enforces its share locally, with no round trip
    to a shared limiter per call; the cost is a share left unused by an actor with less work.

    Ray missing or a cluster address nothing listens on are one-line errors now, before the run starts."""
    ray = import_ray()
    _check_reachable(settings.address)

    @contextlib.contextmanager
    def start(program: TarGEN, engine: CallEngine) -> Iterator[Workers]:
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(
                    address=settings.address, include_dashboard=False, log_to_driver=False,
                    logging_level=logging.ERROR,
                )  # fmt: skip
            except ConnectionError as exc:
                raise RunError(
                    f"cannot join the Ray cluster ({_first_line(exc)}); is it running (`ray start --head`)? "
                    "A cluster with token authentication needs RAY_AUTH_MODE=token here too"
                ) from None
        try:
            count = settings.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
            limits = engine.settings
            share = replace(
                limits,
                rpm=limits.rpm / count if limits.rpm else None,
                tpm=limits.tpm / count if limits.tpm else None,
            )
            workers = RayWorkers(ray, build, share, count, program_hash(program))
            try:
                yield workers
            finally:
                workers.close(engine.meter)
        finally:
            if started:
                ray.shutdown()

    return start
