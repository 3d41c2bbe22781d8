"""Run-engine benchmark (issue 3): real TarGEN runs on the RTE spec against an OpenAI-compatible server with
a fixed per-call latency, next to a bare loop of single DSPy calls on the same model and server (the
machine's own ceiling); then peak memory and append cost at two run sizes.

    python experiments/bench_engine.py            # latency 200 ms, workers 1 4 16 64
    python experiments/bench_engine.py --quick    # smoke run, small n

Every measurement runs in a fresh subprocess with a fresh DSPY_CACHEDIR (set before dspy is imported), so
nothing is replayed from cache; the server runs in a process of its own, so its CPU is not the client's.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "bench_engine.md"
MODEL = "openai/bench"
EDGE = 1000  # appends timed at each end of a run
CALLS_PER_INSTANCE = 2  # generation and self-correction
# DSPy's response caches, as configured in a memory run: where the memory of a long run goes.
CACHES = {
    "default": "memory + disk (DSPy's default)",
    "disk": "disk only",
    "run": "one SQLite store, small buffers (`targen generate`)",
    "off": "off",
}

REPORT = """# Run-engine benchmark

`{command}`, {date}: {cores} CPU cores shared with other work (1-minute load average {load} at the
start, between the two parts and at the end), Python {python}, dspy {dspy}. Server:
`targen_dspy.backends.fake_openai` in a process of its own; client: `build_lm({model!r}, api_base=...)`
under `dspy.JSONAdapter()`. Every measurement is a fresh process with a fresh temporary `DSPY_CACHEDIR`,
so nothing is replayed from an earlier run; over all TarGEN runs: {retries} retries, {hits} cache hits
(a slot retried after a transient error replays the call it had answered).

## Throughput: {latency} ms per call

*TarGEN run*: `engine.runner.run` on the RTE spec, contexts and seeds included, default settings (4
seeds per context). *Bare calls*: no engine (no dispatch, retries, meter or writing); the TarGEN program
called directly by as many threads as workers, so the same two `dspy.Predict` calls per instance and the
same prompts as a run, as many calls as the TarGEN run made.
ideal inst/s = workers / (calls per instance × latency); ratio = inst/s ÷ ideal. Client CPU =
`time.process_time()` of the client process ÷ LLM calls. *First instance at*: the contexts and seeds
are done and the first slot is written; *ratio after it*: instances/s from the first to the last
instance ÷ (workers / (2 × latency)).

{throughput}

## Memory and writing: {memory_latency} ms per call, {memory_workers} workers

Peak RSS = `ru_maxrss` of a fresh process per run. DSPy's response cache as DSPy sets it up by default,
then with `dspy.configure_cache(enable_memory_cache=False)` (disk only), then as `targen generate` sets it
(`engine.cache.use_run_cache`: disk only, one SQLite file instead of 16 shards, and per connection a
64-page cache and no memory map), then with both tiers off, which leaves the engine's own memory.
Append µs = median time of `JsonlAppender.append` (write, flush, fsync) over the first and the last
1,000 instances; the data file is opened once in append mode and keeps its
inode to the end (it is never rewritten).

{memory}

## Targets (issue 3)

