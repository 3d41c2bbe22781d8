import json

import dspy
import pytest

from targen_dspy.cli import main
from targen_dspy.engine.limits import RetryPolicy
from targen_dspy.engine.rounds import RoundSettings, format_example, run_self_reference
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.runner import RunSettings
from targen_dspy.errors import RunError
from targen_dspy.program.self_reference import SelfReferenceGenerator
from tests.conftest import json_lm

EXAMPLE = {"premise": "The museum opened in 1994.", "hypothesis": "The museum exists.", "label": "entailment"}


def ex(i, label="entailment"):
    return {"premise": f"Premise number {i}.", "hypothesis": f"Hypothesis number {i}.", "label": label}


def generate(spec, path, lm, **settings):
    program = SelfReferenceGenerator(spec, EXAMPLE)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        return run_self_reference(
            program,
            RunDirectory(path),
            RoundSettings(**settings),
            {"generator": "dummy"},
            calls=RunSettings(n=settings["n"], retry=RetryPolicy(max_retries=0)),
            progress=False,
        )


def lines(path):
    return [json.loads(line) for line in (path / "data.jsonl").read_text().splitlines()]


def test_rounds_fill_n_distinct_examples_referring_to_earlier_ones(rte, tmp_path):
    lm = json_lm(
        [
            {"examples": [ex(0), ex(1), ex(2, "not_entailment")]},
            {"examples": [ex(1), ex(3), ex(4, "not_entailment")]},  # ex(1) again: dropped
            {"examples": [ex(5), ex(6)]},
        ]
    )
    stats = generate(rte, tmp_path, lm, n=6, batch_size=3, references=2)
    records = lines(tmp_path)
    assert [r["premise"] for r in records] == [f"Premise number {i}." for i in (0, 1, 2, 3, 4, 5)]
    assert stats["instances"] == 6 and stats["rounds"] == 3 and stats["stopped"] is None
    assert records[0]["references"] == ["format-example"]
    round0 = {r["id"] for r in records if r["round"] == 0}
    assert all(
        set(r["references"]) <= round0 and len(r["references"]) == 2 for r in records if r["round"] == 1
    )


def test_rounds_with_nothing_new_stop_clearly(rte, tmp_path):
    copies = {"examples": [ex(0), EXAMPLE]}  # a copy of the format example is not new either
    lm = json_lm([{"examples": [ex(0), ex(1)]}, copies, copies])
    stats = generate(rte, tmp_path, lm, n=5, batch_size=2, patience=2)
    assert stats["instances"] == 2 and stats["stopped"] == "2 rounds in a row yielded nothing new"
    assert stats["rounds"] == 3


def test_examples_outside_the_label_set_are_asked_again_then_rejected(rte, tmp_path):
    lm = json_lm([{"examples": [ex(0, label="maybe")]}] * 3)  # every attempt of the call
    stats = generate(rte, tmp_path, lm, n=2, batch_size=1, patience=1)
    assert stats["instances"] == 0 and stats["failed_calls"] == 1 and stats["retries"] == {"examples": 2}
    assert "maybe" in json.loads((tmp_path / "failed.jsonl").read_text().splitlines()[0])["raw"]


def test_an_unparseable_answer_is_asked_again(rte, tmp_path):
    lm = json_lm([{"examples": [ex(0, label="maybe")]}, {"examples": [ex(0), ex(1)]}])
    stats = generate(rte, tmp_path, lm, n=2, batch_size=2)
    assert stats["instances"] == 2 and stats["failed_calls"] == 0 and stats["retries"] == {"examples": 1}


def test_resume_continues_from_the_last_round(rte, tmp_path):
    generate(rte, tmp_path, json_lm([{"examples": [ex(0), ex(1)]}]), n=2, batch_size=2)
    stats = generate(rte, tmp_path, json_lm([{"examples": [ex(2), ex(3)]}]), n=4, batch_size=2)
    records = lines(tmp_path)
    assert len(records) == 4 and [r["round"] for r in records] == [0, 0, 1, 1] and stats["rounds"] == 2


def test_round_cap(rte, tmp_path):
    lm = json_lm([{"examples": [ex(i)]} for i in range(5)])
    stats = generate(rte, tmp_path, lm, n=5, batch_size=1, max_rounds=2)
    assert stats["instances"] == 2 and stats["stopped"] == "reached the cap of 2 rounds"


def test_format_example_sources(rte, copa, tmp_path):
    assert format_example(rte, None) == rte.examples[0]
    # a spec's example may carry the fields the model writes too (COPA): the format shows the task's
    assert set(format_example(copa, None)) == {*copa.fields, "label"} < set(copa.examples[0])
    path = tmp_path / "example.json"
    path.write_text(json.dumps(EXAMPLE))
    assert format_example(rte, path) == EXAMPLE
    path.write_text("[1, 2]")
    with pytest.raises(RunError, match="one JSON object"):
        format_example(rte, path)
    with pytest.raises(RunError, match="cannot read"):
        format_example(rte, tmp_path / "missing.json")


@pytest.mark.slow
def test_self_reference_on_the_embedded_model_writes_distinct_examples_over_rounds(rte, tmp_path):
    """`targen generate rte --method self-reference -n 12`: the embedded model, which copies what it is
    shown, still fills the run with distinct examples over several rounds of 5 (its presence penalty
    covers the prompt). n = 12, not more: this is one of the suite's slowest tests."""
    n = 12
    command = ["generate", "rte", "--method", "self-reference", "-n", str(n), "-o", str(tmp_path), "-q"]
    assert main(command) == 0
    records = lines(tmp_path)
    assert len(records) == n
    for record in records:
        rte.validate_example({k: record[k] for k in ("premise", "hypothesis", "label")})
    texts = {(r["premise"].strip().lower(), r["hypothesis"].strip().lower()) for r in records}
    assert len(texts) == n and (EXAMPLE["premise"].lower(), EXAMPLE["hypothesis"].lower()) not in texts
    assert json.loads((tmp_path / "stats.json").read_text())["instances"] == n
