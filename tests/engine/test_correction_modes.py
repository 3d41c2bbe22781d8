"""`--correction relabel|filter|off` through the CLI against real HTTP servers (a writer and a judge),
the warning when self-correction makes the labels lopsided, and the policy itself on DummyLM."""

import json
from collections import Counter
from pathlib import Path

import dspy
import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.cli import main
from targen_dspy.program.correction import FILTER_ATTEMPTS, JudgedOtherwise, SelfCorrector, corrected
from targen_dspy.program.plan import lopsided
from tests.conftest import json_lm

pytestmark = pytest.mark.usefixtures("fresh_run_cache")
LABELS = {"entailment", "not_entailment"}


def generate(writer: FakeOpenAI, judge: FakeOpenAI, run: Path, n: int, correction: str) -> int:
    args = ["generate", "rte", "-n", str(n), "-o", str(run), "-q", "--correction", correction]
    models = ["--model", "openai/writer", "--api-base", writer.api_base, "--corrector-model", "openai/judge"]
    return main([*args, *models, "--corrector-api-base", judge.api_base])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_filter_remakes_what_the_judge_rejects_and_keeps_the_planned_balance(tmp_path, capsys):
    with FakeOpenAI() as writer, FakeOpenAI(flip_labels=0.5) as judge:
        code = generate(writer, judge, tmp_path / "run", 8, "filter")
        judged = judge.calls
    assert code == 0
    records = lines(tmp_path / "run" / "data.jsonl")
    assert len(records) == 8 and not (tmp_path / "run" / "failed.jsonl").exists()
    assert all(r["label"] == r["constrained_label"] and not r["relabeled"] for r in records)
    assert Counter(r["label"] for r in records) == {"entailment": 4, "not_entailment": 4}
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["retries"]["filtered"] == judged - 8 > 0  # each rejected instance was made again
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["options"] == {"correction": "filter"}


def test_filter_gives_up_on_a_slot_the_judge_never_accepts(tmp_path):
    with FakeOpenAI() as writer, FakeOpenAI(flip_labels=True) as judge:
        code = generate(writer, judge, tmp_path / "run", 2, "filter")
        judged = judge.calls
    assert code == 0 and judged == 2 * FILTER_ATTEMPTS
    failed = lines(tmp_path / "run" / "failed.jsonl")
    assert len(failed) == 2 and all("judged every attempt otherwise" in r["error"] for r in failed)


def test_off_makes_no_self_correction_call(tmp_path):
    with FakeOpenAI() as writer, FakeOpenAI(flip_labels=True) as judge:
        code = generate(writer, judge, tmp_path / "run", 4, "off")
        judged = judge.calls
    records = lines(tmp_path / "run" / "data.jsonl")
    assert code == 0 and judged == 0 and len(records) == 4
    assert all(r["label"] == r["constrained_label"] and r["reasoning"] == "" for r in records)


def test_a_one_sided_corrector_is_reported(tmp_path, capsys):
    with FakeOpenAI() as writer, FakeOpenAI(judge_label="not_entailment") as judge:
        code = generate(writer, judge, tmp_path / "run", 8, "relabel")
    assert code == 0
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["labels"] == {"not_entailment": 8} and "--correction filter" in stats["label_imbalance"]
    assert "warning: self-correction moved 100% of the final labels" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("final", "warned"),
    [
        ({"entailment": 9, "not_entailment": 1}, True),  # 90 % where 50 % was planned
        ({"entailment": 8, "not_entailment": 2}, False),  # 80 % is not over the line
        ({"entailment": 6, "not_entailment": 0}, True),  # all 6 kept of 10 planned
        ({"entailment": 5, "not_entailment": 0}, False),  # too few to tell
    ],
)
def test_lopsided_final_labels(rte, final, warned):
    assert (lopsided(rte, 10, final) is not None) is warned


def test_the_policy_on_dummy_lm(rte):
    fields = {"premise": "The club won the cup in 1999.", "hypothesis": "The club won a cup."}
    answer = {"reasoning": "It does not follow.", "corrected_label": "not_entailment"}
    with dspy.context(lm=json_lm([answer, answer]), adapter=dspy.JSONAdapter()):
        corrector = SelfCorrector(rte)
        assert corrected("relabel", corrector, "entailment", 0, fields) == (
            "not_entailment",
            answer["reasoning"],
        )
        with pytest.raises(JudgedOtherwise):
            corrected("filter", corrector, "entailment", 1, fields)
    assert corrected("off", None, "entailment", 0, fields) == ("entailment", "")  # no model is asked
