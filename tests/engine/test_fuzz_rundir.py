"""Fuzzing an existing run directory (`targen generate -o DIR` resumes it, `targen export DIR` reads it)
and the self-reference `--example`: corrupt files end as the CLI's clean error, and nothing outside
the run directory changes. A torn last line of data.jsonl is still dropped on resume, by design."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from targen_dspy.engine.rundir import RunDirectory, targen_records
from targen_dspy.errors import RunError
from tests.fuzzing import Sandbox, assert_clean, assert_clean_error, cli, fuzz, junk, scalars, short_id

RUN_FILES = ["manifest.json", "materials.json", "data.jsonl", "duplicates.jsonl", "rejected.jsonl"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, server):
    """An rte run of 2 instances made through the fake server, copied for each example."""
    out = tmp_path_factory.mktemp("finished") / "run"
    code, err = cli(
        "generate",
        "rte",
        "-n",
        "2",
        "-o",
        str(out),
        "-q",
        "--model",
        "openai/x",
        "--api-base",
        server.api_base,
    )
    assert code == 0, err
    record = json.loads((out / "data.jsonl").read_text().splitlines()[0])
    (out / "duplicates.jsonl").write_text(
        json.dumps({**record, "id": "d", "duplicate_of": record["id"]}) + "\n"
    )
    (out / "rejected.jsonl").write_text(
        json.dumps({**record, "id": "r", "rejected": {"by": "corpus"}}) + "\n"
    )
    return out


def copy_run(box: Sandbox, finished) -> tuple:
    run = box.root / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(finished, run)
    return run


def resume(run, server) -> tuple[int, str]:
    return cli(
        "generate",
        "rte",
        "-n",
        "2",
        "-o",
        str(run),
        "-q",
        "--model",
        "openai/x",
        "--api-base",
        server.api_base,
    )


@st.composite
def corrupt_json(draw, original: object) -> object:
    """`original` with one value anywhere replaced by junk (or the whole of it)."""
    value = copy.deepcopy(original)
    if draw(st.booleans()) or not value:
        return draw(junk)
    node = value
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        if isinstance(node[key], dict | list) and node[key] and draw(st.booleans()):
            node = node[key]
            continue
        if draw(st.booleans()) and isinstance(node, dict):
            del node[key]
        else:
            node[key] = draw(junk)
        return value


@fuzz(40)
@given(data=st.data(), name=st.sampled_from(RUN_FILES))
def test_a_corrupt_run_file_is_resumed_or_reported_cleanly(sandbox, server, finished_run, data, name):
    run = copy_run(sandbox, finished_run)
    path = run / name
    if name.endswith(".jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        records[data.draw(st.integers(0, len(records) - 1))] = data.draw(corrupt_json(records[0]))
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    else:
        path.write_text(json.dumps(data.draw(corrupt_json(json.loads(path.read_text())))))
    assert_clean(*resume(run, server))
    sandbox.unchanged_outside(run)


@fuzz(30)
@given(name=st.sampled_from(RUN_FILES), garbage=st.binary(min_size=1, max_size=200), keep=st.booleans())
def test_run_files_of_garbage_bytes(sandbox, server, finished_run, name, garbage, keep):
    run = copy_run(sandbox, finished_run)
    path = run / name
    content = path.read_bytes() if keep else b""
    path.write_bytes(content + garbage + b"\n")  # a whole line: not a torn one
    assert_clean(*resume(run, server))
    sandbox.unchanged_outside(run)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("manifest.json", "[1, 2]", "not a JSON object"),
        ("manifest.json", "7", "not a JSON object"),
        ("manifest.json", b"\xff\xfe{", "is corrupt"),
        ("materials.json", '{"context": ["seed"]}', "not a list of [context, [seeds]]"),
        ("materials.json", '[["a context", "one seed"]]', "not a list of [context, [seeds]]"),
        ("materials.json", '[["a context", [1, 2]]]', "not a list of [context, [seeds]]"),
        ("data.jsonl", '["id", "label"]\n', "data.jsonl:1 is not a JSON object"),
        ("data.jsonl", '{"id": "x"}\n', "data.jsonl:1 has no"),
        ("data.jsonl", "[" * 100_000 + "\n", "data.jsonl:1 is not a JSON object"),
        ("rejected.jsonl", '{"id": "x", "rejected": "yes"}\n', "has no 'rejected.by'"),
        ("duplicates.jsonl", '{"id": ["x"]}\n', "has 'id' of type list"),
    ],
    ids=short_id,
)
def test_corrupt_run_files(sandbox, server, finished_run, name, content, message):
    run = copy_run(sandbox, finished_run)
    (run / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    calls = server.calls
    code, err = resume(run, server)
    assert_clean_error(code, err)
    assert message in err and server.calls == calls
    sandbox.unchanged_outside(run)


def test_a_torn_last_line_is_still_dropped_on_resume(sandbox, server, finished_run):
    run = copy_run(sandbox, finished_run)
    data = run / "data.jsonl"
    kept = data.read_bytes()
    data.write_bytes(kept + b'{"id": "torn", "premise": "half a rec')
    code, err = resume(run, server)
    assert code == 0, err
    assert data.read_bytes() == kept


def test_record_checks_name_what_is_missing():
    check = targen_records("label", ["premise", "hypothesis"])
    good = {
        "id": "a",
        "premise": "p",
        "hypothesis": "h",
        "label": "x",
        "constrained_label": "x",
        "relabeled": 0,
    }
    assert check(good) is None
    assert check({**good, "relabeled": "no"}) == "has 'relabeled' of type str"
    assert check({**good, "verified_answer": 3}) == "has no 'relabeled_by_code'"
    assert check({**good, "grounding": {"verdict": 1}}) == "has 'grounding.verdict' of type int"


# export ------------------------------------------------------------------------------------------


@fuzz(25)
@given(data=st.data())
def test_export_of_a_corrupt_run_fails_cleanly(sandbox, finished_run, data):
    run = copy_run(sandbox, finished_run)
    path = run / "data.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records[data.draw(st.integers(0, len(records) - 1))] = data.draw(corrupt_json(records[0]))
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    code, err = cli("export", str(run), "--to", "jsonl")
    assert_clean(code, err)
    sandbox.unchanged_outside(run)


def test_export_of_garbage_lines_is_one_line(sandbox, finished_run):
    run = copy_run(sandbox, finished_run)
    with open(run / "data.jsonl", "ab") as file:
        file.write(b"\x89PNG\r\n\x1a\n\x00\x00\n")
    code, err = cli("export", str(run), "--to", "jsonl")
    assert_clean_error(code, err)
    assert "data.jsonl:3 is not a JSON object" in err
    assert not (run / "export.jsonl").exists()


def test_iter_jsonl_reports_the_line(tmp_path):
    run = RunDirectory(tmp_path)
    (tmp_path / "data.jsonl").write_text('{"id": "a"}\n\n3\n')
    with pytest.raises(RunError, match=r"data.jsonl:3 is not a JSON object"):
        run.records()


# --example (self-reference) ----------------------------------------------------------------------

EXAMPLE = {"premise": "The museum opened in 1994.", "hypothesis": "The museum exists.", "label": "entailment"}

bad_examples = st.one_of(
    junk.filter(lambda value: not isinstance(value, dict)),
    st.sampled_from(list(EXAMPLE)).map(lambda key: {k: v for k, v in EXAMPLE.items() if k != key}),
    st.builds(
        lambda key, value: {**EXAMPLE, key: value},
        st.sampled_from(["premise", "hypothesis"]),
        junk.filter(lambda value: not isinstance(value, str)),
    ),
    scalars.filter(lambda v: v not in ("entailment", "not_entailment")).map(
        lambda v: {**EXAMPLE, "label": v}
    ),
)


def self_reference(sandbox, server, example) -> tuple[int, str]:
    """`targen generate rte --method self-reference --example EXAMPLE` against the fake server."""
    model = ["--model", "openai/x", "--api-base", server.api_base]
    run = ["-n", "1", "-o", str(sandbox.work / "run"), "-q", *model]
    return cli("generate", "rte", "--method", "self-reference", "--example", str(example), *run)


@fuzz(40)
@given(example=bad_examples)
def test_a_bad_format_example_is_rejected_before_any_model_call(sandbox, server, example):
    path = sandbox.root / "example.json"
    path.write_text(json.dumps(example))
    sandbox.before = {**sandbox.before, "example.json": path.read_bytes()}
    calls = server.calls
    code, err = self_reference(sandbox, server, path)
    assert_clean_error(code, err)
    assert "--example" in err and server.calls == calls
    assert not (sandbox.work / "run").exists()
    sandbox.unchanged_outside()


@pytest.mark.parametrize(
    "content", [b"not json", b"\xff\xfe", b"[" * 100_000, b'"text"', b"\x00\x01"], ids=short_id
)
def test_format_example_files_that_are_not_examples(sandbox, server, content):
    path = sandbox.root / "example.json"
    path.write_bytes(content)
    code, err = self_reference(sandbox, server, path)
    assert_clean_error(code, err)
    assert "--example" in err


# analyze -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"premise": "caf\xe9"}\n', "is not UTF-8 text"),
        (b"\x00\x01\x02\n", "is a binary file"),
        (b'["premise", "label"]\n', ":1 is not a JSON object"),
        (b"[" * 100_000 + b"\n", ":1 is not a JSON object"),
        (b"\n\n", "has no records"),
    ],
    ids=short_id,
)
def test_analyze_rejects_a_malformed_dataset_before_loading_a_model(sandbox, content, message):
    path = sandbox.work / "data.jsonl"
    path.write_bytes(content)
    code, err = cli("analyze", str(path), "-q")
    assert_clean_error(code, err)
    assert message in err
    assert not (sandbox.work / "data-analysis").exists()
