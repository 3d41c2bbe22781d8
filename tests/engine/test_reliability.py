"""The run engine under faults, crashes and Ctrl-C, driven through the real CLI against a real
OpenAI-compatible HTTP server on loopback."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI, FaultPlan
from targen_dspy.cli import main

N = 24
WORKERS = 4


def records(run: Path) -> list[dict]:
    path = run / "data.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def start(run: Path, server: FakeOpenAI, model: str, n: int = N, workers: int = WORKERS) -> subprocess.Popen:
    args = [
        "generate",
        "rte",
        "-n",
        str(n),
        "-o",
        str(run),
        "--workers",
        str(workers),
        "-q",
        "--model",
        model,
        "--api-base",
        server.api_base,
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "targen_dspy.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_held(server: FakeOpenAI, process: subprocess.Popen, count: int = 1) -> None:
    """Until `count` requests of the run wait at the server: the run is surely in the middle of its work."""
    deadline = time.monotonic() + 90
    while server.held < count:
        assert process.poll() is None, "the run ended before the server held one of its calls"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)


def test_faulty_server_still_gives_exactly_n_instances(tmp_path, capsys):
    faults = FaultPlan(rate=0.2, hang_seconds=3.0)
    with FakeOpenAI(faults=faults) as server:
        code = main(
            [
                "generate",
                "rte",
                "-n",
                str(N),
                "-o",
                str(tmp_path),
                "--workers",
                str(WORKERS),
                "-q",
                "--model",
                "openai/faulty",
                "--api-base",
                server.api_base,
                "--timeout",
                "1",
            ]
        )
        served = server.faults_served
    assert code == 0
    ids = [r["id"] for r in records(tmp_path)]
    assert len(ids) == N == len(set(ids))
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert served > 0 and stats["this_invocation"]["retries"] > 0
    assert stats["instances"] == N


def test_every_worker_has_a_call_in_flight_once_the_seeds_are_in(tmp_path):
    n, workers = 64, 16
    with FakeOpenAI() as server:
        server.hold(after=1 + n // 2 // 4)  # the contexts call and the seeds calls (4 seeds per context)
        process = start(tmp_path, server, "openai/saturated", n=n, workers=workers)
        wait_until_held(server, process, count=workers)  # instance calls, all started from seeds
        time.sleep(0.5)  # room for a call too many (none may come: every worker waits for its answer)
        held = server.held
        server.release()
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    # (not the server's most in flight: it counts a call until its thread has written the answer, by
    # when the client may have sent the next one)
    assert held == workers
    assert len(records(tmp_path)) == n


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path):
    with FakeOpenAI() as server:
        for answered in (10, 25, 40):  # server calls answered before it holds the rest: three points
            server.hold(after=answered)
            process = start(tmp_path, server, "openai/killed")
            wait_until_held(server, process)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=60) == -signal.SIGKILL  # killed mid-run, not finished
            server.release()
        kept = len(records(tmp_path))
        final = start(tmp_path, server, "openai/killed")
        assert final.wait(timeout=120) == 0, final.stderr.read()
        calls = server.calls
    ids = [r["id"] for r in records(tmp_path)]
    assert 0 < kept < N and len(ids) == N == len(set(ids))
    # contexts (1) + seeds (N/2 seeds, 4 per context) + 2 per instance; a killed process can only
    # lose the calls it had in flight (at most one per worker): the rest replays from the cache.
    ideal = 1 + N // 2 // 4 + 2 * N
    assert ideal <= calls <= ideal + 3 * WORKERS


@pytest.fixture
def interruptible():
    """Child processes get SIGINT as from a terminal. A shell starts a background job (`pytest &`, nohup)
    with SIGINT ignored and a child inherits that, so its run would never see the Ctrl-C; a handler here
    is reset to the default in the child, where Python turns SIGINT into KeyboardInterrupt again."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("interruptible")
def test_ctrl_c_mid_run_stops_cleanly_and_keeps_finished_instances(tmp_path):
    with FakeOpenAI() as server:
        server.hold(after=20)
        process = start(tmp_path, server, "openai/interrupted")
        wait_until_held(server, process)
        process.send_signal(signal.SIGINT)
        server.release()  # the calls in flight finish; no new one starts
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr
        kept = (tmp_path / "data.jsonl").read_text().splitlines()
        assert 0 < len(kept) < N and all(json.loads(line)["id"] for line in kept)  # every line whole
        assert start(tmp_path, server, "openai/interrupted").wait(timeout=120) == 0
    assert len({r["id"] for r in records(tmp_path)}) == N
