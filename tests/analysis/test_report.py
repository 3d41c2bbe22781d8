"""`targen analyze` end to end on a hand-made run, and on the real RTE train split against itself."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from targen_dspy.analysis.records import read_jsonl
from targen_dspy.analysis.report import write_report
from targen_dspy.analysis.summary import Dataset, analyse
from targen_dspy.cli import main
from tests.analysis.conftest import ASTRONOMY, COOKING, shared_data

PLOTS = ("labels.png", "cosine.png", "pvi.png", "confusion.png")


def run_records() -> list[dict]:
    """A run's data.jsonl: 12 entailment and 12 not_entailment asked for; the corrector moved 3 of the
    entailment ones; the last record duplicates the first."""
    records = []
    for i in range(24):
        constrained = "entailment" if i % 2 == 0 else "not_entailment"
        final = "not_entailment" if i in (0, 2, 4) else constrained
        premise = (COOKING if constrained == "entailment" else ASTRONOMY)[i]
        records.append(
            {
                "id": f"slot{i}",
                "premise": premise,
                "hypothesis": f"Hypothesis number {i}.",
                "label": final,
                "constrained_label": constrained,
                "relabeled": final != constrained,
                "context": "a kitchen",
                "seed": premise,
                "reasoning": "because",
            }
        )
    return [*records, {**records[0], "id": "slot24"}]


def side_by_side(report: str) -> list[list[str]]:
    """The data and reference cells of every row of the tables with those two columns."""
    rows, inside = [], False
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells[1:] == ["data", "reference"]:
            inside = True
        elif not cells:
            inside = False
        elif inside and not set(cells[1]) <= {"-"}:
            rows.append(cells[1:])
    return rows


def test_report_of_a_run(tmp_path, encoder):
    data = Dataset("data", tmp_path / "data.jsonl", run_records())
    analysis = analyse(data, None, encoder)
    (result,) = analysis.sets
    assert analysis.fields == ("premise", "hypothesis")
    assert result.labels == {'"entailment"': 9, '"not_entailment"': 16}
    assert result.relabeled == 4  # slot0 and its copy, slot2, slot4
    assert result.confusion == {
        '"entailment"': {'"entailment"': 9, '"not_entailment"': 4},
        '"not_entailment"': {'"not_entailment"': 12},
    }
    assert result.cosine.near_duplicate_rate >= 2 / 25  # the copied pair at least
    assert result.lexical.documents == 25 and len(result.pvi.values) == 25

    report = write_report(analysis, tmp_path / "out").read_text(encoding="utf-8")
    for plot in PLOTS:
        assert (tmp_path / "out" / plot).read_bytes().startswith(b"\x89PNG"), plot
        assert f"({plot})" in report
    assert "| entailment | 9 (36.0%) |" in report
    assert "data: 4 (16.0%) relabeled." in report
    assert "| entailment | 9 | 4 |" in report
    figures = json.loads((tmp_path / "out" / "figures.json").read_text())  # what the dataset card reads
    assert figures["data"]["instances"] == 25 and figures["data"]["distinct_2"] == result.lexical.distinct_2


def test_a_set_against_itself_reads_identically(tmp_path, encoder):
    data = Dataset("data", tmp_path / "data.jsonl", run_records())
    analysis = analyse(data, Dataset("reference", tmp_path / "copy.jsonl", run_records()), encoder)
    rows = side_by_side(write_report(analysis, tmp_path).read_text(encoding="utf-8"))
    assert len(rows) >= 15 and [row for row in rows if row[0] != row[1]] == []


def test_sets_of_different_sizes_are_compared_on_equal_samples(tmp_path, encoder):
    records = run_records()
    reference = Dataset("reference", tmp_path, records[:7])  # a single entailment instance: no PVI
    analysis = analyse(Dataset("data", tmp_path, records), reference, encoder)
    assert analysis.lexical_sample == 7
    assert [result.lexical.documents for result in analysis.sets] == [7, 7]
    assert analysis.sets[0].pvi is not None and analysis.sets[1].pvi is None
    report = write_report(analysis, tmp_path / "out").read_text(encoding="utf-8")
    assert "PVI needs at least two instances of every label" in report


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_cli_writes_the_report_next_to_the_data(tmp_path, capsys):
    data = write_jsonl(tmp_path / "data.jsonl", run_records())
    assert main(["analyze", str(data), "--task", "rte", "-q"]) == 0
    assert (tmp_path / "data-analysis" / "report.md").exists()
    out = capsys.readouterr().out
    assert re.search(r"data: 25 instances, .*near-duplicates", out) and "report:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "cannot read"),
        (["data.jsonl", "--task", "copa"], "lacks ['question', 'choice1', 'choice2']"),
        (["data.jsonl", "--reference", "bad.jsonl"], "bad.jsonl:1 is not a JSON object"),
        (["data.jsonl", "--near-duplicate", "1.5"], "--near-duplicate is a cosine"),
        (["data.jsonl", "--folds", "1"], "--folds must be at least 2"),
    ],
)
def test_cli_user_errors_are_one_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data.jsonl", run_records())
    (tmp_path / "bad.jsonl").write_text("premise: not json\n", encoding="utf-8")
    assert main(["analyze", *args, "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_real_rte_train_against_itself_reads_identically(tmp_path, encoder):
    path = shared_data("rte", "train")
    records = read_jsonl(path)
    analysis = analyse(Dataset("data", path, records), Dataset("reference", path, read_jsonl(path)), encoder)
    data, reference = analysis.sets
    assert data.labels == reference.labels and sum(data.labels.values()) == len(records)
    assert data.lexical == reference.lexical and data.lexical.documents == len(records)
    assert data.cosine.mean == reference.cosine.mean
    assert np.array_equal(data.cosine.histogram, reference.cosine.histogram)
    assert np.array_equal(data.pvi.values, reference.pvi.values)
    rows = side_by_side(write_report(analysis, tmp_path).read_text(encoding="utf-8"))
    assert all(row[0] == row[1] for row in rows), rows
