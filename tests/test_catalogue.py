"""The task catalogue: SuperGLUE's field names and label values, the real SuperGLUE files read through
each spec, structured seeds through the program and the engine, the commands for users' own tasks,
and every task generated on the embedded model."""

import json
from collections import Counter
from importlib import resources
from pathlib import Path

import dspy
import pytest
import yaml
from dspy.utils.exceptions import AdapterParseError

from targen_dspy.cli import main
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.runner import RunSettings, run
from targen_dspy.program import InstanceGenerator, SeedGenerator, TarGEN
from targen_dspy.signatures import catalogue_names, load_task, parse_spec
from targen_dspy.signatures.labels import label_policy
from tests.conftest import json_lm, made

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # ../shared/data, never copied in

# Each task's fields and label values, as SuperGLUE writes them (WSC, ReCoRD and MultiRC flat, as in
# the Hugging Face `super_glue` dataset). ReCoRD has no label: answer_type is the one generation balances.
SUPERGLUE = {
    "rte": (["premise", "hypothesis"], "label", ["entailment", "not_entailment"]),
    "cb": (["premise", "hypothesis"], "label", ["entailment", "contradiction", "neutral"]),
    "copa": (["premise", "question", "choice1", "choice2"], "label", [0, 1]),
    "boolq": (["question", "passage"], "label", [True, False]),
    "wic": (["word", "sentence1", "sentence2", "start1", "end1", "start2", "end2"], "label", [True, False]),
    "wsc": (["text", "span1_index", "span2_index", "span1_text", "span2_text"], "label", [True, False]),
    "axg": (["premise", "hypothesis"], "label", ["entailment", "not_entailment"]),
    "multirc": (["paragraph", "question", "answer"], "label", [0, 1]),
    "record": (
        ["passage", "query", "entities", "entity_spans", "answers"],
        "answer_type",
        ["person", "place", "organization"],
    ),
}


def inconsistencies(task: str, row: dict) -> list[str]:
    """What is wrong with a row's computed fields, checked from scratch (not with the hooks' code)."""
    problems = []
    if task == "wic":
        for i in (1, 2):
            found = row[f"sentence{i}"][row[f"start{i}"] : row[f"end{i}"]]
            if found.lower() != row["word"].lower():
                problems.append(f"start{i}/end{i} point at {found!r}, not {row['word']!r}")
    elif task == "wsc":
        words = row["text"].split()
        for i in (1, 2):
            span, index = row[f"span{i}_text"], row[f"span{i}_index"]
            if span not in " ".join(words[index : index + len(span.split())]):
                problems.append(f"span{i} {span!r} is not at word {index} of {row['text']!r}")
    elif task == "record":
        if not set(row["answers"]) <= set(row["entities"]):
            problems.append(f"answers {row['answers']} are not all entities {row['entities']}")
        if {span["text"] for span in row["entity_spans"]} != set(row["entities"]):
            problems.append("the spans do not cover exactly the entities")
        previous_end = 0
        for span in row["entity_spans"]:
            if row["passage"][span["start"] : span["end"]] != span["text"]:
                problems.append(f"span {span} does not point at its text")
            if span["start"] < previous_end:
                problems.append(f"span {span} overlaps the one before")
            previous_end = span["end"]
        if row["query"].count("@placeholder") != 1:
            problems.append("the query has no single @placeholder")
    return problems


def test_catalogue_tasks_use_superglue_names_and_labels():
    assert set(SUPERGLUE) < set(catalogue_names())  # plus the example task of one's own
    for task, (fields, label_field, labels) in SUPERGLUE.items():
        spec = load_task(task)
        assert (list(spec.fields), spec.label_field) == (fields, label_field), task
        assert json.dumps(spec.label_values) == json.dumps(labels), task  # true is not 1


@pytest.mark.parametrize("task", catalogue_names())
def test_catalogue_examples_are_consistent(task):
    spec = load_task(task)
    assert spec.examples, f"{task} has no examples for its self-corrector"
    for example in spec.examples:
        assert inconsistencies(task, example) == []


@pytest.mark.parametrize("task", ["rte", "cb", "copa", "boolq", "wic"])
def test_real_superglue_rows_are_instances_of_the_spec(task):
    files = sorted((DATA / task).glob("*.jsonl"))
    if not files:
        pytest.skip(f"no real {task} data: {DATA / task} (outside the repo) is absent")
    spec = load_task(task)
    rows = 0
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            try:
                spec.validate_example(json.loads(line))
            except Exception as exc:
                raise AssertionError(f"{file}:{number}: {exc}") from exc
            rows += 1
    assert rows > 0


WIC_SEED = {"word": "bank", "sense1": "a place that keeps money", "sense2": "the side of a river"}


def test_structured_seeds_are_checked_and_kept_as_json():
    spec = load_task("wic")
    answer = {
        "seeds": [
            {**WIC_SEED, "word": "two words"},  # breaks the word's pattern
            {**WIC_SEED, "sense2": ""},  # cut off
            WIC_SEED,
            {**WIC_SEED, "sense1": "a  place that keeps   money"},  # the same seed, spaced differently
        ]
    }
    with dspy.context(lm=json_lm([answer]), adapter=dspy.JSONAdapter()):
        seeds = SeedGenerator(spec, max_rounds=1)(setting="finance", count=3).seeds
    assert seeds == [spec.seed_text(WIC_SEED)]


