import json

from targen_dspy.engine.rundir import JsonlAppender, RunDirectory


def test_a_record_is_one_line_for_every_line_splitter(tmp_path):
    """JSON leaves U+2028, U+2029 and U+0085 raw; str.splitlines() breaks lines at them (the embedded
    model wrote a U+2028 into a ReCoRD passage)."""
    record = {"passage": "one\u2028two\u2029three\x85four", "word": "café"}
    with JsonlAppender(tmp_path / "data.jsonl") as data:
        data.append(record)
        data.append({"passage": "plain"})
    text = (tmp_path / "data.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line) for line in text.splitlines()] == [record, {"passage": "plain"}]
    assert "café" in text  # other characters stay readable
    assert RunDirectory(tmp_path).records() == [record, {"passage": "plain"}]
