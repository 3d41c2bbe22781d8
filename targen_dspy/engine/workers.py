"""Where a run's model calls are made: `Workers` starts a stage call (contexts, seeds) or a slot and hands
back a future. `ThreadWorkers` runs them on this process's threads; `engine.ray_workers` on Ray actors.
The run itself (planning, writing, resuming, stats) is the same whichever makes the calls."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol, TypeVar

from dspy.utils.exceptions import is_retryable_lm_error

from targen_dspy.engine.calls import CallEngine
from targen_dspy.engine.dispatch import submit
from targen_dspy.engine.limits import Unparseable
from targen_dspy.errors import AskAgain
from targen_dspy.program import TarGEN
from targen_dspy.program.plan import Slot
from targen_dspy.program.records import Failure, Record
from targen_dspy.signatures.spec import HookFailed

T = TypeVar("T")


class Workers(Protocol):
    """Starts a run's calls somewhere and hands back their futures."""

    in_flight: int  # slots kept started at once: enough to keep every worker busy, not the whole run

    def stage(self, step: str, stage: Callable[[Any, int], T], item: Any) -> Future[T]:
        """`stage(item, sampling_seed)` under the run's limits, asked again while it does not parse."""
        ...

    def make(self, slot: Slot) -> Future[Record | Failure]: ...

    def figures(self) -> dict[str, int]:
        """Counts of their own for stats.json's `this_invocation` (none for threads)."""
        ...


def make_slot(program: TarGEN, slot: Slot, engine: CallEngine) -> Record | Failure:
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


def run_stage(engine: CallEngine, step: str, stage: Callable[[Any, int], T], item: Any) -> T:
    """One call of a materials stage (an item with its own `sampling_seed`), asked again until it parses."""
    return engine.parsed(step, partial(stage, item), item.sampling_seed, 1)


class ThreadWorkers:
    """The run's calls on a pool of `settings.workers` threads of this process."""

    def __init__(self, program: TarGEN, engine: CallEngine, pool: ThreadPoolExecutor):
        self.program, self.engine, self.pool = program, engine, pool
        self.in_flight = 2 * engine.settings.workers

    def stage(self, step: str, stage: Callable[[Any, int], T], item: Any) -> Future[T]:
        return submit(self.pool, run_stage, self.engine, step, stage, item)

    def make(self, slot: Slot) -> Future[Record | Failure]:
        return submit(self.pool, make_slot, self.program, slot, self.engine)

    def figures(self) -> dict[str, int]:
        return {}


@contextlib.contextmanager
def thread_workers(program: TarGEN, engine: CallEngine) -> Iterator[Workers]:
    """One pool for the whole run: DSPy's disk cache opens a SQLite connection per thread, so every new
    thread costs memory."""
    with ThreadPoolExecutor(engine.settings.workers, thread_name_prefix="targen") as pool:
        yield ThreadWorkers(program, engine, pool)