def test_instance_from_structured_seed_gets_computed_fields_or_a_parse_error():
    spec = load_task("wic")
    seed = spec.seed_text(WIC_SEED)
    answers = [
        {"sentence1": "We sat on the bank.", "sentence2": "The Bank lent us money."},
        {"reasoning": "Two senses.", "corrected_label": False},
        {"sentence1": "The bank was shut.", "sentence2": "The bank was shut."},
    ]
    with dspy.context(lm=json_lm(answers), adapter=dspy.JSONAdapter()):
        pred = made(TarGEN(spec), "finance", seed, False)
        with pytest.raises(AdapterParseError, match="sentence2 is the same text as sentence1"):
            made(TarGEN(spec), "finance", seed, True, sampling_seed=1)
    offsets = [pred.fields[name] for name in ("word", "start1", "end1", "start2", "end2")]
    assert offsets == ["bank", 14, 18, 4, 8]
    assert pred.label is False and pred.constrained_label is False and not pred.relabeled


def test_constraints_hold_for_plain_seeds_too():
    data = yaml.safe_load((resources.files("targen_dspy.signatures") / "tasks" / "rte.yaml").read_text())
    data["fields"]["hypothesis"] = {"description": "A negated claim.", "contains": ["not"]}
    spec = parse_spec(data)
    answers = [{"hypothesis": "The club won."}, {"hypothesis": "The club did not win."}]
    with dspy.context(lm=json_lm(answers), adapter=dspy.JSONAdapter()):
        with pytest.raises(AdapterParseError, match="hypothesis"):
            InstanceGenerator(spec)(setting="sport", seed="The club lost the final.", label="entailment")
        pred = InstanceGenerator(spec)(
            setting="sport", seed="The club lost the final.", label="entailment", sampling_seed=1
        )
    assert pred.fields["hypothesis"] == "The club did not win."


def test_engine_runs_structured_seeds_and_retries_inconsistent_slots(tmp_path):
    spec = load_task("wic")
    lm = json_lm(
        [
            {"contexts": ["finance"]},
            {"seeds": [WIC_SEED]},
            {"sentence1": "The bank was shut.", "sentence2": "The bank was shut."},  # retried
            {"sentence1": "The bank lent us money.", "sentence2": "A bank kept our money."},
            {"reasoning": "Same sense.", "corrected_label": True},
            {"sentence1": "The bank lent us money.", "sentence2": "We fished from the bank."},
            {"reasoning": "Two senses.", "corrected_label": False},
        ]
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        stats = run(
            TarGEN(spec), RunDirectory(tmp_path), RunSettings(n=2, seeds_per_context=1), {}, progress=False
        ).to_json()
    assert stats["instances"] == 2 and stats["failed_slots"] == 0
    materials = json.loads((tmp_path / "materials.json").read_text())
    assert materials == [["finance", [spec.seed_text(WIC_SEED)]]]
    for line in (tmp_path / "data.jsonl").read_text().splitlines():
        record = json.loads(line)
        spec.validate_example(record)
        assert inconsistencies("wic", record) == []
        assert json.loads(record["seed"]) == WIC_SEED


def test_new_task_writes_a_skeleton_that_validates(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["new-task", "ticket_topic"]) == 0
    assert load_task("ticket_topic.yaml").name == "ticket_topic"
    assert main(["new-task", "ticket_topic"]) == 2  # never overwrites
    assert "exists" in capsys.readouterr().err
    assert main(["new-task", "Ticket Topic", "-o", "other.yaml"]) == 2
    assert not (tmp_path / "other.yaml").exists()
    assert main(["validate", "ticket_topic.yaml"]) == 0
    out = capsys.readouterr().out
    assert "ticket_topic: valid" in out and "TODO placeholders" in out


def test_validate_prints_each_step_signature_with_typed_fields(tmp_path, capsys):
    assert main(["validate", "wic"]) == 0
    out = capsys.readouterr().out
    for step in ("[contexts]", "[seeds]", "[instance]", "[correction]"):
        assert step in out
    assert "Build one example of the task" in out  # the instruction
    assert "out sentence1: str containing $word" in out
    assert "out corrected_label: Literal[True, False]" in out
    broken = tmp_path / "broken.yaml"
    wic_yaml = resources.files("targen_dspy.signatures") / "tasks" / "wic.yaml"
    broken.write_text(wic_yaml.read_text(encoding="utf-8") + "extra: 1\n")
    assert main(["validate", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "extra" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("task", catalogue_names())
def test_generate_every_task_on_the_embedded_model(task, tmp_path):
    """`targen generate TASK -n 4`: schema-valid lines in SuperGLUE's names, constrained labels split
    as planned (2/1/1 for three labels), computed fields consistent, stats that add up. A slot whose
    answers were never task-shaped in three attempts is a failed slot (`text.shape`), not a line."""
    spec = load_task(task)
    assert main(["generate", task, "-n", "4", "-o", str(tmp_path), "-q"]) == 0
    records = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    failed = tmp_path / "failed.jsonl"
    failed_slots = [json.loads(line) for line in failed.read_text().splitlines()] if failed.exists() else []
    assert len(records) + len(failed_slots) == 4 and records
    if spec.open_label:  # no label is chosen first: the model writes one for each seed
        assert len({r["seed"] for r in records}) == len(records)
    else:
        planned = {json.dumps(label): count for label, count in label_policy(spec).planned(4).items()}
        written = Counter(json.dumps(r["constrained_label"]) for r in records)
        assert all(count <= planned[label] for label, count in written.items())
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["instances"] == len(records) and sum(stats["labels"].values()) == len(records)
    for record in records:
        spec.validate_example(record)  # every field with its type, the final label in the label set
        assert inconsistencies(task, record) == []
        assert record["relabeled"] == (record[spec.label_field] != record["constrained_label"])
