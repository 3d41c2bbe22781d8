import pytest

from targen_dspy.analysis.records import check_fields, label_key, label_name, read_jsonl
from targen_dspy.errors import RunError, SpecError

RUN_RECORD = {
    "id": "s1",
    "premise": "The museum opened in 1994.",
    "hypothesis": "The museum is old.",
    "label": "entailment",
    "constrained_label": "entailment",
    "relabeled": False,
    "context": "history",
    "seed": "The museum opened in 1994.",
    "reasoning": "It says so.",
}


def test_label_keys_keep_types_apart():
    assert [label_key(v) for v in ("entailment", True, 0)] == ['"entailment"', "true", "0"]
    assert [label_name(label_key(v)) for v in ("entailment", True, 0)] == ["entailment", "true", "0"]


def test_read_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(RunError, match="data.jsonl:3 is not a JSON object"):
        read_jsonl(path)
    with pytest.raises(RunError, match="cannot read"):
        read_jsonl(tmp_path / "missing.jsonl")
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(RunError, match="has no records"):
        read_jsonl(path)


def test_check_fields_names_the_record_and_the_fields():
    with pytest.raises(SpecError, match=r"val.jsonl record 2 lacks \['hypothesis'\]"):
        check_fields([RUN_RECORD, {"premise": "x"}], ["premise", "hypothesis"], "val.jsonl")
