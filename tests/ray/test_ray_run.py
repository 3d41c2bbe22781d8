"""`targen generate --ray` on one local Ray cluster (the session's `ray_cluster`) against the real fake
OpenAI server: the same run as a local one, an actor killed mid-run, a driver killed and resumed, hostile
answers, and the one-line errors (Ray missing included)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from targen_dspy.backends.fake_openai import GARBAGE, FakeOpenAI
from targen_dspy.cli import main
from targen_dspy.engine.limits import PARSE_ATTEMPTS
from tests.engine.test_reliability import records

N = 12
MATERIAL_CALLS = 3  # RTE, n = 12: six seeds, four per context: one contexts call, two seeds calls
RAY = ["--actors", "2", "--workers", "2"]  # four calls at once, eight slots started


def arguments(run: Path, model: str, *api_bases: str, extra: tuple[str, ...] = ()) -> list[str]:
    endpoints = [arg for api_base in api_bases for arg in ("--api-base", api_base)]
    return ["generate", "rte", "-n", str(N), "-o", str(run), "-q", "--model", model, *endpoints, *extra]


def stats(run: Path) -> dict:
    return json.loads((run / "stats.json").read_text())


def actor_pids() -> list[int]:
    """The processes of this session's Ray actors: descendants of this process titled ray::SlotActor."""
    parents, titles = {}, {}
    for entry in Path("/proc").iterdir():
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            titles[int(entry.name)] = (entry / "cmdline").read_bytes()
        except (ValueError, OSError, IndexError):  # not a process, or one that just ended
            continue

    def ours(pid: int) -> bool:
        while pid > 1 and pid != os.getpid():
            pid = parents.get(pid, 1)
        return pid == os.getpid()

    return [pid for pid, title in titles.items() if title.startswith(b"ray::SlotActor") and ours(pid)]


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_a_ray_run_makes_what_a_local_run_makes_and_spreads_the_endpoints(ray_cluster, tmp_path):
    with FakeOpenAI() as first, FakeOpenAI() as second:
        local = main(
            arguments(tmp_path / "local", "openai/ray-local", first.api_base, extra=("--workers", "2"))
        )
        before = first.calls
        spread = main(
            arguments(
                tmp_path / "ray", "openai/ray-actors", first.api_base, second.api_base, extra=("--ray", *RAY)
            )
        )
        on_first, on_second = first.calls - before, second.calls
    assert local == spread == 0
    made, planned = records(tmp_path / "ray"), records(tmp_path / "local")
    assert len(made) == N and sorted(r["id"] for r in made) == sorted(r["id"] for r in planned)
    assert {tuple(r) for r in made} == {tuple(r) for r in planned}  # the same keys in the same order
    assert (
        Counter(r["label"] for r in made)
        == Counter(r["label"] for r in planned)
        == {
            "entailment": 6,
            "not_entailment": 6,
        }
    )
    ray_stats, local_stats = stats(tmp_path / "ray"), stats(tmp_path / "local")
    for key in ("instances", "labels", "confusion", "failed_slots", "retries"):
        assert ray_stats[key] == local_stats[key], key
    spent = ray_stats["this_invocation"]
    assert spent["calls"] == on_first + on_second == local_stats["this_invocation"]["calls"]
    assert spent["prompt_tokens"] > 0 and spent["slots_made"] == N
    assert (spent["ray_actors"], spent["actors_lost"], spent["calls_redone"]) == (2, 0, 0)
    assert on_first > 0 and on_second > 0  # one endpoint per actor


