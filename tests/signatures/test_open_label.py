"""Open labels (`label_type`): a label the model writes, such as a math answer, instead of one chosen
first from a closed set; the math_word task of the catalogue has one."""

import copy
from importlib import resources

import pytest
import yaml

from targen_dspy.cli import main
from targen_dspy.errors import SpecError
from targen_dspy.signatures import load_task, parse_spec, step_signatures
from targen_dspy.signatures.spec import label_text


def _raw(name: str) -> dict:
    return yaml.safe_load((resources.files("targen_dspy.signatures") / "tasks" / f"{name}.yaml").read_text())


def test_math_word_has_an_open_integer_label():
    spec = load_task("math_word")
    assert spec.open_label and spec.label_values == () and spec.label_annotation is int
    assert (list(spec.fields), spec.label_field, spec.rationale_field) == (
        ["question", "solution"],
        "answer",
        "solution",
    )
    assert list(spec.correction_fields) == ["question"]  # the rationale is not shown to the corrector
    for example in spec.examples:
        spec.validate_example(example)
    with pytest.raises(SpecError, match="answer"):
        spec.validate_example({**spec.examples[0], "answer": "27"})
    assert not load_task("rte").open_label and load_task("rte").rationale_field is None


def test_open_label_signatures_write_the_label_last_and_derive_it_again():
    steps = step_signatures(load_task("math_word"))
    instance, correction = steps["instance"], steps["correction"]
    assert list(instance.input_fields) == ["task_description", "setting", "seed", "label_description"]
    assert list(instance.output_fields) == ["question", "solution", "answer"]
    assert instance.output_fields["answer"].annotation is int
    assert "target_label" not in instance.input_fields and "label_meanings" not in correction.input_fields
    assert list(correction.input_fields)[-2:] == ["question", "proposed_label"]
    assert correction.output_fields["corrected_label"].annotation is int
    assert "working out its label yourself" in correction.instructions


def test_a_number_label_takes_integers_and_floats():
    data = copy.deepcopy(_raw("math_word"))
    data.update(label_type="number", examples=[{**data["examples"][0], "answer": 27.5}])
    spec = parse_spec(data)
    spec.validate_example({**data["examples"][0], "answer": 27})
    with pytest.raises(SpecError):
        spec.validate_example({**data["examples"][0], "answer": True})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d.update(labels=[{"value": 1, "means": "x"}, {"value": 2, "means": "y"}]),
            "no `labels` list",
        ),
        (lambda d: d.pop("label_description"), "needs label_description"),
        (lambda d: d.update(label_type="float"), "label_type"),
        (lambda d: d.update(rationale_field="nowhere"), "rationale_field 'nowhere'"),
        (lambda d: d.pop("label_type"), "at least 2"),
    ],
)
def test_malformed_open_label_is_one_line_error(mutate, message):
    data = copy.deepcopy(_raw("math_word"))
    mutate(data)
    with pytest.raises(SpecError, match=message) as err:
        parse_spec(data, source="my.yaml")
    assert "\n" not in str(err.value)


def test_closed_label_keys_are_refused_on_a_closed_spec():
    data = copy.deepcopy(_raw("rte"))
    data["label_description"] = "An answer."
    with pytest.raises(SpecError, match="are for an open label"):
        parse_spec(data)


def test_existing_specs_keep_their_hash():
    """Keys added for open labels are hashed only when set: run directories and compiled programs made
    before them still match."""
    assert load_task("wic").hash == "c9409a573f35f8bd"
    # rte's fields have word bounds now (issue 17); unset, they are not hashed either
    rte = load_task("rte").model_dump(mode="json")
    for field in rte["fields"].values():
        del field["min_words"], field["max_words"]
    assert parse_spec(rte).hash == "dab2aa8d3475d705"


def test_tasks_and_validate_show_the_open_label(capsys):
    assert main(["tasks"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("math_word "))
    assert line.split(None, 1)[1] == "question, solution -> open label answer (integer, written by the model)"
    assert main(["validate", "math_word"]) == 0
    out = capsys.readouterr().out
    assert "math_word: valid, 2 fields -> open label answer (integer, written by the model)" in out
    assert "out answer: int - The final answer" in out and "out corrected_label: int" in out
    assert label_text(27) == "27"


def test_compile_refuses_an_open_label(tmp_path, capsys):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("")
    assert main(["compile", "math_word", "--valset", str(gold), "-o", str(tmp_path / "p.json")]) == 2
    assert "open label" in capsys.readouterr().err
