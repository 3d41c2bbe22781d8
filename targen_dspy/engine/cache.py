"""DSPy's response cache set up for long runs: one disk store, no in-memory tier.

DSPy's default keeps every response in an in-memory LRU as well, and its disk tier is a 16-shard
diskcache FanoutCache: every worker thread opens one SQLite connection per shard, each with diskcache's
32 MB page cache and 64 MB memory map. With 64 workers that is 1,024 connections, and peak memory grew
1.4-1.7x with the run's size in `experiments/bench_engine.py`. A single-file store with small
per-connection buffers keeps one connection per thread; a resumed or repeated run still replays every
answered call from disk for free.
"""

from __future__ import annotations

from pathlib import Path

import diskcache
import dspy

SQLITE_CACHE_PAGES = 64  # per connection; a cache lookup reads a handful of pages


def use_run_cache() -> None:
    """Point DSPy's cache at the run store (process-wide: call from entry points such as the CLI)."""
    directory = str(Path(dspy.cache.disk_cache_dir) / "targen-runs")
    # DSPy builds its 16-shard store itself; the tiers are switched off, then the disk tier put back.
    dspy.configure_cache(enable_memory_cache=False, enable_disk_cache=False)
    cache = dspy.cache
    cache.enable_disk_cache, cache.disk_cache_dir = True, directory
    cache.disk_cache = diskcache.Cache(
        directory, sqlite_cache_size=SQLITE_CACHE_PAGES, sqlite_mmap_size=0, size_limit=30 * 2**30
    )
