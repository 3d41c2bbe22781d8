import copy

import pytest
import yaml

from targen_dspy.errors import SpecError
from targen_dspy.signatures import catalogue_names, load_task, parse_spec
from targen_dspy.signatures.catalogue import load_task as load


def _raw(name: str) -> dict:
    from importlib import resources

    text = (resources.files("targen_dspy.signatures") / "tasks" / f"{name}.yaml").read_text()
    return yaml.safe_load(text)


def test_catalogue_has_rte_and_copa_with_superglue_fields():
    assert {"rte", "copa"} <= set(catalogue_names())
    assert list(load_task("rte").fields) == ["premise", "hypothesis"]
    copa = load_task("copa")
    assert list(copa.fields) == ["premise", "question", "choice1", "choice2"]
    assert copa.label_values == (0, 1)
    assert copa.fields["question"].choices == ("cause", "effect")


def test_copa_writes_plausible_and_implausible_choices_then_places_them(copa):
    assert list(copa.written_fields) == ["question", "plausible_choice", "implausible_choice"]
    place = copa.postprocessor()
    generated = {
        "premise": "p",
        "question": "cause",
        "plausible_choice": "right",
        "implausible_choice": "wrong",
    }
    assert place(generated, 0)["choice1"] == "right"
    assert place(generated, 1) == {
        "premise": "p",
        "question": "cause",
        "choice1": "wrong",
        "choice2": "right",
    }


def test_spec_hash_depends_on_content_only():
    assert load_task("rte").hash == parse_spec(_raw("rte")).hash
    changed = _raw("rte")
    changed["correction"] += " Be strict."
    assert parse_spec(changed).hash != load_task("rte").hash


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("labels"), "labels"),
        (lambda d: d.update(labels=[{"value": "yes", "means": "x"}]), "at least 2"),
        (lambda d: d.update(labels=[{"value": "a", "means": "x"}, {"value": "a", "means": "y"}]), "unique"),
        (lambda d: d.update(fields={"seed": "reserved name"}), "reserved"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["seed"].update(field="nonexistent"), "seed.field"),
        (lambda d: d.update(examples=[{"premise": "p", "hypothesis": "h", "label": "maybe"}]), "maybe"),
        (lambda d: d.update(generate={"premise": "p", "summary": "s"}), "need `postprocess`"),
        (
            lambda d: d["fields"].update(length={"description": "n", "type": "integer", "computed": True}),
            "computed fields ['length'] need `postprocess`",
        ),
        (lambda d: d["fields"].update(hypothesis={"description": "h", "pattern": "[a-z"}), "not a regular"),
        (lambda d: d.update(examples=[{"premise": 1, "hypothesis": "h", "label": "entailment"}]), "premise"),
    ],
)
def test_malformed_spec_is_one_line_error(mutate, message):
    data = copy.deepcopy(_raw("rte"))
    mutate(data)
    with pytest.raises(SpecError) as err:
        parse_spec(data, source="my.yaml")
    text = str(err.value)
    assert message in text and "\n" not in text and text.startswith("my.yaml")