def test_an_actor_killed_mid_run_loses_only_its_started_slots(ray_cluster, tmp_path):
    run, outcome = tmp_path / "run", {}
    with FakeOpenAI() as server:
        server.hold(after=MATERIAL_CALLS + 4)  # then every call waits at the server
        driver = threading.Thread(
            target=lambda: outcome.update(
                code=main(arguments(run, "openai/ray-kill", server.api_base, extra=("--ray", *RAY)))
            )
        )
        driver.start()
        wait_for(lambda: server.held == 4, "both actors wait on the server with two calls each")
        victims = actor_pids()
        assert len(victims) == 2
        os.kill(victims[0], signal.SIGKILL)
        wait_for(lambda: len(actor_pids()) == 2 and victims[0] not in actor_pids(), "a new actor runs")
        server.release()
        driver.join(timeout=180)
    assert outcome.get("code") == 0
    ids = [r["id"] for r in records(run)]
    assert len(ids) == len(set(ids)) == N
    assert not (run / "failed.jsonl").exists()  # written at a slot's first failure
    spent = stats(run)["this_invocation"]
    assert spent["actors_lost"] == 1
    assert spent["calls_redone"] >= 2  # at least the two held slots of the killed actor
    assert spent["slots_made"] == N


def test_a_killed_driver_resumes_and_writes_no_slot_twice(ray_cluster, tmp_path):
    run = tmp_path / "run"
    with FakeOpenAI() as server:
        command = [
            sys.executable, "-m", "targen_dspy.cli",
            *arguments(run, "openai/ray-resume", server.api_base,
                       extra=("--ray", ray_cluster.get_runtime_context().gcs_address, "--actors", "1",
                              "--workers", "4")),
        ]  # fmt: skip
        server.hold(after=MATERIAL_CALLS + 8)
        driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: server.held and records(run), "the driver has written and waits on a call")
        finally:
            driver.kill()
            _, err = driver.communicate()
        server.release()
        before = records(run)
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert driver.returncode == -signal.SIGKILL, err
    assert rerun.returncode == 0, rerun.stderr
    after = records(run)
    ids = [r["id"] for r in after]
    assert len(ids) == len(set(ids)) == N
    assert after[: len(before)] == before and 0 < len(before) < N
    assert stats(run)["this_invocation"]["slots_made"] == N - len(before)
    assert stats(run)["instances"] == N


def test_contexts_that_never_parse_end_a_ray_run_with_one_line(ray_cluster, tmp_path, capsys):
    with FakeOpenAI(garbage_after={"contexts": 0}) as server:
        code = main(
            arguments(
                tmp_path / "run", "openai/ray-garbage", server.api_base, extra=("--ray", "--actors", "1")
            )
        )
        asked = server.answered["contexts"]
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "the contexts step" in err, err
    assert GARBAGE.split()[0] in err  # the raw answer crossed from the actor to the driver
    assert asked == PARSE_ATTEMPTS
    assert stats(tmp_path / "run")["retries"] == {"contexts": PARSE_ATTEMPTS - 1}


def test_without_ray_installed_ray_is_one_line_and_exit_2(tmp_path, server):
    (tmp_path / "sitecustomize.py").write_text("import sys\n\nsys.modules['ray'] = None  # not installed\n")
    done = subprocess.run(
        [sys.executable, "-m", "targen_dspy.cli", *arguments(tmp_path / "run", "openai/x", server.api_base,
                                                             extra=("--ray",))],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert 'needs Ray, which is not installed: pip install -e ".[ray]"' in done.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--actors", "2"), "--actors applies to --ray only"),
        (("--api-base", "http://127.0.0.1:9/v1"), "several --api-base need --ray"),
        (("--ray", "--method", "self-reference"), "--ray applies to --method targen only"),
        (("--ray", "--actors", "0"), "--actors must be at least 1"),
        (("--ray", "127.0.0.1:9"), "cannot reach the Ray cluster at 127.0.0.1:9"),
        (("--ray", "a cluster"), "is not a cluster address"),
    ],
)
def test_ray_options_given_wrongly_are_one_line_errors(extra, message, tmp_path, server, capsys):
    code = main(arguments(tmp_path / "run", "openai/x", server.api_base, extra=extra))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
