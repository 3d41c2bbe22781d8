"""`targen generate --batch` and `targen status` as a user runs them: a process killed while it polls its
jobs, resumed by the same command, never submits a request twice; bad options are one-line errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from targen_dspy.backends.fake_batches import BatchPlan
from targen_dspy.backends.fake_openai import FakeOpenAI

N = 6


def command(run: Path, server: FakeOpenAI, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "targen_dspy.cli", "generate", "rte", "-n", str(N), "-o", str(run), "-q",
        "--model", "openai/gpt-4o-mini", "--api-base", server.api_base, "--batch", "--poll-seconds", "0.05",
        *extra,
    ]  # fmt: skip


def environment(tmp_path: Path) -> dict[str, str]:
    """As on a fresh machine (no keys), with a DSPy cache of the test's own: nothing is answered by a
    cache that another test filled."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return {**env, "DSPY_CACHEDIR": str(tmp_path / "dspy-cache")}


def events(run: Path) -> list[dict]:
    path = run / "batches.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.endswith("}")]


def polled(run: Path, stage: str) -> bool:
    """Whether the run has submitted a job of `stage` and logged a state of it (it is polling it)."""
    files = {e["file"] for e in events(run) if e["event"] == "uploaded" and e["stage"] == stage}
    return any(e["event"] == "state" and e["file"] in files for e in events(run))


def status(run: Path, tmp_path: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "targen_dspy.cli", "status", str(run)],
        capture_output=True, text=True, timeout=60, env=environment(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_sigkill_while_polling_then_the_same_command_resumes_the_jobs(tmp_path):
    run = tmp_path / "run"
    plan = BatchPlan(hold_stages=frozenset({"instances"}))  # contexts and seeds finish, instances wait
    with FakeOpenAI(batches=plan) as server:
        process = subprocess.Popen(
            command(run, server), env=environment(tmp_path), stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 120
            while not polled(run, "instances"):
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "the run never polled an instances job"
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL
        during = status(run, tmp_path)
        assert f"0 of {N} slots done, {N} pending" in during
        assert "instances" in during and "in_progress" in during and "batch jobs: 3, 1 live" in during

        # The process may also die after creating a batch and before writing its id down: the rerun
        # finds it by its input file instead of submitting its requests again.
        journal = run / "batches.jsonl"
        live = next(e["file"] for e in events(run) if e["event"] == "uploaded" and e["stage"] == "instances")
        kept = [e for e in events(run) if e["file"] != live or e["event"] == "uploaded"]
        journal.write_text("".join(json.dumps(e) + "\n" for e in kept))

        plan.hold_stages = frozenset()
        out = subprocess.run(command(run, server), env=environment(tmp_path), capture_output=True, text=True,
                             timeout=300)  # fmt: skip
        submitted = dict(server.batches.submitted)
    assert out.returncode == 0, out.stderr
    assert set(submitted.values()) == {1}  # no request submitted twice
    data = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    assert len(data) == N and len({row["id"] for row in data}) == N
    stats = json.loads((run / "stats.json").read_text())
    assert stats["batch"]["requests"] == len(submitted) == stats["batch"]["answers"]
    assert f"{N} instances" in out.stdout and "at batch prices" in out.stdout
    after = status(run, tmp_path)
    assert f"{N} of {N} slots done, 0 pending" in after and ", 0 live" in after
    assert after.count("fetched") == 5  # contexts, seeds, generation, correction jobs, and the line of totals


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "local"], "--batch needs a hosted model with a batch API"),
        (["--method", "self-reference"], "--batch applies to --method targen only"),
        (["--workers", "4"], "--workers applies to online runs"),
        (["--corrector-model", "openai/gpt-4o"], "--batch sends every step to --model"),
        (["--poll-seconds", "0"], "--poll-seconds must be positive"),
        (["--model", "anthropic/claude-3-5-haiku-latest"], "--batch uses the OpenAI batch API"),
    ],
)
def test_bad_batch_options_are_one_line_exit_2(tmp_path, extra, message):
    with FakeOpenAI() as server:
        out = subprocess.run(command(tmp_path / "run", server, *extra), env=environment(tmp_path),
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_poll_seconds_without_batch_and_status_of_no_run(tmp_path):
    with FakeOpenAI() as server:
        args = [a for a in command(tmp_path / "run", server) if a != "--batch"]
        out = subprocess.run(args, env=environment(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--poll-seconds applies to --batch runs only" in out.stderr
    out = subprocess.run([sys.executable, "-m", "targen_dspy.cli", "status", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "is not a TarGEN run directory" in out.stderr


def test_status_reads_a_running_run_without_changing_it(tmp_path):
    """A run writing its last line as status reads: the torn line is skipped, the files left as they are."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"task": "rte", "settings": {"n": 4, "batch": True}}))
    data = '{"id": "c0-s0-l0", "label": "entailment"}\n{"id": "c0-s0-l1", "lab'
    uploaded = {"event": "uploaded", "file": "file-1", "stage": "instances", "custom_ids": ["a", "b"],
                "slots": ["c0-s0-l1", "c0-s1-l0"]}  # fmt: skip
    journal = json.dumps(uploaded) + '\n{"event": "submitted", "file": "file-1", "batch": "batch_2"}\n{"eve'
    (run / "data.jsonl").write_text(data)
    (run / "batches.jsonl").write_text(journal)
    out = status(run, tmp_path)
    assert "1 of 4 slots done, 3 pending" in out
    assert "batch_2" in out and "instances" in out and "submitted" in out and "2 requests, 2 slots" in out
    assert (run / "data.jsonl").read_text() == data and (run / "batches.jsonl").read_text() == journal
