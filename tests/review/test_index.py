import json

from targen_dspy.program.records import LabelStats
from targen_dspy.review.index import Filter, RunIndex


def line(**record):
    return (json.dumps(record) + "\n").encode()


def test_pages_filters_and_searches_by_offset(run):
    index = RunIndex(run, "label")
    index.refresh()
    records = [json.loads(text) for text in (run / "data.jsonl").read_text().splitlines()]
    total, page = index.search(Filter(), 5, 4)
    assert total == len(records) and page == records[5:9]
    relabeled = [r for r in records if r["relabeled"]]
    total, page = index.search(Filter(relabeled=True), 0, 100)
    assert total == len(relabeled) > 0 and page == relabeled
    total, page = index.search(Filter(label='"low"', relabeled=False), 0, 100)
    assert page == [r for r in records if r["label"] == "low" and not r["relabeled"]]
    wanted = records[3]["message"].upper()  # case does not matter
    assert index.search(Filter(text=wanted), 0, 10) == (1, [records[3]])
    counts = index.counts()
    assert counts["instances"] == {"data": len(records), "rejected": 0, "duplicates": 0}
    stats = LabelStats.of(records, "label", key=json.dumps).to_json()  # the page keys labels as JSON
    assert counts["labels"] == stats["labels"] and counts["confusion"] == stats["confusion"]


def test_a_growing_file_with_a_torn_line_and_garbage(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_bytes(line(id="a", label=1) + b"\x89PNG garbage\n" + b'{"id": "b", "lab')
    index = RunIndex(tmp_path, "label")
    index.refresh()
    assert [entry.id for entry in index.entries["data"]] == ["a"]
    assert index.unreadable["data"] == 1
    with open(data, "ab") as file:  # the writer ends its line, and appends another
        file.write(b'el": 2}\n' + line(id="c", label=3, relabeled=True))
    index.refresh()
    assert [entry.id for entry in index.entries["data"]] == ["a", "b", "c"]
    assert index.record(index.by_id["b"]) == {"id": "b", "label": 2}
    assert index.search(Filter(label="3"), 0, 5) == (1, [{"id": "c", "label": 3, "relabeled": True}])


def test_rejected_and_duplicates_are_their_own_sources(tmp_path):
    (tmp_path / "data.jsonl").write_bytes(line(id="a", label="x"))
    (tmp_path / "rejected.jsonl").write_bytes(line(id="r", label="x", rejected={"by": "code", "reason": "r"}))
    (tmp_path / "duplicates.jsonl").write_bytes(line(id="d", label="x", duplicate_of="a"))
    index = RunIndex(tmp_path, "label")
    index.refresh()
    assert index.search(Filter(source="rejected"), 0, 5)[1][0]["rejected"]["by"] == "code"
    assert index.search(Filter(source="duplicates"), 0, 5)[1][0]["duplicate_of"] == "a"
    assert set(index.by_id) == {"a"}  # only data.jsonl's instances can be reviewed
