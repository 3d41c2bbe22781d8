"""A postprocess hook is someone's code: its result is checked against the spec's fields, and a hook that
fails fails its slot (into failed.jsonl, with the reason), not the run."""

import json
from typing import Any

import dspy
import pytest
import yaml

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.cli import main
from targen_dspy.program import InstanceGenerator
from targen_dspy.signatures import load_task, parse_spec
from targen_dspy.signatures.spec import HookFailed
from tests.conftest import json_lm


def raises(generated: dict[str, Any], label: Any) -> dict[str, Any]:
    raise KeyError("boom")


def not_a_mapping(generated: dict[str, Any], label: Any) -> Any:
    return [generated["premise"], generated["hypothesis"]]


def wrong_type(generated: dict[str, Any], label: Any) -> dict[str, Any]:
    return {**generated, "hypothesis": 3}


def missing_field(generated: dict[str, Any], label: Any) -> dict[str, Any]:
    return {"premise": generated["premise"]}


def shouting(generated: dict[str, Any], label: Any) -> dict[str, Any]:
    return {name: value.upper() for name, value in generated.items()}


def rte_with_hook(name: str) -> dict[str, Any]:
    return {**load_task("rte").model_dump(mode="json"), "postprocess": f"{__name__}:{name}"}


@pytest.mark.parametrize(
    ("hook", "reason"),
    [
        ("raises", "raised KeyError: 'boom'"),
        ("not_a_mapping", "a mapping of the fields ['premise', 'hypothesis'] was expected, got list"),
        ("wrong_type", "hypothesis: Input should be a valid string, got 3"),
        ("missing_field", "hypothesis: Field required"),
    ],
)
def test_a_failing_hook_raises_hook_failed_with_the_reason(hook, reason):
    spec = parse_spec(rte_with_hook(hook), trust_code=True)
    with (
        dspy.context(lm=json_lm([{"hypothesis": "The club won."}]), adapter=dspy.JSONAdapter()),
        pytest.raises(HookFailed, match="postprocess") as failure,
    ):
        InstanceGenerator(spec)(setting="sport", seed="The club won the cup.", label="entailment")
    assert reason in str(failure.value)


def test_a_good_hook_gives_the_fields_in_spec_order():
    spec = parse_spec(rte_with_hook("shouting"), trust_code=True)
    with dspy.context(lm=json_lm([{"hypothesis": "The club won."}]), adapter=dspy.JSONAdapter()):
        pred = InstanceGenerator(spec)(setting="sport", seed="The club won the cup.", label="entailment")
    assert pred.fields == {"premise": "THE CLUB WON THE CUP.", "hypothesis": "THE CLUB WON."}


def test_a_failing_hook_fails_each_slot_and_the_run_goes_on(tmp_path, capsys):
    spec = tmp_path / "hooked.yaml"
    spec.write_text(yaml.safe_dump(rte_with_hook("raises")))
    run = tmp_path / "run"
    with FakeOpenAI() as server:
        args = ["generate", str(spec), "-n", "4", "-o", str(run), "-q", "--model", "openai/x"]
        code = main([*args, "--api-base", server.api_base, "--trust-spec-code"])
    assert code == 0
    failed = [json.loads(line) for line in (run / "failed.jsonl").read_text().splitlines()]
    assert len(failed) == 4 and all("raised KeyError: 'boom'" in record["error"] for record in failed)
    assert not (run / "data.jsonl").exists() or not (run / "data.jsonl").read_text()
    assert "0 instances" in capsys.readouterr().out
