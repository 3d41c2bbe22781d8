"""DSPy's response cache set up for long runs: one disk store, no in-memory tier, and a way to forget an
answer that did not parse.

DSPy's default keeps every response in an in-memory LRU as well, and its disk tier is a 16-shard
diskcache FanoutCache: every worker thread opens one SQLite connection per shard, each with diskcache's
32 MB page cache and 64 MB memory map. With 64 workers that is 1,024 connections, and peak memory grew
1.4-1.7x with the run's size in `experiments/bench_engine.py`. A single-file store with small
per-connection buffers keeps one connection per thread; a resumed or repeated run still replays every
answered call from disk for free.

DSPy caches an answer before its adapter parses it, so an answer in the wrong format would be replayed
by every rerun of the same call. The run cache remembers, per thread, the key of the last call it
looked up or stored; the engine drops that entry when the answer does not parse.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
import dspy
from dspy.clients.cache import Cache
from dspy.utils.caching import default_cache_dir

SQLITE_CACHE_PAGES = 64  # per connection; a cache lookup reads a handful of pages


class RunCache(Cache):
    """DSPy's Cache over one diskcache store, with no memory tier, that can forget a thread's last answer."""

    def __init__(self, directory: str):
        super().__init__(enable_disk_cache=False, enable_memory_cache=False, disk_cache_dir=directory)
        # DSPy would build its 16-shard store itself: the tier is switched on over a single-file store.
        self.enable_disk_cache = True
        self.disk_cache = diskcache.Cache(
            directory, sqlite_cache_size=SQLITE_CACHE_PAGES, sqlite_mmap_size=0, size_limit=30 * 2**30
        )
        self._last = threading.local()

    def cache_key(self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None) -> str:
        key = super().cache_key(request, ignored_args_for_cache_key)
        self._last.key = key  # get and put both derive the key here: no second hash per call
        return key

    def forget_last(self) -> None:
        """Drop the answer of the last call this thread made (looked up or stored)."""
        key = getattr(self._last, "key", None)
        if key is not None:
            self.disk_cache.delete(key)


@contextlib.contextmanager
def run_cache(directory: str | None = None) -> Iterator[RunCache]:
    """DSPy's cache pointed at the run store (`directory`, default `targen-runs` in DSPy's cache directory)
    while inside, and the caller's cache back afterwards.

    DSPy reads its cache from the module attribute `dspy.cache`, so while this lasts it holds for every
    thread of the process: enter it where a command runs (the CLI, a Ray actor), not in library code.
    Inside a run cache already (nested, or a test's), that store is kept."""
    # Not `dspy.cache`: reading it builds DSPy's default store (16 SQLite shards, a tenth of a second of
    # a run's start-up) only to be replaced; None when nothing has built or configured one yet.
    previous = vars(dspy).get("cache")
    if isinstance(previous, RunCache):
        yield previous
        return
    root = default_cache_dir() if previous is None else previous.disk_cache_dir
    cache = RunCache(directory or str(Path(root) / "targen-runs"))
    with dspy._cache_lock:  # the lock DSPy's lazy build holds
        dspy.cache = cache
    try:
        yield cache
    finally:
        with dspy._cache_lock:
            if previous is None:
                del dspy.cache  # DSPy builds its default again when it is next read
            else:
                dspy.cache = previous
        cache.disk_cache.close()


def forget_last_answer() -> None:
    """Drop the answer this thread's last model call got from the cache, when it is the run cache."""
    if isinstance(dspy.cache, RunCache):
        dspy.cache.forget_last()