{targets}
"""

# ---- child processes: one measurement each ----


def _child(job: dict[str, Any]) -> dict[str, Any]:
    cache = tempfile.mkdtemp(prefix="bench-dspy-cache-")
    os.environ["DSPY_CACHEDIR"] = cache  # before dspy is imported: this process starts with an empty cache
    try:
        import dspy

        from targen_dspy.backends import build_lm
        from targen_dspy.engine.cache import use_run_cache

        caches = job.get("caches", "run")  # this script is the entry point: it may configure the cache
        if caches == "run":
            use_run_cache()
        elif caches != "default":
            dspy.configure_cache(enable_memory_cache=False, enable_disk_cache=caches == "disk")
        lm = build_lm(MODEL, api_base=job["api_base"])
        with dspy.context(adapter=dspy.JSONAdapter()):
            measure = _bare_loop if job["kind"] == "bare" else _targen_run
            return measure(lm, job)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _targen_run(lm: Any, job: dict[str, Any]) -> dict[str, Any]:
    import dspy

    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.engine.runner import RunSettings, run
    from targen_dspy.program import TarGEN
    from targen_dspy.signatures import load_task

    program = TarGEN(load_task("rte"))
    rss_before = _peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as out, _timed_appends() as appends:
        settings = RunSettings(n=job["n"], workers=job["workers"])
        started, cpu = time.perf_counter(), time.process_time()
        with dspy.context(lm=lm):
            stats = run(program, RunDirectory(out), settings, {"generator": MODEL}, progress=False)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        inode_unchanged = os.stat(Path(out) / "data.jsonl").st_ino == appends["inode"]
    spent = stats["this_invocation"]
    return {
        "instances": stats["instances"],
        "failed": stats["failed_slots"],
        "calls": spent["calls"],
        "cache_hits": spent["cache_hits"],
        "retries": spent["retries"],
        "seconds": seconds,
        "cpu": cpu,
        "first_instance": appends["first"] - started,
        "last_instance": appends["last_at"] - started,
        "append_us_first": statistics.median(appends["durations"][:EDGE]) * 1e6,
        "append_us_last": statistics.median(appends["last"]) * 1e6,
        "inode_unchanged": inode_unchanged,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


@contextmanager
def _timed_appends() -> Iterator[dict[str, Any]]:
    """Times `JsonlAppender.append`, keeping only the first and last EDGE durations (so the measurement
    itself does not grow with the run), and notes the data file's inode at the first append."""
    from targen_dspy.engine import rundir

    original = rundir.JsonlAppender.append
    seen: dict[str, Any] = {"durations": [], "last": deque(maxlen=EDGE), "first": None, "inode": None}

    def timed(self: rundir.JsonlAppender, record: dict[str, Any]) -> None:
        started = time.perf_counter()
        original(self, record)
        took = time.perf_counter() - started
        if seen["first"] is None:
            seen["first"], seen["inode"] = started, os.fstat(self._file.fileno()).st_ino
        if len(seen["durations"]) < EDGE:
            seen["durations"].append(took)
        seen["last"].append(took)
        seen["last_at"] = started

    rundir.JsonlAppender.append = timed
    try:
        yield seen
    finally:
        rundir.JsonlAppender.append = original


