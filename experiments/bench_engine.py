"""Engine benchmark (issue 16): TarGEN side by side with a bare DSPy loop and a peer, bespokelabs-curator,
each making two LLM calls per slot (write, then judge) against the same mock OpenAI-compatible server.

    python experiments/bench_engine.py               # n 400 4000, workers 16 64, 200 ms per call
    python experiments/bench_engine.py --quick       # smoke run (n 40, 8 workers): writes nothing
    python experiments/bench_engine.py --no-curator  # without the peer (no virtual environment)
    python experiments/bench_engine.py --n 4000 --workers 16 --targen-also "--seeds-per-context 8" --out F
                                                     # one setting, and targen with other options too

Clients, each a process of its own started as a user starts it, start-up included:
  bare DSPy loop   experiments/bench_clients/bare_dspy.py: threads, two dspy.Predict calls per slot
  bare loop, tuned the same with the DSPy settings a TarGEN run uses (`--tuned`): what is left between it
                   and targen is TarGEN's own work and its larger prompts
  targen generate  `targen generate rte -n N --workers W --model openai/bench --api-base URL -q -o DIR`
  curator          experiments/bench_clients/curator_steps.py in curator's virtual environment (made
                   by this script at CURATOR_VENV, reused), two curator.LLM steps, W requests at once
Every run gets a fresh mock server process (`python -m targen_dspy.backends.fake_openai`) and fresh caches.
The server counts requests and their timing (GET /stats); the client's CPU and peak RSS come from
os.wait4, its CPU before its first request from /proc/PID/stat polled every 10 ms.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENTS = HERE / "bench_clients"
RESULTS = HERE / "results" / "bench_engine.md"
MODEL = "openai/bench"
CURATOR_VENV = Path.home() / ".cache" / "targen-bench" / "curator-venv"
CURATOR = "bespokelabs-curator==0.1.31"
POLL = 0.01  # seconds between samples of the client's CPU before its first request
TICKS = os.sysconf("SC_CLK_TCK")
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for the mock's /stats

REPORT = """# Engine benchmark: TarGEN and its peers

`{command}`, {date}: {cores} CPU cores, shared: {load}. Python {python}, dspy {dspy}, {curator}.

Each client makes two LLM calls per slot, a generation and a judgement of it, against the same mock
OpenAI-compatible server, `targen_dspy.backends.fake_openai --latency {latency}` ({latency_ms} ms per
call, JSON answers), a fresh server process per run, so its CPU is not the client's:

- *bare DSPy loop* (`experiments/bench_clients/bare_dspy.py`): W threads, two `dspy.Predict` calls per
  slot (`topic -> sentence`, then `sentence -> verdict`); DSPy as it comes (`dspy.LM` and its default
  engine, which makes these calls with DSPy's own HTTP client and never imports litellm; memory and disk
  cache; history) with `dspy.JSONAdapter`, as TarGEN uses.
- *bare loop, tuned*: the same loop with the DSPy settings of a TarGEN run (`--tuned`): DSPy's per-call
  look-ups memoized (`targen_dspy/backends/hot_paths.py`), the JSON adapter's per-signature texts built
  once, one disk cache store and no memory tier, no history, no input type check. What is left between
  it and targen is TarGEN's own work (records, retries, the meter, dispatch) and its larger prompts
  (about 2,000 and 4,000 characters, with demos, against 700).
- *targen generate*: `targen generate rte -n N --workers W --model {model} --api-base URL -q -o DIR` as a
  user runs it: generation and self-correction per instance, plus contexts and seeds (about 2.14 calls
  per instance), one fsynced record per instance.
- *curator* (`experiments/bench_clients/curator_steps.py`, {curator} in its own virtual environment at
  `{venv}`): a `curator.LLM` step writes a sentence per row, a second judges them; backend `openai` at
  the mock, `max_concurrent_requests` = W and rate limits lifted (its defaults, 200 requests and 100,000
  tokens a minute, would be the bottleneck). It runs offline and on loopback only: telemetry
  (`TELEMETRY_ENABLED=false`) and hosted viewer off, Hugging Face offline, litellm's bundled price table,
  and tiktoken's `cl100k_base` (curator counts every prompt's tokens with it) read from the copy that
  litellm ships (`TIKTOKEN_CACHE_DIR`), not downloaded. Each of its steps first sends one request with
  no messages to read rate-limit headers (answered 400): 2 of its calls.

Every client starts with empty caches (`DSPY_CACHEDIR`, `CURATOR_CACHE_DIR`, `HF_HOME` in a fresh
directory). The bare loop and curator refuse any host but loopback (`bench_clients/loopback.py`):
{refused}.

