"""No key from the environment reaches a file that `targen generate`, `compile`, `export` or `analyze`
writes, nor their stdout/stderr: run as a user runs them (subprocesses, `-v`), against a real loopback
server that echoes the key it was sent in its error messages, as some proxies do."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
from argparse import Namespace
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI

# The generator's key, and the corrector's (hosted_vllm/ is OpenAI-compatible and sent HOSTED_VLLM_API_KEY).
KEY = f"sk-targen-SENTINEL-{secrets.token_hex(16)}"
CORRECTOR_KEY = f"sk-corrector-SENTINEL-{secrets.token_hex(16)}"
# What would identify a key: its start (litellm and OpenAI mask keys as `sk-tar****`, so 12 characters
# are more than any mask shows) and its random tail. Masks show the first 4 characters only.
FRAGMENTS = [fragment for key in (KEY, CORRECTOR_KEY) for fragment in (key[:12], key[-12:])]


class EchoingServer(FakeOpenAI):
    """FakeOpenAI whose errors quote the Authorization header it got. `reject_all`: every call is a 401;
    otherwise the first two distinct prompts that write an instance, and the first two that correct a
    label, fail with a 429, every retry alike (Retry-After 0, so the run gives up fast and fills
    failed.jsonl); the rest are answered. Chosen by arrival, not by a hash of the prompt: prompts depend
    on which answers came back first, and a hash could fail every slot of a run (it did, under load)."""

    def __init__(self, reject_all: bool = False):
        super().__init__()
        self.reject_all = reject_all
        self.keys_seen: set[str] = set()
        self.failing: dict[str, set[str]] = {"`hypothesis`": set(), "`corrected_label`": set()}

    def _handler(self):
        server = self

        class Handler(super()._handler()):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                auth = self.headers.get("Authorization", "")
                with server._lock:
                    server.keys_seen.add(auth.removeprefix("Bearer "))
                prompt = str(json.loads(body)["messages"][-1].get("content", ""))
                asked = prompt.rsplit("Respond with a JSON object", 1)[-1]
                with server._lock:
                    failing = [f for field, f in server.failing.items() if field in asked]
                    for prompts in failing:
                        if len(prompts) < 2:
                            prompts.add(prompt)
                    flaky = any(prompt in prompts for prompts in failing)
                if server.reject_all or flaky:
                    status = 401 if server.reject_all else 429
                    error = {"message": f"Incorrect API key provided: {auth}", "type": "invalid_request"}
                    self._send(status, {"error": error}, {"Retry-After": "0"})
                    return
                self.rfile = io.BytesIO(body)  # the fake's own handler reads the request again
                super().do_POST()

        return Handler


@dataclass
class Runs:
    out: dict[str, subprocess.CompletedProcess]  # command -> its finished process
    root: Path  # everything the commands wrote: runs, program.json, exports, reports, caches
    server: EchoingServer  # the generate run's (writer and corrector)
    compiling: EchoingServer  # compile's own: each run gets its two failing prompts of each kind
    elsewhere: FakeOpenAI  # the api_base a tampered program.json names


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return {
        **env,
        "OPENAI_API_KEY": KEY,
        "HOSTED_VLLM_API_KEY": CORRECTOR_KEY,
        "DSPY_CACHEDIR": str(root / "dspy-cache"),  # written by generate and compile: scanned too
        "HF_DATASETS_CACHE": str(root / "hf-cache"),  # written by export
    }


def _start(root: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "targen_dspy.cli", "-v", *args]
    pipe = subprocess.PIPE
    return subprocess.Popen(command, env=_env(root), stdout=pipe, stderr=pipe, text=True)


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=180)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _gold(path: Path) -> Path:
    rows = [
        ("The bridge, opened in 1932, links the two halves of the city.", "The bridge opened in 1932."),
        ("Maria Lopez won the regional chess title in Valencia last spring.", "Maria Lopez plays chess."),
        ("The factory in Turin employs 4,000 workers and makes engines.", "The factory makes engines."),
        ("A storm closed the port of Hamburg for two days in March.", "The port was closed by a storm."),
        ("The museum in Lyon opened in 1994.", "The museum was founded by a painter."),
        ("The novel sold a million copies in its first year.", "The novel was made into a film."),
        ("The senator from Ohio voted against the bill on Tuesday.", "The senator is a Democrat."),
        ("The team scored three goals in the second half.", "The team won the league."),
    ]
    labels = ["entailment"] * 4 + ["not_entailment"] * 4
    lines = [{"premise": p, "hypothesis": h, "label": y} for (p, h), y in zip(rows, labels, strict=True)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _program_naming_another_server(path: Path, api_base: str) -> Path:
    """A program.json as `targen compile` writes it, then edited to name a server the user never chose."""
    from targen_dspy.optimizers import save_compiled
    from targen_dspy.program import TarGEN
    from targen_dspy.signatures import load_task

    save_compiled(TarGEN(load_task("rte")), path, {"models": {}, "optimizer": {}, "scores": {}})
    state = json.loads(path.read_text())
    for value in state.values():
        if isinstance(value, dict) and "signature" in value:
            value["lm"] = {"model": "openai/writer", "api_base": api_base}
    path.write_text(json.dumps(state))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """compile; generate with a program.json naming another server and a corrector with a key of its own,
    then export and analyze that run; and a generate whose key the server rejects. They run side by side
    where they can: each command spends seconds importing litellm or torch."""
    root = tmp_path_factory.mktemp("secrets")
    with (
        EchoingServer() as server,
        EchoingServer() as compiling,
        EchoingServer(reject_all=True) as rejecting,
        FakeOpenAI() as elsewhere,
    ):
        compile_args = ["compile", "rte", "--valset", str(_gold(root / "gold.jsonl"))]
        compile_args += ["--model", "openai/writer", "--api-base", compiling.api_base]
        compile_args += ["-o", str(root / "program.json"), "--max-demos", "1", "--generation-slots", "2"]
        program = _program_naming_another_server(root / "handed-over.json", elsewhere.api_base)
        generate_args = ["generate", "rte", "-n", "8", "-o", str(root / "run"), "--program", str(program)]
        generate_args += ["--model", "openai/writer", "--api-base", server.api_base]
        generate_args += ["--corrector-model", "hosted_vllm/judge", "--corrector-api-base", server.api_base]
        rejected_args = ["generate", "rte", "-n", "2", "-o", str(root / "rejected")]
        rejected_args += ["--model", "openai/writer", "--api-base", rejecting.api_base]
        started = {
            "compile": _start(root, *compile_args, "-q"),
            "generate": _start(root, *generate_args, "-q"),
            "rejected": _start(root, *rejected_args, "-q"),
        }
        out = {"generate": _finish(started.pop("generate"))}
        analysis = ["--task", "rte", "--folds", "2", "-o", str(root / "analysis"), "-q"]
        started["analyze"] = _start(root, "analyze", str(root / "run" / "data.jsonl"), *analysis)
        export = ["--to", "hf", "-o", str(root / "export")]
        started["export"] = _start(root, "export", str(root / "run"), *export)
        out |= {command: _finish(process) for command, process in started.items()}
        yield Runs(out, root, server, compiling, elsewhere)


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [fragment for fragment in FRAGMENTS if fragment.encode() in data]


def _assert_no_key(runs: Runs, command: str, paths: list[Path]) -> None:
    process = runs.out[command]
    assert not _leaks(process.stdout) and not _leaks(process.stderr), process.stderr[-2000:]
    files = [f for path in paths for f in ([path] if path.is_file() else path.rglob("*")) if f.is_file()]
    assert files, f"{command} wrote nothing under {paths}"
    leaked = {str(f.relative_to(runs.root)): _leaks(f.read_bytes()) for f in files}
    assert not {name: found for name, found in leaked.items() if found}


def test_compile_writes_no_key(runs: Runs) -> None:
    process = runs.out["compile"]
    assert process.returncode == 0, process.stderr[-2000:]
    # The key was sent and echoed: DSPy's teleprompter and Evaluate log the failing calls' errors.
    assert KEY in runs.compiling.keys_seen and "Incorrect API key provided: Bearer sk-t****" in process.stderr
    _assert_no_key(runs, "compile", [runs.root / "program.json", runs.root / "dspy-cache"])
    assert "api_key" not in runs.root.joinpath("program.json").read_text()


def test_generate_writes_no_key_in_failures_and_verbose_logs(runs: Runs) -> None:
    process = runs.out["generate"]
    assert process.returncode == 0, process.stderr[-2000:]
    assert "retrying" in process.stderr  # -v logs the retries of the failing calls
    assert {KEY, CORRECTOR_KEY} <= runs.server.keys_seen
    failed = [json.loads(line) for line in (runs.root / "run" / "failed.jsonl").read_text().splitlines()]
    masked = {f"Incorrect API key provided: Bearer {key[:4]}****" for key in (KEY, CORRECTOR_KEY)}
    assert failed and all(any(text in r["error"] for text in masked) for r in failed)
    _assert_no_key(runs, "generate", [runs.root / "run", runs.root / "dspy-cache"])


def test_a_program_file_cannot_send_the_key_elsewhere(runs: Runs) -> None:
    assert runs.out["generate"].returncode == 0
    assert runs.elsewhere.calls == 0  # DSPy drops api_base from saved LM state; targen loads no LM at all


def test_a_rejected_key_echoed_by_the_server_is_masked(runs: Runs) -> None:
    process = runs.out["rejected"]
    assert process.returncode == 2
    assert "Incorrect API key provided: Bearer sk-t****" in process.stderr
    _assert_no_key(runs, "rejected", [runs.root / "rejected"])


def test_export_writes_no_key(runs: Runs) -> None:
    assert runs.out["export"].returncode == 0, runs.out["export"].stderr[-2000:]
    _assert_no_key(runs, "export", [runs.root / "export", runs.root / "hf-cache"])


def test_analyze_writes_no_key(runs: Runs) -> None:
    assert runs.out["analyze"].returncode == 0, runs.out["analyze"].stderr[-2000:]
    assert (runs.root / "analysis" / "report.md").exists()
    _assert_no_key(runs, "analyze", [runs.root / "analysis"])


@pytest.mark.parametrize(
    "text",
    [KEY, f"Bearer {KEY}", f'{{"key": "{KEY}"}}', f"key {KEY[:14]}... rejected", f"({KEY})"],
)
def test_redact_masks_whole_and_truncated_keys(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from targen_dspy.errors import redact

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert not _leaks(redact(text)) and "sk-t****" in redact(text)


def test_a_corrector_of_another_provider_keeps_its_own_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """--api-base serves --model; a corrector of another provider would be sent its own provider's key
    there (ANTHROPIC_API_KEY to a local server), so it keeps its provider's endpoint."""
    from targen_dspy.commands.models import use_models
    from targen_dspy.program import TarGEN
    from targen_dspy.signatures import load_task

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CORRECTOR_KEY)
    with FakeOpenAI() as server:
        settings: dict[str, Any] = {"api_base": server.api_base, "corrector_api_base": None}
        settings |= {"model": "openai/writer", "temperature": 0.7, "timeout": 5.0}
        cases = [("anthropic/claude-3-5-haiku-latest", None), ("openai/judge", server.api_base)]
        for corrector, api_base in cases:
            program = TarGEN(load_task("rte"))
            use_models(program, Namespace(corrector_model=corrector, **settings))
            assert program.correct.check.lm.kwargs.get("api_base") == api_base
            assert program.generate.write.lm.kwargs["api_base"] == server.api_base


def test_a_saved_model_loads_as_a_plain_dspy_lm() -> None:
    import dspy

    from targen_dspy.backends.remote import KeySafeLM

    state = KeySafeLM("openai/writer", api_base="http://127.0.0.1:1/v1", api_key=KEY).dump_state()
    assert KEY not in json.dumps(state)
    assert type(dspy.BaseLM.load_state(state)) is dspy.LM  # no custom class to trust
