"""Ray benchmark (issue 20): `targen generate` with its calls on threads of its own process against the
same run on a local Ray cluster with 1 and 2 actors, on one machine, against the fake OpenAI server.

    python experiments/bench_ray.py               # n 200, 16 calls at once, 200 ms per call
    python experiments/bench_ray.py --n 1000 --workers 32

Every run is `targen generate rte` as a user runs it (a process, start-up included) against a fresh mock
server process (bench_engine's `measure`), with the same number of calls at once: W threads, or W per
actor for one actor, W/2 per actor for two. The Ray cluster (2 CPUs, no dashboard) is started once, in
a process of its own, and joined by each Ray run with `--ray ADDRESS`; its actors are started by each
run (their start-up is part of what is measured). Client CPU is the driver's (`os.wait4`) plus the
cluster's processes over the run (raylet, GCS, agents, workers and the actors: /proc sampled every
0.1 s, so an actor's last 0.1 s before the run kills it may be missed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import TICKS, machine_busy, measure, targen_command  # noqa: E402

HEADER = (
    "| client | actors × workers | wall s | calls | instances/s | driver CPU before 1st call s "
    "| client CPU ms/call (driver + cluster) | overhead per slot vs threads: wall ms, CPU ms |\n"
    "|---|---|---|---|---|---|---|---|"
)
SAMPLE = 0.1  # seconds between samples of the cluster's CPU
CLUSTER = (
    "import logging, os, sys, ray\n"
    "ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)\n"
    "print(ray.get_runtime_context().gcs_address, os.environ.get('RAY_AUTH_MODE', ''), flush=True)\n"
    "sys.stdin.read()  # until the benchmark closes it\n"
    "ray.shutdown()\n"
)


@contextmanager
def ray_cluster() -> Iterator[tuple[str, int]]:
    """A local Ray cluster in a process of its own: yields its address and that process's id. Ray starts a
    local cluster with token authentication: a client joins it with its RAY_AUTH_MODE (the token itself is
    in Ray's own file, ~/.ray/auth_token)."""
    process = subprocess.Popen(
        [sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    address, _, mode = process.stdout.readline().strip().partition(" ")
    if mode:
        os.environ["RAY_AUTH_MODE"] = mode  # inherited by the clients
    try:
        yield address, process.pid
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of `root` and each of its descendants now, from /proc."""
    parents, spent = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # a process that just ended
            continue
        parents[int(entry.name)] = int(fields[1])
        spent[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS

    def below(pid: int) -> bool:
        while pid > 1 and pid != root:
            pid = parents.get(pid, 1)
        return pid == root

    return {pid: cpu for pid, cpu in spent.items() if below(pid)}


@contextmanager
def cluster_cpu(root: int) -> Iterator[list[float]]:
    """The CPU the cluster's processes spend while inside (filled in at exit): sampled every SAMPLE
    seconds, as an actor's CPU goes with it when the run kills it (Ray's raylet does not add its
    workers' CPU to its own)."""
    before, last, spent = tree_cpu(root), {}, []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE):
            last.update(tree_cpu(root))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield spent
    finally:
        stop.set()
        sampler.join()
        last.update(tree_cpu(root))
        spent.append(sum(cpu - before.get(pid, 0.0) for pid, cpu in last.items()))


def ray_command(address: str, actors: int) -> Callable[..., list[str]]:
    def command(api_base: str, n: int, workers: int, workdir: Path) -> list[str]:
        per_actor = max(1, workers // actors)
        plain = targen_command(api_base, n, per_actor, workdir)
        return [*plain, "--ray", address, "--actors", str(actors)]

    return command


def measured(command: Callable[..., list[str]], cluster: int | None, args: argparse.Namespace) -> dict:
    if cluster is None:
        run = measure(command, args.latency, args.n, args.workers) | {"cluster_cpu": 0.0}
    else:
        with cluster_cpu(cluster) as spent:
            run = measure(command, args.latency, args.n, args.workers)
        run["cluster_cpu"] = spent[0]
    usage = run["usage"]
    run["cpu"] = usage.ru_utime + usage.ru_stime + run["cluster_cpu"]
    return run


def row(name: str, layout: str, run: dict[str, Any], threads: dict[str, Any] | None, n: int) -> str:
    if run["error"]:
        return f"| {name} | {layout} | failed: {run['error']} |" + " |" * 5
    calls = run["traffic"]["requests"]
    over = (
        f"{1000 * (run['wall'] - threads['wall']) / n:.1f}, {1000 * (run['cpu'] - threads['cpu']) / n:.1f}"
        if threads
        else "-"
    )
    cluster = run["cluster_cpu"]
    per_call = [1000 * cpu / calls for cpu in (run["cpu"], run["cpu"] - cluster, cluster)]
    return (
        f"| {name} | {layout} | {run['wall']:.1f} | {calls:,} | {n / run['wall']:.1f} "
        f"| {run['cpu_before']:.2f} | {per_call[0]:.2f} ({per_call[1]:.2f} + {per_call[2]:.2f}) | {over} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="instances per run (default 200)")
    parser.add_argument("--workers", type=int, default=16, help="calls at once in every run (default 16)")
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per call (default 0.2)")
    args = parser.parse_args(argv)
    print(f"machine before: {machine_busy()}", flush=True)
    print(HEADER, flush=True)
    threads = measured(targen_command, None, args)
    print(row("threads", f"1 process × {args.workers}", threads, None, args.n), flush=True)
    with ray_cluster() as (address, cluster):
        time.sleep(2)  # the cluster's own start-up is not any run's
        for actors in (1, 2):
            run = measured(ray_command(address, actors), cluster, args)
            layout = f"{actors} × {max(1, args.workers // actors)}"
            print(row("Ray", layout, run, None if threads["error"] else threads, args.n), flush=True)
    print(f"machine after: {machine_busy()}; {os.cpu_count()} cores", flush=True)


if __name__ == "__main__":
    main()