*calls*: requests the server saw; *first call at*: from the client's start (process spawn) to its first
request; *CPU before it*: the client's user + system CPU until then (`/proc/PID/stat`, 10 ms samples);
*calls/s*: calls ÷ (last answer − first request), server clock; ideal = W ÷ latency; *vs bare*: calls/s
÷ the bare loop's at the same n and W; *CPU ms/call*: the client's whole user + system CPU (`wait4`,
start-up included) ÷ calls; *peak RSS*: `ru_maxrss` from `wait4`; *max in flight*: most requests the
server was answering at once (a call counts until the server's thread has written its answer, by
when the client may have sent its next: W + 1 at most).

{table}

Start-up, every run of each client: the CPU it spent before its first request. One run's figure is a
single sample, and on this shared virtual machine the same command's varies by up to 0.8 s between runs
(every DSPy client: importing DSPy alone takes 0.9-1.3 s of it), so compare the medians.

{startup}
"""
BARE = "bare DSPy loop"
HEADER = (
    "| n | W | client | wall s | calls | first call at s | CPU before it ms | calls/s (ideal) | vs bare "
    "| CPU ms/call | peak RSS MB | max in flight |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


# ---- the mock server ----


@contextmanager
def mock_server(latency: float, *options: str) -> Iterator[str]:
    """A fresh fake OpenAI server in a process of its own (more command-line `options` of it); yields its
    API base."""
    process = subprocess.Popen(
        [sys.executable, "-m", "targen_dspy.backends.fake_openai", "--latency", str(latency), *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()  # the server stops at end of stdin
        process.wait(timeout=30)


def server_stats(api_base: str) -> dict[str, Any]:
    with _LOCAL.open(api_base.removesuffix("/v1") + "/stats", timeout=30) as response:
        return json.load(response)


# ---- the clients: a command per run, and what it made ----


def bare_command(api_base: str, n: int, workers: int, workdir: Path, tuned: bool = False) -> list[str]:
    return [sys.executable, str(CLIENTS / "bare_dspy.py"), *_sizes(api_base, n, workers)] + (
        ["--tuned"] if tuned else []
    )


def targen_command(
    api_base: str, n: int, workers: int, workdir: Path, options: tuple[str, ...] = ()
) -> list[str]:
    targen = shutil.which("targen", path=str(Path(sys.executable).parent)) or shutil.which("targen")
    start = [targen] if targen else [sys.executable, "-m", "targen_dspy.cli"]
    sizes = ["-n", str(n), "--workers", str(workers), "--model", MODEL, "--api-base", api_base]
    return [*start, "generate", "rte", *sizes, *options, "-q", "-o", str(workdir / "run")]


def curator_command(python: Path, api_base: str, n: int, workers: int, workdir: Path) -> list[str]:
    return [str(python), str(CLIENTS / "curator_steps.py"), *_sizes(api_base, n, workers)]


def _sizes(api_base: str, n: int, workers: int) -> list[str]:
    return ["--api-base", api_base, "--n", str(n), "--workers", str(workers)]


def made(workdir: Path) -> tuple[int, list[str] | None]:
    """Slots the client finished and the hosts it was refused (None: not checked): targen's data.jsonl,
    else the JSON line the client printed last."""
    if (workdir / "run").exists():
        data = workdir / "run" / "data.jsonl"
        return (sum(1 for _ in data.open(encoding="utf-8")) if data.exists() else 0), None
    lines = (workdir / "stdout").read_text(encoding="utf-8").splitlines()
    last = json.loads(lines[-1]) if lines else {"slots": 0, "refused": None}
    return last["slots"], last["refused"]


def client_env(workdir: Path) -> dict[str, str]:
    """This environment with empty caches in `workdir` and no curator or DSPy settings of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CURATOR_", "BESPOKE_", "DSPY_"))}
    caches = {"DSPY_CACHEDIR": "dspy-cache", "CURATOR_CACHE_DIR": "curator-cache", "HF_HOME": "hf"}
    return env | {name: str(workdir / folder) for name, folder in caches.items()}


# ---- measuring one run ----


