"""Answers that do not parse, at every step, through the real CLI against a real HTTP server: asked again
with a new sampling seed, counted by step, never replayed from the cache, and a step that keeps failing
ends the run with one line and exit code 2, keeping what was finished."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError

from targen_dspy.backends.fake_openai import GARBAGE, FakeOpenAI, FaultPlan
from targen_dspy.cli import main
from targen_dspy.engine.limits import LOCAL_ATTEMPTS, PARSE_ATTEMPTS, Unparseable, parse_attempts

MODEL = "openai/fake-writer"


pytestmark = pytest.mark.usefixtures("fresh_run_cache")


def arguments(server: FakeOpenAI, run: Path, n: int) -> list[str]:
    return [
        "generate",
        "rte",
        "-n",
        str(n),
        "-o",
        str(run),
        "-q",
        "--model",
        MODEL,
        "--api-base",
        server.api_base,
    ]


def generate(server: FakeOpenAI, run: Path, n: int, *extra: str) -> subprocess.CompletedProcess:
    """`targen generate rte` as a user runs it: a process of its own, with the test's cache directory."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["DSPY_CACHEDIR"] = str(run.parent / "dspy-cache")
    return subprocess.run(
        [sys.executable, "-m", "targen_dspy.cli", *arguments(server, run, n), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("step", ["contexts", "seeds"])
def test_a_materials_step_that_never_parses_is_one_line_and_exit_2(step, tmp_path, capsys):
    with FakeOpenAI(garbage_after={step: 0}) as server:
        code = main(arguments(server, tmp_path / "run", 4))
        asked = server.answered[step]
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("targen: ")
    assert f"the {step} step" in err and MODEL in err
    assert GARBAGE.split()[0] in err  # the last raw answer, shortened
    assert asked == PARSE_ATTEMPTS  # bounded: one call and its retries
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["retries"] == {step: PARSE_ATTEMPTS - 1}


@pytest.mark.parametrize("field", ["hypothesis", "corrected_label"])  # generation, self-correction
def test_instances_that_never_parse_fail_their_slots_not_the_run(field, tmp_path, capsys):
    with FakeOpenAI(garbage_after={field: 0}) as server:
        code = main(arguments(server, tmp_path / "run", 4))
    assert code == 0
    failed = lines(tmp_path / "run" / "failed.jsonl")
    assert len(failed) == 4 and all(r["raw"] == GARBAGE for r in failed)
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["retries"] == {"instances": 4 * (PARSE_ATTEMPTS - 1)}
    assert "asked again after answers that did not parse: instances 8" in capsys.readouterr().out


def test_a_seeds_step_failing_mid_run_keeps_the_finished_instances(tmp_path, capsys):
    # RTE has two labels and 4 seeds per context: the first context's seeds make 8 slots; the second
    # context's seeds never parse (one worker: the seed calls reach the server in context order).
    with FakeOpenAI(garbage_after={"seeds": 1}) as server:
        code = main(arguments(server, tmp_path / "run", 16))
    err = capsys.readouterr().err
    assert code == 2 and "the seeds step" in err and "8 instances are kept" in err, err
    assert len(lines(tmp_path / "run" / "data.jsonl")) == 8
    materials = json.loads((tmp_path / "run" / "materials.json").read_text())
    assert [len(seeds) for _, seeds in materials] == [4]


def test_a_cached_unparseable_answer_does_not_survive_a_rerun(tmp_path):
    """Two processes, as a user reruns a command: the second must not replay the first one's garbage."""
    with FakeOpenAI(garbage_after={"contexts": 0}) as server:
        first = generate(server, tmp_path / "run", 4)
        assert first.returncode == 2 and first.stderr.count("\n") == 1, first.stderr
        assert "the contexts step" in first.stderr and "Traceback" not in first.stderr
        server.garbage_after = {}  # the server now answers in the right format
        second = generate(server, tmp_path / "run", 4)
    assert second.returncode == 0, second.stderr
    assert len(lines(tmp_path / "run" / "data.jsonl")) == 4


def test_some_garbage_at_every_step_still_gives_n_instances(tmp_path):
    faults = FaultPlan(rate=0.15, kinds=("garbage",))
    with FakeOpenAI(faults=faults) as server:
        code = main([*arguments(server, tmp_path / "run", 24), "--workers", "4"])
        garbled = server.faults_served
    assert code == 0
    records = lines(tmp_path / "run" / "data.jsonl")
    failed = lines(tmp_path / "run" / "failed.jsonl")
    assert len(records) + len(failed) == 24 and len(records) >= 22
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    # every garbled answer was asked again, but the last one of a slot that failed
    assert garbled > 0 and sum(stats["retries"].values()) == garbled - len(failed)


def test_a_step_that_never_parsed_crosses_processes_with_its_raw_answer():
    """From a Ray actor to the driver: DSPy's parse error does not pickle, the step's error does."""
    error = AdapterParseError("JSONAdapter", dspy.Signature("question -> answer"), GARBAGE, "not JSON")
    here = Unparseable("seeds", PARSE_ATTEMPTS, error)
    there = pickle.loads(pickle.dumps(here))
    assert (there.step, there.attempts, there.error.lm_response) == ("seeds", PARSE_ATTEMPTS, GARBAGE)
    assert there.describe(MODEL) == here.describe(MODEL)


def test_the_embedded_model_gets_more_attempts_than_a_remote_one():
    """Its calls cost only time, and it rewrites its input in some slots attempt after attempt."""
    assert parse_attempts("local") == LOCAL_ATTEMPTS > parse_attempts(MODEL) == PARSE_ATTEMPTS
