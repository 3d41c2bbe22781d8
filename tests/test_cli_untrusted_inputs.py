"""Malformed input files through `python -m targen_dspy.cli`, as a user runs it: exit code 2, one
`targen: ` line on stderr, no traceback, nothing written outside the run directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI
from tests.fuzzing import Sandbox, assert_clean_error, environ_without_keys
from tests.signatures.test_fuzz_spec import BILLION_LAUGHS


def targen(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "targen_dspy.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=environ_without_keys(),
    )


@pytest.mark.parametrize(
    ("name", "content", "args", "message"),
    [
        ("bomb.yaml", BILLION_LAUGHS.encode(), ["validate", "{file}"], "aliases"),
        (
            "gold.jsonl",
            b'["premise"]\n' * 5,
            ["compile", "rte", "--valset", "{file}", "--model", "openai/x"],
            ":1 ",
        ),
        (
            "program.json",
            json.dumps({"targen": {"spec_hash": "x"}, "generate.write": 1}).encode(),
            ["generate", "rte", "--program", "{file}", "-o", "run", "--model", "openai/x"],
            "--program",
        ),
        (
            "example.json",
            b"\xff\xfe\x00junk",
            [
                "generate",
                "rte",
                "--method",
                "self-reference",
                "--example",
                "{file}",
                "-o",
                "run",
                "--model",
                "openai/x",
            ],
            "--example",
        ),
    ],
)
def test_malformed_files_as_a_user_gives_them(tmp_path, name, content, args, message):
    box = Sandbox(tmp_path)
    path = tmp_path / name
    path.write_bytes(content)
    box.before = {**box.before, name: content}
    out = targen(box.work, *(arg.replace("{file}", str(path)) for arg in args))
    assert_clean_error(out.returncode, out.stderr)
    assert message in out.stderr
    box.unchanged_outside(box.work / "run")


def test_a_corrupt_manifest_as_a_user_gives_it(tmp_path):
    box = Sandbox(tmp_path)
    run = box.work / "run"
    run.mkdir()
    (run / "manifest.json").write_text('["not", "a", "manifest"]')
    with FakeOpenAI() as server:
        out = targen(
            box.work, "generate", "rte", "-o", str(run), "--model", "openai/x", "--api-base", server.api_base
        )
        assert server.calls == 0
    assert_clean_error(out.returncode, out.stderr)
    assert "manifest.json is not a JSON object" in out.stderr
    box.unchanged_outside(run)
