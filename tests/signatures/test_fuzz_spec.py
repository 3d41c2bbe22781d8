"""Fuzzing spec YAML (`targen validate FILE`): every malformed spec ends as the CLI's clean error, and a
mutated spec that is still valid validates; nothing is written anywhere."""

from __future__ import annotations

import copy
from importlib import resources

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from targen_dspy.inputs import MAX_NODES
from tests.fuzzing import Sandbox, assert_clean, assert_clean_error, cli, fuzz, junk, short_id, yaml_text

TASKS = ["rte", "copa", "wic", "record", "math_word", "ticket_urgency"]


def catalogue_spec(name: str) -> dict:
    text = (resources.files("targen_dspy.signatures") / "tasks" / f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


SPECS = {name: catalogue_spec(name) for name in TASKS}


@st.composite
def mutated_specs(draw) -> dict:
    """A catalogue spec with one value somewhere replaced by junk, deleted, or a key added. `postprocess`
    is never touched: which code a spec may import is the hook policy's business, and a fuzzer must
    not import modules named by random text."""
    spec = copy.deepcopy(SPECS[draw(st.sampled_from(TASKS))])
    node = spec
    while True:
        keys = [k for k in (node if isinstance(node, dict) else range(len(node))) if k != "postprocess"]
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[key] = draw(junk)
        elif action == "delete":
            del node[key]
        elif isinstance(node, dict):
            new = draw(st.text(max_size=20).filter(lambda k: k != "postprocess"))
            node[new] = draw(junk)
        else:
            node.append(draw(junk))
        break
    return spec


def validate(box: Sandbox, content: str | bytes) -> tuple[int, str]:
    path = box.root / "spec.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    box.before = {**box.before, "spec.yaml": path.read_bytes()}
    return cli("validate", str(path))


@fuzz(80)
@given(spec=mutated_specs())
def test_mutated_catalogue_specs_validate_or_fail_cleanly(sandbox, spec):
    code, err = validate(sandbox, yaml_text(spec))
    assert_clean(code, err)
    sandbox.unchanged_outside()


@fuzz(60)
@given(value=junk)
def test_any_yaml_value_as_a_spec_fails_cleanly(sandbox, value):
    code, err = validate(sandbox, yaml_text(value))
    assert_clean_error(code, err)
    sandbox.unchanged_outside()


@fuzz(60)
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_as_a_spec_fail_cleanly(sandbox, data):
    code, err = validate(sandbox, data)
    assert_clean_error(code, err)
    sandbox.unchanged_outside()


BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)),
        "name: bomb",
        "description: *i",
        "fields: {premise: x}",
        "examples: [{premise: x, label: a, idx: *i}]",
    ]
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (BILLION_LAUGHS, "too large once its aliases are expanded"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("a: " + "[" * 100 + "]" * 100, "nested more than 64"),
        (b"name: rte\ndescription: caf\xe9\n", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("description: " + "x" * 1_100_000, "larger than 1 MB"),
        ("", "a task spec is a YAML mapping"),
        ("null", "a task spec is a YAML mapping"),
        ("- name: rte\n", "a task spec is a YAML mapping"),
        ("name: [unclosed", "is not valid YAML"),
        ("!!python/object:os.system {}", "is not valid YAML"),
        ("? [a, b]\n: c\n", "is not valid YAML"),
        (yaml_text({**SPECS["rte"], "fields": {"premise": "p", "a\nb": 5}}), "fields.'a\\nb'"),
    ],
    ids=short_id,
)
def test_hostile_spec_files(sandbox, content, message):
    code, err = validate(sandbox, content)
    assert_clean_error(code, err)
    assert message in err
    sandbox.unchanged_outside()


def test_a_huge_valid_string_is_reported_in_one_short_line(sandbox):
    spec = copy.deepcopy(SPECS["rte"])
    spec["labels"][0]["value"] = "x\n" * 20_000  # a 40 KB label value with line breaks
    spec["labels"][1]["value"] = spec["labels"][0]["value"]
    code, err = validate(sandbox, yaml_text(spec))
    assert_clean_error(code, err)
    assert "unique" in err and len(err) < 600


def test_a_directory_given_as_a_spec(sandbox):
    folder = sandbox.work / "task.yaml"
    folder.mkdir()
    code, err = cli("validate", str(folder))
    assert_clean_error(code, err)
    assert str(folder) in err


def test_the_alias_bound_is_far_above_any_real_spec():
    from targen_dspy.errors import SpecError
    from targen_dspy.inputs import check_bounded

    for spec in SPECS.values():
        check_bounded(spec, "spec", SpecError)
    with pytest.raises(SpecError, match="too large"):
        check_bounded([[0] * 1000] * (MAX_NODES // 1000 + 1), "spec", SpecError)


def test_the_generate_command_rejects_a_malformed_spec_before_anything_is_written(sandbox):
    path = sandbox.root / "task.yaml"
    path.write_text(BILLION_LAUGHS)
    sandbox.before = {**sandbox.before, "task.yaml": path.read_bytes()}
    code, err = cli("generate", str(path), "-o", str(sandbox.work / "run"), "--model", "openai/x")
    assert_clean_error(code, err)
    assert not (sandbox.work / "run").exists()
    sandbox.unchanged_outside()