def measure(command: Callable[..., list[str]], latency: float, n: int, workers: int) -> dict[str, Any]:
    """One client run against a fresh server: the server's traffic, the client's rusage and its CPU before
    its first request; `error` if it failed or did not finish every slot."""
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp, mock_server(latency) as api_base:
        workdir = Path(tmp)
        with open(workdir / "stdout", "w") as out, open(workdir / "stderr", "w") as err:
            started = time.time()
            process = subprocess.Popen(
                command(api_base, n, workers, workdir),
                env=client_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
            try:
                cpu_before = cpu_before_first_request(process.pid, api_base)
                _, status, usage = os.wait4(process.pid, 0)
            except BaseException:  # e.g. Ctrl-C: leave no client running
                process.kill()
                raise
            process.returncode = os.waitstatus_to_exitcode(status)
            wall = time.time() - started
        traffic = server_stats(api_base)
        slots, refused = made(workdir) if process.returncode == 0 else (0, None)
        error = _error(process.returncode, slots, n, workdir)
    run = {"n": n, "workers": workers, "wall": wall, "started": started, "cpu_before": cpu_before}
    return run | {"usage": usage, "traffic": traffic, "refused": refused, "error": error}


def _error(returncode: int, slots: int, n: int, workdir: Path) -> str | None:
    if returncode:
        lines = (workdir / "stderr").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return f"exit {returncode}: {lines[-1][:200] if lines else 'no output'}"
    return None if slots == n else f"{slots} of {n} slots"


def cpu_before_first_request(pid: int, api_base: str) -> float:
    """The client's CPU seconds at the last /proc sample taken before the server's first request (samples
    every POLL seconds until the server has seen one, or the client has exited)."""
    before = 0.0
    while (cpu := _cpu_seconds(pid)) is not None:
        sampled = time.time()
        first = server_stats(api_base)["first_request"]
        if first is not None:
            return cpu if sampled <= first else before
        before = cpu
        time.sleep(POLL)
    return before


def _cpu_seconds(pid: int | str) -> float | None:
    """User + system CPU of a running process from /proc/PID/stat; None once it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if fields[0] in "ZX" else (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy(seconds: float = 2.0) -> str:
    """1/5/15-minute load average and the other processes that used most CPU over `seconds` (from /proc)."""
    pids = [path.name for path in Path("/proc").iterdir() if path.name.isdigit()]
    before = {pid: _cpu_seconds(pid) for pid in pids if pid != str(os.getpid())}
    time.sleep(seconds)
    used = []
    for pid, cpu in before.items():
        if cpu is not None and (now := _cpu_seconds(pid)) is not None and now - cpu >= 0.05 * seconds:
            used.append(((now - cpu) / seconds, _command(pid)))
    top = ", ".join(f"`{command}` {share:.0%}" for share, command in sorted(used, reverse=True)[:3])
    return f"load {'/'.join(f'{x:.2f}' for x in os.getloadavg())}, {top or 'no other process busy'}"


def _command(pid: str) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    return " ".join([Path(argv[0]).name, *argv[1:3]])[:60]


# ---- curator's virtual environment ----


def curator_python() -> Path | None:
    """The Python of curator's virtual environment, made and curator installed there first if needed;
    None (said in one line) if that cannot be done, e.g. without a network."""
    python = CURATOR_VENV / "bin" / "python"
    if _curator_version(python) is None:
        print(f"curator: making {CURATOR_VENV}: python -m venv, pip install {CURATOR} (minutes)", flush=True)
        make = [sys.executable, "-m", "venv", str(CURATOR_VENV)]
        for step in (make, [python, "-m", "pip", "install", CURATOR]):
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                print(f"curator: cannot be installed ({last}); running the other clients", flush=True)
                return None
    print(f"curator: bespokelabs-curator {_curator_version(python)} in {CURATOR_VENV}", flush=True)
    return python


def _curator_version(python: Path) -> str | None:
    if not python.exists():
        return None
    ask = "import importlib.metadata as m; print(m.version('bespokelabs-curator'))"
    done = subprocess.run([python, "-c", ask], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


# ---- the table ----


def row(name: str, run: dict[str, Any], bare: dict[str, Any] | None, latency: float) -> str:
    start = f"| {run['n']:,} | {run['workers']} | {name} |"
    if run["error"]:
        return f"{start} failed: {run['error']} |" + " |" * 8
    traffic, usage = run["traffic"], run["usage"]
    calls, rate = traffic["requests"], calls_per_second(run)
    vs_bare = f"{rate / calls_per_second(bare):.2f}" if bare and not bare["error"] else "-"
    return (
        f"{start} {run['wall']:.1f} | {calls:,} | {traffic['first_request'] - run['started']:.2f} "
        f"| {1000 * run['cpu_before']:.0f} | {rate:.1f} ({run['workers'] / latency:.0f}) | {vs_bare} "
        f"| {1000 * (usage.ru_utime + usage.ru_stime) / calls:.2f} | {usage.ru_maxrss / 1024:.0f} "
        f"| {traffic['max_in_flight']} |"
    )


def startup(runs: list[dict[str, Any]]) -> str:
    """Each client's CPU before its first request over all its runs: median, range, and the median's ratio
    to the bare loop's."""
    by_client: dict[str, list[float]] = {}
    for run in runs:
        if not run["error"]:
            by_client.setdefault(run["client"], []).append(run["cpu_before"])
    bare = statistics.median(by_client.get(BARE, [0.0])) or None
    lines = [
        "| client | runs | CPU before the first request, median ms | range ms | vs bare |",
        "|---|---|---|---|---|",
    ]
    for name, cpu in by_client.items():
        ratio = f"{statistics.median(cpu) / bare:.2f}" if bare and name != BARE else "-"
        lines.append(
            f"| {name} | {len(cpu)} | {1000 * statistics.median(cpu):.0f} "
            f"| {1000 * min(cpu):.0f}-{1000 * max(cpu):.0f} | {ratio} |"
        )
    return "\n".join(lines)


def calls_per_second(run: dict[str, Any]) -> float:
    traffic = run["traffic"]
    return traffic["requests"] / (traffic["last_answer"] - traffic["first_request"])


def refusals(runs: list[dict[str, Any]]) -> str:
    checked = [run for run in runs if run["refused"] is not None]
    hosts = ", ".join(sorted({host for run in checked for host in run["refused"]})) or "none"
    return f"hosts refused: {hosts} ({len(checked)} of {len(runs)} runs checked)"


# ---- main ----


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per call (default 0.2)")
    parser.add_argument("--n", type=int, nargs="+", help="slots per run (default 400 4000)")
    parser.add_argument("--workers", type=int, nargs="+", help="requests at once (default 16 64)")
    parser.add_argument("--no-curator", action="store_true", help="leave the peer out")
    parser.add_argument("--quick", action="store_true", help="n 40, 8 workers, results not written")
    parser.add_argument(
        "--targen-also",
        metavar="OPTIONS",
        help='one more targen client with these generate options, e.g. "--seeds-per-context 8"',
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="the report (default experiments/results/bench_engine.md)"
    )
    args = parser.parse_args(argv)
    args.n = args.n or ([40] if args.quick else [400, 4000])
    args.workers = args.workers or ([8] if args.quick else [16, 64])
    return args


def clients(no_curator: bool, targen_also: str | None = None) -> dict[str, Callable[..., list[str]]]:
    found = {
        BARE: bare_command,
        "bare loop, tuned": functools.partial(bare_command, tuned=True),
        "targen generate": targen_command,
    }
    if targen_also:
        found[f"targen generate {targen_also}"] = functools.partial(
            targen_command, options=tuple(shlex.split(targen_also))
        )
    python = None if no_curator else curator_python()
    return found | ({"curator": functools.partial(curator_command, python)} if python else {})


def compare(found: dict, args: argparse.Namespace) -> tuple[list[str], list[dict[str, Any]]]:
    """Every client at every n and worker count, the bare loop first; rows printed as they come."""
    lines, runs = [HEADER], []
    print(HEADER, flush=True)
    for n in args.n:
        for workers in args.workers:
            bare = None
            for name, command in found.items():
                run = measure(command, args.latency, n, workers) | {"client": name}
                lines.append(row(name, run, bare, args.latency))
                runs.append(run)
                bare = bare or run
                print(lines[-1], flush=True)
    return lines, runs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    found = clients(args.no_curator, args.targen_also)
    before = machine_busy()
    print(f"machine before: {before}", flush=True)
    lines, runs = compare(found, args)
    after = machine_busy()
    curator = _curator_version(CURATOR_VENV / "bin" / "python") if "curator" in found else None
    report = REPORT.format(
        command=shlex.join(["python", "experiments/bench_engine.py", *(argv or sys.argv[1:])]),
        date=time.strftime("%Y-%m-%d"),
        cores=os.cpu_count(),
        load=f"before, {before}; after, {after} (1/5/15-minute load; others' CPU over 2 s)",
        python=platform.python_version(),
        dspy=importlib.metadata.version("dspy"),
        curator=f"bespokelabs-curator {curator}" if curator else "curator not run",
        latency=args.latency,
        latency_ms=f"{args.latency * 1000:.0f}",
        model=MODEL,
        venv=str(CURATOR_VENV).replace(str(Path.home()), "~"),
        refused=refusals(runs),
        table="\n".join(lines),
        startup=startup(runs),
    )
    print(f"\n{report}")
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report, encoding="utf-8")
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
