import os
import socket
import subprocess
import sys

import pytest

from targen_dspy.backends import build_lm
from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.backends.local import bounded_schema
from targen_dspy.errors import ModelError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unknown_provider():
    with pytest.raises(ModelError, match="unknown model 'nosuchprovider/x'"):
        build_lm("nosuchprovider/x")


def test_missing_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelError, match="needs OPENAI_API_KEY"):
        build_lm("openai/gpt-4o-mini")


def test_key_from_environment_is_enough(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert build_lm("anthropic/claude-3-5-haiku-latest").model == "anthropic/claude-3-5-haiku-latest"


def test_a_model_left_to_litellm_is_still_checked(monkeypatch):
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with pytest.raises(ModelError, match="needs COHERE_API_KEY"):
        build_lm("cohere/command-r")  # not one DSPy's own engine calls: litellm checks it


def test_a_run_on_dspys_own_engine_never_imports_litellm(tmp_path):
    """litellm takes seconds to import; a run whose calls DSPy's engine makes must not pay for it."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        "DSPY_CACHEDIR": str(tmp_path),
    }
    with FakeOpenAI() as server:
        args = ["generate", "rte", "-n", "2", "-q", "-o", str(tmp_path / "run"), "--model", "openai/served"]
        out = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "targen_dspy.cli",
                *args,
                "--api-base",
                server.api_base,
            ],
            capture_output=True,
            text=True,
            env=env,
        )
    assert out.returncode == 0 and "2 instances" in out.stdout, out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "dspy" in imported and "litellm" not in imported and "numpy" not in imported
    assert "ray" not in imported  # imported for --ray only


def test_unreachable_server():
    with pytest.raises(ModelError, match="cannot reach http://127.0.0.1:"):
        build_lm("openai/served", api_base=f"http://127.0.0.1:{free_port()}/v1")


def test_bounded_schema_limits_free_strings_and_lists_only():
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "string"}},
            "label": {"type": "string", "enum": ["a", "b"]},
        },
    }
    bounded = bounded_schema(schema)
    assert bounded["properties"]["items"]["maxItems"] > 0 and bounded["properties"]["items"]["minItems"] == 1
    assert bounded["properties"]["items"]["items"]["minLength"] == 1
    assert "maxLength" not in bounded["properties"]["label"]
    assert "maxItems" not in schema["properties"]["items"]  # the input is not modified


def test_litellm_gets_its_bundled_price_table_without_a_variable_left_set():
    """Importing the package sets nothing; litellm is imported with its own price table (no fetch from
    the internet), and the variable that says so is gone again afterwards (the CLI sets it for the length
    of a command: DSPy's model metadata reads it during a run)."""
    script = (
        "import os, targen_dspy\n"
        "assert 'LITELLM_LOCAL_MODEL_COST_MAP' not in os.environ\n"
        "from targen_dspy.backends.remote import import_litellm\n"
        "import_litellm()\n"
        "from litellm.litellm_core_utils.get_model_cost_map import _cost_map_source_info as source\n"
        "print(source.source, source.is_env_forced, os.environ.get('LITELLM_LOCAL_MODEL_COST_MAP'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["local", "True", "None"]
