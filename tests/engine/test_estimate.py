"""`targen estimate` against what a run on the fake metered: the same calls, tokens within 15 %."""

import subprocess
import sys

import dspy
import pytest

from targen_dspy.backends.fake_batches import BatchPlan
from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.backends.json_adapter import SignatureCachedJSONAdapter
from targen_dspy.engine.estimate import estimate, table
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions
from tests.engine.test_batch import MODEL, generate


@pytest.mark.parametrize("batch", [False, True])
def test_estimate_matches_the_metered_run(rte, tmp_path, monkeypatch, batch):
    n = 12
    with dspy.context(adapter=SignatureCachedJSONAdapter()):
        expected = estimate(TarGEN(rte), n, 2, MODEL, batch)
    with FakeOpenAI(batches=BatchPlan()) as server:
        metered = generate(rte, server, tmp_path / "run", n, batch=batch, monkeypatch=monkeypatch)
    spent, total = metered["this_invocation"], expected.total
    assert [step.step for step in expected.steps] == ["contexts", "seeds", "instances", "self-correction"]
    assert [step.calls for step in expected.steps][2:] == [n, n]
    assert total.calls == spent["calls"]
    assert total.input_tokens == pytest.approx(spent["prompt_tokens"], rel=0.15)
    assert total.input_tokens + total.output_tokens == pytest.approx(
        spent["prompt_tokens"] + spent["completion_tokens"], rel=0.15
    )
    assert total.cost_usd == pytest.approx(spent["cost_usd"], rel=0.15)  # batch prices for a batch run


def test_optional_steps_and_an_unknown_model(rte):
    program = TarGEN(rte, GenerationOptions(harder=True, correction="off"))
    with dspy.context(adapter=SignatureCachedJSONAdapter()):
        result = estimate(program, 8, 4, "openai/a-model-of-my-own", batch=True)
    assert [step.step for step in result.steps] == ["contexts", "seeds", "instances", "harder"]
    assert not result.priced and result.total.cost_usd is None
    lines = list(table(result))
    unknown = "openai/a-model-of-my-own: not in the price table (litellm's model cost map): tokens only"
    assert lines[-1] == unknown
    assert all(step.input_tokens > 0 and step.output_tokens > 0 for step in result.steps)


def test_estimate_command(tmp_path):
    def targen(*args):
        command = [sys.executable, "-m", "targen_dspy.cli", "estimate", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    out = targen("rte", "-n", "100", "--model", "openai/gpt-4o-mini", "--batch")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()[2:]}
    assert rows["instances"][0] == rows["self-correction"][0] == "100"
    assert float(rows["total"][-1]) > 0 and "batch prices" in out.stdout
    out = targen("rte", "-n", "0", "--model", "openai/gpt-4o-mini")
    assert out.returncode == 2 and out.stderr.strip() == "targen: -n must be at least 1, got 0"
