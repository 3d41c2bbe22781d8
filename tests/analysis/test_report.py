"""`targen analyze` end to end on a hand-made run beside a reference whose figures are worked out by hand
or pair by pair, and on the real RTE splits, with figures counted independently of the analysis."""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from targen_dspy.analysis.records import read_jsonl
from targen_dspy.analysis.report import write_report
from targen_dspy.analysis.summary import Dataset, analyse
from targen_dspy.cli import main
from targen_dspy.signatures import load_task
from tests.analysis.conftest import ASTRONOMY, COOKING, shared_data
from tests.analysis.test_downstream import user_task

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


# A reference small enough to work out by hand: 5 instances of 5 tokens, the last a copy of the first.
REFERENCE = [
    {"premise": "The cat sat.", "hypothesis": "A cat.", "label": "entailment"},
    {"premise": "The cat sat.", "hypothesis": "Rates rose.", "label": "not_entailment"},
    {"premise": "Birds fly south.", "hypothesis": "Birds fly.", "label": "entailment"},
    {"premise": "Birds fly south.", "hypothesis": "Fish swim.", "label": "not_entailment"},
    {"premise": "The cat sat.", "hypothesis": "A cat.", "label": "entailment"},
]


def side_by_side(report: str) -> dict[str, list[str]]:
    """The data and reference cells of every row of the tables with those two columns, by row name."""
    rows, inside = {}, False
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells[1:] == ["data", "reference"]:
            inside = True
        elif not cells:
            inside = False
        elif inside and not set(cells[1]) <= {"-"}:
            rows[cells[0]] = cells[1:]
    return rows


def pairwise_cosines(records: list[dict], encoder) -> tuple[float, float]:
    """Mean cosine over all pairs and the share with a neighbour at 0.95 or more, pair by pair: an
    instance's vector is the sum of its two fields' unit embeddings, made unit."""
    vectors = []
    for record in records:
        total = sum(v / np.linalg.norm(v) for v in encoder.embed([record["premise"], record["hypothesis"]]))
        vectors.append(total / np.linalg.norm(total))
    n = len(vectors)
    cosine = [[float(vectors[i] @ vectors[j]) for j in range(n)] for i in range(n)]
    mean = sum(cosine[i][j] for i in range(n) for j in range(i + 1, n)) / (n * (n - 1) / 2)
    near = sum(max(cosine[i][j] for j in range(n) if j != i) >= 0.95 for i in range(n)) / n
    return mean, near


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


def test_a_set_beside_a_reference_reports_figures_worked_out_independently(tmp_path, encoder):
    data = Dataset("data", tmp_path / "data.jsonl", run_records())
    analysis = analyse(data, Dataset("reference", tmp_path / "reference.jsonl", REFERENCE), encoder)
    figures = side_by_side(write_report(analysis, tmp_path).read_text(encoding="utf-8"))
    assert figures["entailment"] == ["9 (36.0%)", "3 (60.0%)"]
    assert figures["not_entailment"] == ["16 (64.0%)", "2 (40.0%)"]
    # lexical figures on 5 instances of each (the smaller set, measured whole): 25 tokens, 11 words
    # (the cat sat a rates rose birds fly south fish swim), 11 distinct bigrams of 20
    assert figures["instances measured"] == ["5", "5"]
    reference = {name: cells[1] for name, cells in figures.items()}
    assert (reference["mean tokens per instance"], reference["vocabulary size"]) == ("5.0", "11")
    assert (reference["distinct-1"], reference["distinct-2"]) == ("0.440", "0.550")
    for column, records in enumerate((run_records(), REFERENCE)):
        mean, near = pairwise_cosines(records, encoder)
        assert float(figures["mean pairwise cosine (lower: more diverse)"][column]) == pytest.approx(
            mean, abs=2e-3
        )
        assert figures["near-duplicates (nearest other instance ≥ 0.95)"][column] == f"{near:.1%}"
    # the copied pair is the only near-duplicate: 2 of the reference's 5, 2 of the data's 25
    assert figures["near-duplicates (nearest other instance ≥ 0.95)"] == ["8.0%", "40.0%"]


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
def test_real_rte_val_beside_train_reports_figures_counted_independently(tmp_path, encoder):
    val = shared_data("rte", "val")
    train = write_jsonl(tmp_path / "train.jsonl", read_jsonl(shared_data("rte", "train"))[:150])
    analysis = analyse(
        Dataset("data", val, read_jsonl(val)),
        Dataset("reference", train, read_jsonl(train)),
        encoder,
        spec=load_task("rte"),
    )
    figures = side_by_side(write_report(analysis, tmp_path / "out").read_text(encoding="utf-8"))
    for column, path in enumerate((val, train)):
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for label, count in Counter(r["label"] for r in records).items():
            assert figures[label][column] == f"{count} ({count / len(records):.1%})"
    # the 150 train instances are the smaller set: measured whole, val on a sample of 150
    documents = [f"{r['premise']}\n{r['hypothesis']}" for r in read_jsonl(train)]
    tokens = [token for text in documents for token in re.findall(r"\w+", text.casefold())]
    assert figures["instances measured"] == ["150", "150"]
    assert figures["vocabulary size"][1] == str(len(set(tokens)))
    assert figures["distinct-1"][1] == f"{len(set(tokens)) / len(tokens):.3f}"
    assert figures["mean tokens per instance"][1] == f"{len(tokens) / len(documents):.1f}"


def test_cli_analyses_a_task_of_ones_own_from_its_yaml_alone(tmp_path, capsys):
    spec = tmp_path / "headlines.yaml"
    spec.write_text(yaml.safe_dump(user_task({"inputs": ["headline"]})), encoding="utf-8")
    rows = [
        {"headline": text, "note": "Something happened.", "label": label}
        for texts, label in ((COOKING, "cooking"), (ASTRONOMY, "astronomy"))
        for text in texts[:8]
    ]
    data, reference = (
        write_jsonl(tmp_path / "data.jsonl", rows[::2]),
        write_jsonl(tmp_path / "ref.jsonl", rows[1::2]),
    )
    assert main(["analyze", str(data), "--reference", str(reference), "--task", str(spec), "-q"]) == 0, (
        capsys.readouterr().err
    )
    report = (tmp_path / "data-analysis" / "report.md").read_text(encoding="utf-8")
    assert "Text fields: headline, note" in report  # diversity: every free-text field
    assert "MiniLM-L6-v2 features (headline; pairs crossed" in report  # PVI: the declared inputs only
    assert side_by_side(report)["cooking"] == ["4 (50.0%)", "4 (50.0%)"]
