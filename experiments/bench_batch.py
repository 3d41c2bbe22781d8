"""Batch benchmark (issue 18): `targen generate --batch` against the online engine, and `targen estimate`
against what the run metered, on RTE against the fake OpenAI server (a process of its own, so that its
CPU is not the client's; its batch jobs finish BATCH_DELAY seconds after they are created).

    python experiments/bench_batch.py            # n 1000, writes experiments/results/bench_batch.md
    python experiments/bench_batch.py --n 60     # a smoke run: writes nothing

Each client is `targen generate rte -n N --model openai/gpt-4o-mini --api-base URL -q -o DIR` as a user
runs it (start-up included), online with --workers W, or with --batch --poll-seconds P; its user + system
CPU and peak RSS come from os.wait4. The estimate is `targen estimate` with the same -n (and --batch)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "bench_batch.md"
MODEL = "openai/gpt-4o-mini"  # the fake answers any name; this one is in the price table
BATCH_DELAY = 2.0
_SPEC = importlib.util.spec_from_file_location("bench_engine", HERE / "bench_engine.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def targen(*args: str) -> list[str]:
    return [sys.executable, "-m", "targen_dspy.cli", *args]


def measure(n: int, workers: int, batch: bool, poll: float) -> dict[str, Any]:
    """One run against a fresh server: the client's CPU, peak RSS and wall time, and its stats.json."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp,
        bench.mock_server(0.0, "--batch-delay", str(BATCH_DELAY)) as api_base,
    ):
        workdir = Path(tmp)
        mode = ["--batch", "--poll-seconds", str(poll)] if batch else ["--workers", str(workers)]
        command = targen("generate", "rte", "-n", str(n), "--model", MODEL, "--api-base", api_base, "-q",
                         "-o", str(workdir / "run"), *mode)  # fmt: skip
        started = time.time()
        with open(workdir / "stderr", "w") as err:
            env = bench.client_env(workdir)
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{' '.join(command)} failed: {(workdir / 'stderr').read_text()[-500:]}")
        stats = json.loads((workdir / "run" / "stats.json").read_text())
        lines = len((workdir / "run" / "data.jsonl").read_text(encoding="utf-8").splitlines())
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": time.time() - started, "cpu": cpu, "rss_mb": usage.ru_maxrss / 1024, "stats": stats,
            "instances": lines}  # fmt: skip


def estimated(n: int, batch: bool) -> dict[str, Any]:
    """`targen estimate`'s total row: calls, input and output tokens, USD."""
    out = subprocess.run(targen("estimate", "rte", "-n", str(n), "--model", MODEL, *(["--batch"] * batch)),
                         capture_output=True, text=True, check=True)  # fmt: skip
    total = next(line.split() for line in out.stdout.splitlines() if line.startswith("total"))
    return {"calls": int(total[1]), "input": int(total[2]), "output": int(total[3]), "usd": float(total[4]),
            "table": out.stdout.rstrip()}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16, help="the online run's (default 16)")
    parser.add_argument("--poll-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    before = bench.machine_busy()
    runs = {
        "online": measure(args.n, args.workers, False, args.poll_seconds),
        "batch": measure(args.n, args.workers, True, args.poll_seconds),
    }
    after = bench.machine_busy()
    expected = estimated(args.n, True)
    rows = []
    for name, run in runs.items():
        spent = run["stats"]["this_invocation"]
        rows.append(
            f"| {name} | {run['instances']} | {spent['calls']} | {run['cpu']:.1f} | "
            f"{1000 * run['cpu'] / spent['calls']:.1f} | {run['rss_mb']:.0f} | {run['wall']:.1f} | "
            f"{spent['prompt_tokens']:,} + {spent['completion_tokens']:,} | {spent['cost_usd']:.4f} |"
        )
    metered = runs["batch"]["stats"]["batch"]
    total = metered["prompt_tokens"] + metered["completion_tokens"]
    error = (expected["input"] + expected["output"]) / total - 1
    report = f"""# Batch benchmark: `targen generate --batch` vs online, and `targen estimate`

`python experiments/bench_batch.py {" ".join(argv or sys.argv[1:])}`, {time.strftime("%Y-%m-%d")}:
{os.cpu_count()} CPU cores, shared with other work (measured under load): before, {before}; after,
{after}.

RTE, n = {args.n}, `--model {MODEL}` against `targen_dspy.backends.fake_openai --batch-delay {BATCH_DELAY}` (a
process of its own: no latency on online calls, batch jobs done {BATCH_DELAY} s after creation). Online:
`--workers {args.workers}`; batch: `--batch --poll-seconds {args.poll_seconds}`. *CPU s*: the client's user +
system CPU from `os.wait4`, start-up included; *peak RSS*: `ru_maxrss`; USD at online prices for the online
run, batch prices for the batch run (the fake bills tokens counted as OpenAI counts them).

| run | instances | calls | CPU s | CPU ms/call | peak RSS MB | wall s | tokens (in + out) | USD |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Estimate (`targen estimate rte -n {args.n} --model {MODEL} --batch`, before any call) vs the batch run's
metered totals: calls {expected["calls"]} vs {metered["answers"]}; input tokens {expected["input"]:,} vs
{metered["prompt_tokens"]:,}; output tokens {expected["output"]:,} vs {metered["completion_tokens"]:,}; all
tokens {error:+.1%}; USD {expected["usd"]:.4f} vs {metered["cost_usd"]:.4f}. The output estimate assumes
a {20}-word sentence per free-text field; the fake writes shorter ones, so the output figure runs high.

```
{expected["table"]}
```
"""
    print(report)
    if args.n >= 1000:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report, encoding="utf-8")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