def _bare_loop(lm: Any, job: dict[str, Any]) -> dict[str, Any]:
    """About `job["calls"]` single DSPy calls on `workers` threads with no engine (no dispatch, retries,
    meter or writing): the TarGEN program called directly, so the same two calls and prompts per
    instance as a run, each input distinct; history off and the caller's context copied into each
    thread, as in the engine."""
    import contextvars
    import itertools
    import threading

    import dspy

    from targen_dspy.program import TarGEN
    from targen_dspy.signatures import load_task

    program = TarGEN(load_task("rte"))
    label = program.spec.label_values[0]
    instances = -(-job["calls"] // CALLS_PER_INSTANCE)
    numbers = itertools.count()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            with dspy.context(lm=lm, disable_history=True):
                while (i := next(numbers)) < instances:
                    program(
                        setting="Bare calls",
                        seed=f"Bare call {i} states a fact.",
                        label=label,
                        sampling_seed=i,
                    )
        except BaseException as exc:  # reported by the main thread: a failed loop must not look fast
            errors.append(exc)

    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(loop,)) for _ in range(job["workers"])
    ]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {
        "calls": instances * CALLS_PER_INSTANCE,
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# ---- parent: server, jobs, report ----


@contextmanager
def _server(latency: float) -> Iterator[str]:
    """The fake OpenAI server in its own process; yields its API base."""
    process = subprocess.Popen(
        [sys.executable, "-m", "targen_dspy.backends.fake_openai", "--latency", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()  # the server stops at end of stdin
        process.wait(timeout=30)


def _measure(job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(f"benchmark child failed: {job}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _figures(r: dict[str, Any], instances: int, workers: int, latency: float) -> dict[str, float]:
    calls_per_instance = r["calls"] / instances
    ideal = workers / (calls_per_instance * latency)
    figures = {
        "inst_s": instances / r["seconds"],
        "calls_per_instance": calls_per_instance,
        "calls_s": r["calls"] / r["seconds"],
        "ideal": ideal,
        "ratio": instances / r["seconds"] / ideal,
        "cpu_ms": 1000 * r["cpu"] / r["calls"],
    }
    if "first_instance" in r:  # a TarGEN run: the rate once contexts and seeds are made
        steady = (instances - 1) / (r["last_instance"] - r["first_instance"])
        figures["seconds"], figures["first_instance"] = r["seconds"], r["first_instance"]
        figures["steady_calls_s"] = steady * CALLS_PER_INSTANCE
        figures["steady_ratio"] = steady / (workers / (CALLS_PER_INSTANCE * latency))
        figures["retries"], figures["cache_hits"] = r["retries"], r["cache_hits"]
    return figures


def throughput(api_base: str, latency: float, workers: list[int], n: int) -> tuple[list[str], dict]:
    """TarGEN runs and bare loops, each worker count; a run with w workers makes n × w / max(workers)
    instances (at least 50) so that every run takes about as long."""
    lines = [
        "| workers | program | n | inst/s | LLM calls/inst | LLM calls/s | ideal inst/s | ratio "
        "| client CPU ms/call | first instance at | ratio after it |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    figures = {}
    for w in workers:
        size = max(50, n * w // max(workers))
        targen = _measure({"kind": "targen", "api_base": api_base, "workers": w, "n": size})
        if targen["failed"] or targen["instances"] != size:
            sys.exit(f"run with {w} workers: {targen}")
        bare = _measure({"kind": "bare", "api_base": api_base, "workers": w, "calls": targen["calls"]})
        t, b = (
            _figures(targen, size, w, latency),
            _figures(bare, bare["calls"] // CALLS_PER_INSTANCE, w, latency),
        )
        figures[w] = {"targen": t, "bare": b}
        for name, size_, f, tail in (
            ("TarGEN run", size, t, f"{t['first_instance']:.1f} s | {t['steady_ratio']:.2f}"),
            ("bare calls", "-", b, "- | -"),
        ):
            lines.append(
                f"| {w} | {name} | {size_} | {f['inst_s']:.2f} | {f['calls_per_instance']:.3f} "
                f"| {f['calls_s']:.1f} | {f['ideal']:.1f} | {f['ratio']:.2f} | {f['cpu_ms']:.2f} | {tail} |"
            )
            print(lines[-1], flush=True)
    return lines, figures


def memory(api_base: str, workers: int, sizes: list[int]) -> tuple[list[str], dict]:
    lines = [
        "| DSPy response cache | n | inst/s | LLM calls/inst | RSS before run MB | peak RSS MB "
        "| peak vs smaller n | append µs, first 1,000 | append µs, last 1,000 | data.jsonl same inode |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    figures: dict[str, dict[int, dict]] = {}
    for caches, name in CACHES.items():
        for n in sizes:
            job = {"kind": "targen", "api_base": api_base, "workers": workers, "n": n, "caches": caches}
            r = figures.setdefault(caches, {})[n] = _measure(job)
            growth = r["peak_rss_mb"] / figures[caches][min(sizes)]["peak_rss_mb"]
            lines.append(
                f"| {name} | {n:,} | {r['instances'] / r['seconds']:.1f} | {r['calls'] / r['instances']:.3f} "
                f"| {r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} | {growth:.2f}× "
                f"| {r['append_us_first']:.0f} | {r['append_us_last']:.0f} "
                f"| {'yes' if r['inode_unchanged'] else 'no'} |"
            )
            print(lines[-1], flush=True)
    return lines, figures


def targets(tp: dict, mem: dict) -> list[str]:
    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    worst = max(f["targen"]["calls_per_instance"] for f in tp.values())
    found = [f"- LLM calls per final instance ≤ 2.2: at most {worst:.3f}, {mark(worst <= 2.2)}"]
    if 16 in tp:
        t, b = tp[16]["targen"], tp[16]["bare"]
        found.append(
            f"- ratio ≥ 0.85 at 16 workers: {t['ratio']:.2f}, {mark(t['ratio'] >= 0.85)} (after the first "
            f"instance {t['steady_ratio']:.2f}; the bare calls reach {b['ratio']:.2f} on this machine)"
        )
    if 64 in tp:
        t, b = tp[64]["targen"], tp[64]["bare"]
        share = t["calls_s"] / b["calls_s"]
        found.append(
            f"- at 64 workers within 10% of the bare-call ceiling: LLM calls/s at {share:.0%} of the "
            f"bare loop's, {mark(share >= 0.9)}; contexts and seeds took {t['first_instance']:.1f} s of "
            f"{t['seconds']:.1f} s, after which the run made {t['steady_calls_s']:.0f} LLM calls/s, "
            f"{t['steady_calls_s'] / b['calls_s']:.0%} of the bare loop's"
        )
    small, large = min(mem["default"]), max(mem["default"])
    for caches, name in CACHES.items():
        growth = mem[caches][large]["peak_rss_mb"] / mem[caches][small]["peak_rss_mb"]
        found.append(
            f"- peak memory at n = {large:,} within 1.2× of n = {small:,}, DSPy's response cache {name}: "
            f"{growth:.2f}×, {mark(growth <= 1.2)}"
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per call (default 0.2)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--n", type=int, help="instances at the largest worker count (default 1600)")
    parser.add_argument("--memory-n", type=int, nargs=2, help="the two memory sizes (default 1000 20000)")
    parser.add_argument("--memory-latency", type=float, default=0.01)
    parser.add_argument("--memory-workers", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="small n, results not written: a smoke run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    n = args.n or (200 if args.quick else 1600)
    sizes = args.memory_n or ([200, 2000] if args.quick else [1000, 20000])
    print("every measurement: a fresh process with a fresh temporary DSPY_CACHEDIR (no replay from cache)")

    load = [os.getloadavg()[0]]
    print(f"throughput: latency {args.latency * 1000:.0f} ms, workers {args.workers}", flush=True)
    with _server(args.latency) as api_base:
        tp_lines, tp = throughput(api_base, args.latency, args.workers, n)
    load.append(os.getloadavg()[0])
    print(f"memory: latency {args.memory_latency * 1000:.0f} ms, {args.memory_workers} workers", flush=True)
    with _server(args.memory_latency) as api_base:
        mem_lines, mem = memory(api_base, args.memory_workers, sizes)
    load.append(os.getloadavg()[0])

    runs = [f["targen"] for f in tp.values()] + [r for by_n in mem.values() for r in by_n.values()]
    retries, hits = sum(r["retries"] for r in runs), sum(r["cache_hits"] for r in runs)
    report = REPORT.format(
        command=" ".join(["python experiments/bench_engine.py", *sys.argv[1:]]),
        date=time.strftime("%Y-%m-%d"),
        cores=os.cpu_count(),
        load=", ".join(f"{x:.1f}" for x in load),
        python=platform.python_version(),
        dspy=importlib.metadata.version("dspy"),
        model=MODEL,
        retries=retries,
        hits=hits,
        latency=f"{args.latency * 1000:.0f}",
        throughput="\n".join(tp_lines),
        memory_latency=f"{args.memory_latency * 1000:.0f}",
        memory_workers=args.memory_workers,
        memory="\n".join(mem_lines),
        targets="\n".join(targets(tp, mem)),
    )
    print(f"\n{report}")
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report, encoding="utf-8")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
