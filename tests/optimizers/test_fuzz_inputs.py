"""Fuzzing the files `targen compile` and `targen generate --program` read: a malformed --valset or
program.json ends as the CLI's clean error before any model is called, and nothing is written."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from targen_dspy.errors import SpecError
from targen_dspy.optimizers.program_file import load_compiled, save_compiled
from targen_dspy.program import TarGEN
from targen_dspy.signatures import load_task
from tests.fuzzing import Sandbox, assert_clean_error, cli, fuzz, junk, scalars, short_id, write_jsonl

RTE = load_task("rte")


def gold_row(i: int) -> dict:
    label = "entailment" if i % 2 else "not_entailment"
    return {"premise": f"Premise {i}.", "hypothesis": f"Hypothesis {i}.", "label": label, "idx": i}


def not_a(kind: type | tuple[type, ...]):
    return junk.filter(lambda value: not isinstance(value, kind))


# One bad gold line: not an object, a row missing a key, or a row with a field or label of a wrong type.
bad_rows = st.one_of(
    not_a(dict),
    st.builds(
        lambda row, key: {k: v for k, v in row.items() if k != key},
        st.integers(0, 9).map(gold_row),
        st.sampled_from(["premise", "hypothesis", "label"]),
    ),
    st.builds(
        lambda row, key, value: {**row, key: value},
        st.integers(0, 9).map(gold_row),
        st.sampled_from(["premise", "hypothesis"]),
        not_a(str),
    ),
    st.builds(
        lambda row, value: {**row, "label": value},
        st.integers(0, 9).map(gold_row),
        scalars.filter(lambda v: v not in ("entailment", "not_entailment"))
        | st.sampled_from([True, 1, ["x"]]),
    ),
)


def compile_args(box: Sandbox, valset, server) -> list[str]:
    return [
        "compile",
        "rte",
        "--valset",
        str(valset),
        "-o",
        str(box.work / "program.json"),
        "-q",
        "--model",
        "openai/x",
        "--api-base",
        server.api_base,
    ]


@fuzz(50)
@given(good=st.integers(0, 6), bad=bad_rows, at=st.integers(0, 6))
def test_a_bad_valset_line_is_rejected_before_any_model_call(sandbox, server, good, bad, at):
    rows = [gold_row(i) for i in range(good)]
    rows.insert(min(at, len(rows)), bad)
    valset = sandbox.root / "gold.jsonl"
    write_jsonl(valset, rows)
    sandbox.before = {**sandbox.before, "gold.jsonl": valset.read_bytes()}
    calls = server.calls
    code, err = cli(*compile_args(sandbox, valset, server))
    assert_clean_error(code, err)
    assert server.calls == calls and not (sandbox.work / "program.json").exists()
    sandbox.unchanged_outside()


@fuzz(40)
@given(data=st.binary(min_size=1, max_size=400))
def test_valset_bytes_fail_cleanly(sandbox, server, data):
    valset = sandbox.root / "gold.jsonl"
    valset.write_bytes(data)
    sandbox.before = {**sandbox.before, "gold.jsonl": data}
    calls = server.calls
    assert_clean_error(*cli(*compile_args(sandbox, valset, server)))
    assert server.calls == calls
    sandbox.unchanged_outside()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['["premise", "hypothesis", "label"]'], ":1 is not a JSON object"),
        (['"premise hypothesis label"'], ":1 is not a JSON object"),
        (["5"], ":1 is not a JSON object"),
        (["[" * 100_000 + "]" * 100_000], ":1 is not a JSON object"),
        ([json.dumps({**gold_row(1), "label": True})], "label"),
        ([json.dumps({**gold_row(1), "premise": 3})], "premise"),
        ([json.dumps({**gold_row(1), "premise": "x" * 2_000_000})] * 4, None),  # huge but valid lines
    ],
    ids=short_id,
)
def test_valset_cases(sandbox, server, lines, message):
    valset = sandbox.root / "gold.jsonl"
    valset.write_text("\n".join(lines) + "\n")
    calls = server.calls
    from targen_dspy.optimizers import load_gold

    if message is None:
        assert len(load_gold(RTE, valset)) == 4
        return
    code, err = cli(*compile_args(sandbox, valset, server))
    assert_clean_error(code, err)
    assert message in err and len(err) < 600 and server.calls == calls


# program.json -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def program_state(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("program") / "program.json"
    save_compiled(TarGEN(RTE), path, {"models": {"generator": "dummy"}})
    return json.loads(path.read_text())


PREDICTORS = [name for name, _ in TarGEN(RTE).named_predictors()]


@st.composite
def broken_programs(draw, state: dict) -> dict:
    """A valid program.json broken in one place that a loader must check."""
    state = copy.deepcopy(state)
    name = draw(st.sampled_from(PREDICTORS))
    kind = draw(
        st.sampled_from(
            ["state", "extra key", "instructions", "fields", "field", "demos", "demo", "unknown", "record"]
        )
    )
    if kind == "state":
        state[name] = draw(not_a(dict))
    elif kind == "extra key":
        state[name][draw(st.sampled_from(["callbacks", "forward", "__class__", "stage", "config"]))] = draw(
            junk
        )
    elif kind == "instructions":
        state[name]["signature"]["instructions"] = draw(not_a(str))
    elif kind == "fields":
        fields = state[name]["signature"]["fields"]
        state[name]["signature"]["fields"] = draw(not_a(list) | st.just(fields[:-1]) | st.just([*fields, {}]))
    elif kind == "field":
        state[name]["signature"]["fields"][0] = draw(
            not_a(dict) | st.builds(lambda p: {"prefix": p, "description": "d"}, not_a(str))
        )
    elif kind == "demos":
        state[name]["demos"] = draw(not_a(list))
    elif kind == "demo":
        state[name]["demos"] = [draw(not_a(dict))]
    elif kind == "unknown":
        state[draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in state))] = draw(junk)
    else:
        state["targen"] = draw(not_a(dict) | st.just({}))
    return state


def generate_args(box: Sandbox, program, server) -> list[str]:
    return [
        "generate",
        "rte",
        "-n",
        "1",
        "-o",
        str(box.work / "run"),
        "--program",
        str(program),
        "-q",
        "--model",
        "openai/x",
        "--api-base",
        server.api_base,
    ]


@fuzz(50)
@given(data=st.data())
def test_a_broken_program_is_rejected_before_any_model_call(sandbox, server, program_state, data):
    state = data.draw(broken_programs(program_state))
    program = sandbox.root / "program.json"
    program.write_text(json.dumps(state))
    sandbox.before = {**sandbox.before, "program.json": program.read_bytes()}
    calls = server.calls
    code, err = cli(*generate_args(sandbox, program, server))
    assert_clean_error(code, err)
    assert server.calls == calls and not (sandbox.work / "run").exists()
    sandbox.unchanged_outside()


@fuzz(30)
@given(value=junk)
def test_any_json_value_as_a_program_fails_cleanly(sandbox, server, value):
    program = sandbox.root / "program.json"
    program.write_text(json.dumps(value))
    sandbox.before = {**sandbox.before, "program.json": program.read_bytes()}
    assert_clean_error(*cli(*generate_args(sandbox, program, server)))
    sandbox.unchanged_outside()


def test_load_state_sets_no_attribute_from_the_file(tmp_path, program_state):
    """DSPy's load_state sets every unknown key as an attribute: `forward` from a file would replace
    the predictor's method. Only signature and demos are loaded; `lm` is ignored."""
    state = copy.deepcopy(program_state)
    name = PREDICTORS[0]
    state[name]["lm"] = {"model": "openai/elsewhere", "api_base": "http://attacker.invalid"}
    state[name]["signature"]["instructions"] = "Tuned."
    path = tmp_path / "program.json"
    path.write_text(json.dumps(state))
    predictor = dict(load_compiled(RTE, path).named_predictors())[name]
    assert predictor.signature.instructions == "Tuned." and predictor.lm is None
    state[name]["forward"] = "not a method"
    path.write_text(json.dumps(state))
    with pytest.raises(SpecError, match="has keys \\['forward'\\]"):
        load_compiled(RTE, path)


@pytest.mark.parametrize(
    "content", ["not json", "[1, 2]", '{"targen": "yes"}', "[" * 100_000, b"\xff\xfe\x00"], ids=short_id
)
def test_program_files_that_are_not_programs(sandbox, server, content):
    program = sandbox.root / "program.json"
    program.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, err = cli(*generate_args(sandbox, program, server))
    assert_clean_error(code, err)
    assert "--program" in err