@pytest.mark.parametrize(
    ("task", "mutate", "message"),
    [
        ("wic", lambda d: d["fields"]["sentence1"].update(contains=["$nope"]), "not a seed part"),
        ("wic", lambda d: d["fields"].update(sentence1={"description": "s", "one_of": ["$nope"]}), "$nope"),
        (
            "record",
            lambda d: d["seed"]["parts"].update(person={"description": "p", "type": "texts"}),
            "type text",
        ),
        ("wic", lambda d: d["fields"]["sentence1"].update(pattern="[a-z]+"), "use one of"),
        ("wic", lambda d: d["seed"].update(field="word"), "seed.field is for a plain seed"),
        (
            "wic",
            lambda d: d["seed"]["parts"].update(sense1={"description": "s", "computed": True}),
            "seed part 'sense1' must be text or texts",
        ),
        ("wic", lambda d: d["seed"]["parts"].update(word={"description": "w", "type": "texts"}), "same type"),
        ("wic", lambda d: d["examples"][0].update(start1="23"), "start1"),
        (
            "wsc",
            lambda d: d["fields"].update(span1_text={"description": "s", "contains": ["x"]}),
            "free text",
        ),
        ("record", lambda d: d["generate"]["answer"].update(computed=True), "not the `generate`"),
        ("copa", lambda d: d.update(examples=[{**d["examples"][0], "label": True}]), "got True"),
    ],
)
def test_malformed_structured_spec_is_one_line_error(task, mutate, message):
    data = copy.deepcopy(_raw(task))
    mutate(data)
    with pytest.raises(SpecError) as err:
        parse_spec(data, source="my.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_structured_seed_fields_and_computed_fields(wic):
    assert wic.seed_fields == ["word"]
    assert list(wic.written_fields) == ["sentence1", "sentence2"]
    assert list(wic.checked_fields) == ["word", "sentence1", "sentence2"]  # offsets are not judged
    assert wic.fields["start1"].python_type is int
    seed = wic.seed_text({"sense2": "b", "word": "bank", "sense1": "a"})
    assert seed == '{"word": "bank", "sense1": "a", "sense2": "b"}'  # spec order: equal seeds, equal text
    assert wic.seed_parts(seed) == {"word": "bank", "sense1": "a", "sense2": "b"}
    with pytest.raises(SpecError, match="not a wic seed"):
        wic.seed_parts("bank")


def test_validate_example_is_strict_about_types(wic, copa):
    row = {**wic.examples[0], "idx": 7}  # extra columns are ignored
    wic.validate_example(row)
    for bad in ({"label": 1}, {"start1": 23.0}, {"word": None}):
        with pytest.raises(SpecError):
            wic.validate_example({**row, **bad})
    with pytest.raises(SpecError, match="question"):
        copa.validate_example({**copa.examples[0], "question": "why"})


def test_missing_postprocess_function_fails_at_load():
    data = _raw("copa")
    data["postprocess"] = "targen_dspy.signatures.hooks:does_not_exist"
    with pytest.raises(SpecError, match="the shipped hooks are"):
        parse_spec(data)
    data["postprocess"] = "targen_dspy.no_such_module:function"  # trusted, but not there
    with pytest.raises(SpecError, match="cannot be imported"):
        parse_spec(data, trust_code=True)


def test_spec_file_errors(tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: x\n  description: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load(str(bad_yaml))
    with pytest.raises(SpecError, match="cannot read"):
        load(str(tmp_path / "missing.yaml"))
    with pytest.raises(SpecError, match="unknown task 'nope'"):
        load("nope")
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="YAML mapping"):
        load(str(not_mapping))


def test_user_spec_file_with_bare_string_fields(tmp_path):
    path = tmp_path / "urgency.yaml"
    data = _raw("rte")
    data.update(name="urgency", fields={"ticket": "A support ticket"}, examples=[])
    del data["downstream"]  # rte's names its fields
    data["seed"] = {"description": "A product feature", "field": None}
    path.write_text(yaml.safe_dump(data))
    spec = load(str(path))
    assert spec.fields["ticket"].description == "A support ticket"
    assert list(spec.written_fields) == ["ticket"]


@pytest.mark.parametrize(
    ("task", "downstream", "message"),
    [
        ("rte", {"inputs": ["premise", "claim"]}, "downstream names 'claim', which is not one of the fields"),
        ("rte", {"inputs": []}, "inputs"),
        ("rte", {"inputs": ["premise"], "extra": 1}, "extra"),
        ("rte", {"inputs": ["premise", "premise"]}, "names a field twice"),
        (
            "rte",
            {"inputs": ["premise"], "choices": ["hypothesis"]},
            "the labels must be the choices' indices",
        ),
        ("rte", {"inputs": ["premise"], "condition": "hypothesis"}, "must be a field with `choices`"),
        ("copa", {"inputs": ["premise", "question"]}, "'question' is not a free-text field"),
        ("wic", {"inputs": ["sentence1", "start1"]}, "'start1' is not a free-text field"),
    ],
)
def test_a_downstream_layout_names_fields_of_the_kinds_it_needs(task, downstream, message):
    data = {**_raw(task), "downstream": downstream}
    with pytest.raises(SpecError) as err:
        parse_spec(data, source="my.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_downstream_layout_is_not_hashed():
    """It shapes no prompt: runs and compiled programs stay valid when it is added or changed."""
    data = _raw("rte")
    assert parse_spec({**data, "downstream": {"inputs": ["hypothesis"]}}).hash == load_task("rte").hash
    assert parse_spec({k: v for k, v in data.items() if k != "downstream"}).hash == load_task("rte").hash


def test_every_catalogue_task_declares_its_downstream_layout():
    assert all(load_task(name).downstream is not None for name in catalogue_names())
