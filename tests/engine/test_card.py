"""`targen export` (default `--to hub`): a folder that `datasets.load_dataset` reads, with a dataset card
that says how the run was made, what its labels are, and what analysis and review found."""

import json
from collections import Counter

import pytest
import yaml

from targen_dspy.engine.card import size_category
from tests.fuzzing import cli


@pytest.fixture(scope="module")
def made_runs(tmp_path_factory, server):
    """rte made plainly and with DataGen's `--harder` step, through the fake server."""
    root = tmp_path_factory.mktemp("card")
    for name, extra in (("plain", []), ("harder", ["--harder"])):
        base = ["generate", "rte", "-n", "6", "-o", str(root / name), "-q", "--model", "openai/x"]
        code, err = cli(*base, "--api-base", server.api_base, *extra)
        assert code == 0, err
    return root


def card_parts(folder):
    text = (folder / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def test_the_exported_folder_loads_with_datasets_and_its_card_describes_the_run(made_runs, tmp_path):
    import datasets

    run = made_runs / "plain"
    out = tmp_path / "export"
    assert cli("export", str(run), "-o", str(out))[0] == 0
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    records = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    assert loaded["train"].num_rows == len(records) == 6
    assert loaded["train"]["id"] == [record["id"] for record in records]
    meta, body = card_parts(out)
    assert meta["license"] == "other" and "# FILL IN" in (out / "README.md").read_text().splitlines()[1]
    assert meta["task_categories"] == ["text-classification"] and meta["size_categories"] == ["n<1K"]
    (config,) = meta["configs"]
    assert (out / config["data_files"][0]["path"]).is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    for fact in (manifest["program_hash"], manifest["spec_hash"], "| model (generator) | openai/x |"):
        assert fact in body
    labels = Counter(record["label"] for record in records)
    assert f"| entailment | {labels['entailment']} |" in body
    assert "@inproceedings{gupta2024targen" in body
    assert "DataGen" not in body and "lee2023making" not in body
    assert "## Human review" not in body and "## Diversity" not in body  # neither was done


def test_datagen_steps_analysis_review_and_compile_scores_reach_the_card(made_runs, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("manifest.json", "data.jsonl", "stats.json"):
        (run / name).write_bytes((made_runs / "harder" / name).read_bytes())
    records = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    answers = (
        [  # the reviewer agrees with the first two final labels, flags the third
            {"id": r["id"], "label": r["label"], "not_instance": False, "final_label": r["label"]}
            for r in records[:2]
        ]
        + [{"id": records[2]["id"], "label": None, "not_instance": True, "final_label": records[2]["label"]}]
    )
    (run / "review.jsonl").write_text("".join(json.dumps(answer) + "\n" for answer in answers))
    (run / "data-analysis").mkdir()
    figures = {"data": {"distinct_1": 0.25, "self_bleu": "not a number", "v_information": 0.5}}
    (run / "data-analysis" / "figures.json").write_text(json.dumps(figures))
    manifest = json.loads((run / "manifest.json").read_text())
    program = tmp_path / "program.json"
    scores = {"correction_accuracy": {"hand_written": 50.0, "compiled": 75.0}}
    record = {"spec_hash": manifest["spec_hash"], "optimizer": {"optimizer": "bootstrap"}, "scores": scores}
    program.write_text(json.dumps({"targen": record}))
    assert cli("export", str(run), "--program", str(program))[0] == 0
    _, body = card_parts(run / "hub")
    assert "DataGen's steps (harder)" in body and "@inproceedings{huang2025datagen" in body
    assert "| option harder | true |" in body
    assert "reviewer vs final label: 66.7% (95% CI 20.8%-93.9%), 2 of 3" in body
    assert "| distinct-1 | 0.250 |" in body and "| self-BLEU-4 | n/a |" in body
    assert "(bootstrap)" in body and "| correction_accuracy: compiled | 75.0 |" in body

    program.write_text(json.dumps({"targen": {**record, "spec_hash": "another"}}))
    code, err = cli("export", str(run), "--program", str(program))
    assert code == 2 and "compiled for another spec" in err


def test_a_self_reference_run_of_an_unknown_task_with_hostile_text(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    manifest = {
        "task": "mine: {evil}\n---\nlicense: mit",
        "method": "self-reference",
        "models": {"generator": "a|b`c\n# heading"},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    rows = [{"id": str(i), "text": f"t{i}", "label": i % 2, "round": 0, "references": []} for i in range(4)]
    (run / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert cli("export", str(run))[0] == 0
    meta, body = card_parts(run / "hub")
    assert meta["license"] == "other" and meta["pretty_name"].startswith("mine: {evil}")
    assert "| model (generator) | a\\|b'c # heading |" in body
    assert "@inproceedings{lee2023making" in body and "@inproceedings{gupta2024targen" in body


@pytest.mark.parametrize(
    ("n", "category"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (20_000, "10K<n<100K")]
)
def test_size_categories(n, category):
    assert size_category(n) == category
