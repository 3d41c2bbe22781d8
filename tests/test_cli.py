"""The `targen` command run as a user runs it: a separate process, exit codes, one-line errors."""

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.cli import main
from tests.backends.test_remote import free_port


def targen(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}  # as on a fresh machine
    return subprocess.run(
        [sys.executable, "-m", "targen_dspy.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_tasks_lists_catalogue():
    out = targen("tasks")
    assert out.returncode == 0
    assert "rte" in out.stdout and "copa" in out.stdout
    boolq = next(line for line in out.stdout.splitlines() if line.startswith("boolq "))
    assert boolq.endswith("-> true, false")  # labels as they are written in the data
    starts = {len(line) - len(line.split(None, 1)[1]) for line in out.stdout.splitlines()}
    assert len(starts) == 1  # the field lists start in one column, however long the task name


@pytest.mark.parametrize("args", [["--help"], ["generate", "--help"], ["compile", "--help"], ["tasks"]])
def test_help_and_the_task_list_import_no_dspy(args):
    """DSPy takes seconds of CPU to import: reading the options or the catalogue must not pay for it."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "targen_dspy.cli", *args], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage: targen" in out.stdout or "rte" in out.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "targen_dspy.commands" in imported
    assert not {"dspy", "litellm", "numpy"} & imported


def test_a_closed_pipe_is_not_an_error():
    out = subprocess.run(
        f"{sys.executable} -m targen_dspy.cli tasks | head -1", shell=True, capture_output=True, text=True
    )
    assert out.stdout.startswith("axg") and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "nosuchtask"], "unknown task 'nosuchtask'"),
        (["generate", "rte", "--model", "nosuchprovider/x"], "unknown model"),
        (["generate", "rte", "--model", "openai/gpt-4o-mini"], "needs OPENAI_API_KEY"),
        (["generate", "rte", "-n", "0"], "-n must be at least 1"),
        (["generate", "rte", "--workers", "zero"], "invalid int value"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, message, tmp_path):
    out = targen(*args, "-o", str(tmp_path / "run")) if args[0] == "generate" else targen(*args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_malformed_spec_file(tmp_path):
    spec = tmp_path / "task.yaml"
    spec.write_text("name: Bad Name\ndescription: x\n")
    out = targen("generate", str(spec), "-o", str(tmp_path / "run"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and str(spec) in out.stderr


def test_unreachable_server_is_one_line(tmp_path):
    out = targen(
        "generate",
        "rte",
        "--model",
        "openai/x",
        "--api-base",
        f"http://127.0.0.1:{free_port()}/v1",
        "-o",
        str(tmp_path / "run"),
    )
    assert out.returncode == 2 and "cannot reach" in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.parametrize("task", ["rte", "copa"])
def test_generate_through_litellm_against_a_real_http_server(task, tmp_path, capsys):
    with FakeOpenAI(flip_labels=False) as server:
        code = main(
            [
                "generate",
                task,
                "-n",
                "6",
                "-o",
                str(tmp_path),
                "--model",
                "openai/served",
                "--api-base",
                server.api_base,
                "-q",
            ]
        )
        calls = server.calls
    assert code == 0
    records = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert len(records) == 6
    assert Counter(r["constrained_label"] for r in records) == Counter(
        {0: 3, 1: 3} if task == "copa" else {"entailment": 3, "not_entailment": 3}
    )
    assert calls == 2 + 2 * 6  # contexts and seeds once, then two calls per instance
    assert "6 instances" in capsys.readouterr().out


def test_corrector_model_on_another_server_relabels(tmp_path):
    with FakeOpenAI() as writer, FakeOpenAI(flip_labels=True) as judge:
        code = main(
            [
                "generate",
                "rte",
                "-n",
                "4",
                "-o",
                str(tmp_path),
                "--model",
                "openai/writer",
                "--api-base",
                writer.api_base,
                "--corrector-model",
                "openai/judge",
                "--corrector-api-base",
                judge.api_base,
                "-q",
            ]
        )
        assert (writer.calls, judge.calls) == (2 + 4, 4)
    assert code == 0
    records = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert all(r["relabeled"] and r["label"] != r["constrained_label"] for r in records)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["relabeled"] == 4


def test_compile_then_generate_with_the_compiled_program(tmp_path, capsys):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps(
                {
                    "premise": f"Premise {i}.",
                    "hypothesis": f"Hypothesis {i}.",
                    "label": "entailment" if i % 2 else "not_entailment",
                }
            )
            + "\n"
            for i in range(10)
        )
    )
    program = tmp_path / "program.json"
    with FakeOpenAI() as server:
        base = ["--model", "openai/compiler", "--api-base", server.api_base]
        assert (
            main(
                [
                    "compile",
                    "rte",
                    "--valset",
                    str(gold),
                    "-o",
                    str(program),
                    "--generation-slots",
                    "4",
                    "-q",
                    *base,
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "hand-written" in out and "correction accuracy" in out
        # the fake corrector echoes every proposed label: right on half the examples, below the majority
        assert "majority-class baseline" in out and "no better than always answering" in out
        scores = json.loads(program.read_text())["targen"]["scores"]["correction_accuracy"]
        assert scores["hand_written"] == 50.0 < scores["majority_class"]
        record = json.loads(program.read_text())["targen"]
        assert (
            record["optimizer"]["optimizer"] == "bootstrap"
            and record["models"]["generator"] == "openai/compiler"
        )
        assert (
            main(
                [
                    "generate",
                    "rte",
                    "-n",
                    "4",
                    "-o",
                    str(tmp_path / "run"),
                    "--program",
                    str(program),
                    "-q",
                    *base,
                ]
            )
            == 0
        )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert len((tmp_path / "run" / "data.jsonl").read_text().splitlines()) == 4
    assert main(["generate", "copa", "-n", "2", "-o", str(tmp_path / "copa"), "--program", str(program)]) == 2
    assert "compiled for task 'rte'" in capsys.readouterr().err
    from targen_dspy.engine.runner import program_hash
    from targen_dspy.optimizers import load_compiled
    from targen_dspy.signatures import load_task

    assert manifest["program_hash"] == program_hash(load_compiled(load_task("rte"), program))


def test_an_output_path_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    out = targen("generate", "rte", "-n", "2", "-o", str(tmp_path / "a_file" / "run"))
    assert out.returncode == 2, out.stderr
    assert str(tmp_path / "a_file") in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
