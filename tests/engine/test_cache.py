"""The run cache holds for a run only: the CLI's run points DSPy's cache at it and gives the caller's back."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dspy

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.cli import main
from targen_dspy.engine.cache import RunCache, run_cache


def test_run_cache_is_scoped_and_a_nested_run_keeps_its_store():
    before = dspy.cache
    assert not isinstance(before, RunCache)
    with run_cache() as cache:
        assert dspy.cache is cache and isinstance(cache, RunCache)
        with run_cache() as inner:
            assert inner is cache
        assert dspy.cache is cache
    assert dspy.cache is before


def test_run_cache_does_not_build_dspys_default_store_it_replaces(tmp_path):
    """In a fresh process (this one has built DSPy's cache already): only the run store is made on disk,
    and DSPy's own cache is built as usual once the run is over."""
    script = """
import json, os, sys
import dspy
from targen_dspy.engine.cache import RunCache, run_cache
with run_cache() as cache:
    inside = sorted(os.listdir(sys.argv[1]))
    same = dspy.cache is cache
after = dspy.cache
print(json.dumps({"inside": inside, "same": same, "after": type(after).__name__}))
"""
    env = {**os.environ, "DSPY_CACHEDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"inside": ["targen-runs"], "same": True, "after": "Cache"}


def stored_answers(cache) -> int:
    store = RunCache(str(Path(cache.disk_cache_dir) / "targen-runs"))
    try:
        return len(store.disk_cache)
    finally:
        store.disk_cache.close()


def test_generate_gives_the_callers_cache_back(tmp_path):
    before = dspy.cache
    stored = stored_answers(before)
    with FakeOpenAI() as server:
        args = [
            "-n",
            "2",
            "-o",
            str(tmp_path),
            "-q",
            "--model",
            "openai/cache-scope",
            "--api-base",
            server.api_base,
        ]
        assert main(["generate", "rte", *args]) == 0
    assert dspy.cache is before and not isinstance(before, RunCache)
    assert stored_answers(before) > stored  # the run's answers went to the run store, on disk
