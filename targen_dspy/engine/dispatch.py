"""Scheduling a program's stages on a run's workers (`engine.workers`: threads or Ray actors):
`StageScheduler` runs a stage's calls for many items at once (results in order), `dispatch` makes slots
as they are planned (results as they finish)."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from targen_dspy.engine.workers import Workers

T = TypeVar("T")
Item = TypeVar("Item")
FEED_POLL_SECONDS = 0.05  # how long new slots may wait while every worker is busy


class StageScheduler:
    """The program's `Scheduler` for a run: stage calls on the run's workers, under its limits."""

    def __init__(self, workers: Workers):
        self.workers = workers

    def map(self, step: str, stage: Callable[[Any, int], T], items: Sequence[Any]) -> Iterator[T]:
        """Every call started now (so that they run in parallel), results in the items' order."""
        return _in_order([self.workers.stage(step, stage, item) for item in items])


def _in_order(futures: list[Future[T]]) -> Iterator[T]:
    try:
        for future in futures:
            yield future.result()
    finally:  # an error or a stop: drop the calls that have not started
        for future in futures:
            future.cancel()


def submit(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> Future[T]:
    """`fn(*args)` on a worker, in a copy of the caller's context so that dspy.context(...) holds there."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


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


def dispatch(start: Callable[[Item], Future[T]], items: Iterator[Item], in_flight: int) -> Iterator[T]:
    """`start(item)` for every item, its result yielded as it finishes. Rolling dispatch: a new item
    starts as soon as another finishes, so a slow call never idles the others; at most `in_flight` items
    (the workers' `in_flight`: twice their number) are started, whatever the size of the run. `items`
    (slots) may still be waiting for seeds: it is read by a feed thread and polled between completions.
    Finished items arrive through a queue (`concurrent.futures.wait` would visit every item in flight
    per completion). If the feed fails
    (contexts or seeds that never parse), the items in flight are finished and yielded before its error
    is raised."""
    feed = _Feed(items)
    finished: queue.Queue[Future] = queue.Queue()
    running: set[Future] = set()
    feed_error: Exception | None = None
    try:
        while True:
            while len(running) < in_flight:
                try:
                    item = feed.get(block=not running)
                except Exception as exc:  # noqa: BLE001 - raised below, once the running slots are written
                    feed_error, item = exc, None
                if item is None:
                    break
                future = start(item)
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
