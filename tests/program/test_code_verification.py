"""Code-based verification on the math task with an open label: a wrong answer is caught by running the
model's program and relabeled, a right one is left alone, a crashing program drops the instance; through
the program, the engine (rejected.jsonl, stats, resume) and the command line on the embedded model."""

import json

import dspy
import pytest

from targen_dspy.cli import main
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.runner import RunSettings, program_hash, run
from targen_dspy.errors import SpecError
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions
from targen_dspy.program.plan import Material, plan_slots
from targen_dspy.program.verification import CodeVerifier, strip_fences
from targen_dspy.signatures import load_task
from targen_dspy.signatures.labels import label_policy
from tests.conftest import json_lm, made

QUESTION = "Maya buys 3 packs of 12 pencils and gives 9 away. How many pencils does she have left?"
FIELDS = {"question": QUESTION, "solution": "3 * 12 = 36 and 36 - 9 = 27."}


@pytest.fixture
def math_word():
    return load_task("math_word")


def verify(spec, code, label):
    lm = json_lm([{"solution_code": code}])
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        return CodeVerifier(spec)(label=label, **FIELDS), lm


def test_a_wrong_answer_is_caught_by_execution_and_relabeled(math_word):
    checked, lm = verify(math_word, "packs = 3 * 12\nprint(packs - 9)", label=30)
    assert checked.label == 27 and checked.rejected is None
    assert checked.extra == {
        "solution_code": "packs = 3 * 12\nprint(packs - 9)",
        "verified_answer": 27,
        "relabeled_by_code": True,
    }
    prompt = lm.history[0]["messages"][-1]["content"]
    assert QUESTION in prompt and FIELDS["solution"] not in prompt  # the program is written independently
    assert lm.history[0]["kwargs"]["temperature"] == 0.0


def test_a_right_answer_is_left_alone(math_word):
    checked, _ = verify(math_word, "```python\nprint(3 * 12 - 9)\n```", label=27)
    assert checked.label == 27 and checked.rejected is None
    assert checked.extra["verified_answer"] == 27 and checked.extra["relabeled_by_code"] is False
    assert checked.extra["solution_code"] == "print(3 * 12 - 9)"  # the Markdown fence is not code


@pytest.mark.parametrize(
    "code, reason",
    [
        ("print(36 / 0)", "ZeroDivisionError"),
        ("print('about' + ' twenty')", "printed no number"),
        ("print(27 / 2)", "13.5, not a whole number"),
        ("import socket\nprint(3 * 9)", "importing socket is blocked"),
        ("print(27)", "calculates nothing"),
        ("1234567890", "calculates nothing"),
    ],
)
def test_a_failing_program_drops_the_instance(math_word, code, reason):
    checked, _ = verify(math_word, code, label=27)
    assert checked.rejected["by"] == "code" and reason in checked.rejected["reason"]
    assert checked.label == 27 and "verified_answer" not in checked.extra


def test_code_verification_needs_a_numeric_label(rte):
    with pytest.raises(SpecError, match="label_type: integer or number"):
        CodeVerifier(rte)


def test_strip_fences():
    assert strip_fences("```\nprint(1)\n```") == "print(1)"
    assert strip_fences("print(1)") == "print(1)"


def test_options_that_are_off_leave_the_program_as_it_was(math_word):
    plain = TarGEN(math_word)
    assert program_hash(TarGEN(math_word, GenerationOptions())) == program_hash(plain)
    verifying = TarGEN(math_word, GenerationOptions(verify_code=True))
    assert [name for name, _ in verifying.named_predictors()] == [
        *(name for name, _ in plain.named_predictors()),
        "verify.write",
    ]
    assert program_hash(verifying) != program_hash(plain)


def test_an_open_label_plans_one_slot_per_seed_with_no_label(math_word):
    assert label_policy(math_word).planned(5) == {None: 5}
    slots = list(plan_slots(math_word, 3, [Material("bakery", ("s0", "s1")), Material("garden", ("s2",))]))
    assert [(s.id, s.seed, s.label) for s in slots] == [
        ("c0-s0-l0", "s0", None),
        ("c0-s1-l0", "s1", None),
        ("c1-s0-l0", "s2", None),
    ]


def math_lm(codes: dict[str, str]):
    """Contexts, seeds, an instance per seed whose written answer is 30, a corrector that agrees, and
    the program given for each seed's question."""
    return json_lm(
        {
            "## context_kind ##": {"contexts": ["bakery"]},
            "## seed_kind ##": {"seeds": list(codes)},
            **{
                f"## seed ## ]]\n{seed}": {"question": f"{seed}?", "solution": "Add them.", "answer": 30}
                for seed in codes
            },
            **{
                f"## question ## ]]\n{seed}?\n\n[[ ## proposed": {"reasoning": "ok", "corrected_label": 30}
                for seed in codes
            },
            **{
                f"## question ## ]]\n{seed}?\n\nRespond": {"solution_code": code}
                for seed, code in codes.items()
            },
        }
    )


def test_targen_verifies_after_self_correction(math_word):
    lm = math_lm({"Muffins": "print(3 * 9)"})
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = made(TarGEN(math_word, GenerationOptions(verify_code=True)), "bakery", "Muffins", None)
    assert pred.fields == {"question": "Muffins?", "solution": "Add them."}
    assert (pred.constrained_label, pred.label, pred.relabeled) == (
        30,
        27,
        False,
    )  # the writer's, then code's
    assert pred.verification["relabeled_by_code"] is True and pred.rejected is None


def generate(spec, path, lm, n):
    program = TarGEN(spec, GenerationOptions(verify_code=True))
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        settings = RunSettings(n=n, seeds_per_context=3)
        return run(program, RunDirectory(path), settings, {}, progress=False).to_json()


def test_the_engine_relabels_keeps_and_drops_and_counts(math_word, tmp_path):
    codes = {"Muffins": "print(3 * 10)", "Cakes": "print(3 * 9)", "Rolls": "print(1 / 0)"}
    stats = generate(math_word, tmp_path, math_lm(codes), 3)
    records = {r["question"]: r for r in map(json.loads, (tmp_path / "data.jsonl").read_text().splitlines())}
    assert set(records) == {"Muffins?", "Cakes?"}
    kept, relabeled = records["Muffins?"], records["Cakes?"]
    assert (kept["answer"], kept["verified_answer"], kept["relabeled_by_code"]) == (30, 30, False)
    assert (relabeled["answer"], relabeled["verified_answer"], relabeled["relabeled_by_code"]) == (
        27,
        27,
        True,
    )
    assert relabeled["constrained_label"] == 30 and relabeled["solution_code"] == "print(3 * 9)"
    for record in records.values():
        math_word.validate_example(record)
    (dropped,) = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert dropped["question"] == "Rolls?" and dropped["rejected"]["by"] == "code"
    assert "ZeroDivisionError" in dropped["rejected"]["reason"] and "verified_answer" not in dropped
    assert stats["instances"] == 2 and stats["rejected"] == 1 and stats["rejected_by"] == {"code": 1}
    assert stats["verified_by_code"] == 2 and stats["relabeled_by_code"] == 1 and stats["failed_slots"] == 0
    again = generate(math_word, tmp_path, math_lm(codes), 3)  # a rejected slot is done, not retried
    assert again["this_invocation"]["calls"] == 0 and again["rejected"] == 1


def test_verify_code_on_a_task_without_numeric_labels_is_a_one_line_error(tmp_path, capsys):
    assert main(["generate", "rte", "-n", "2", "-o", str(tmp_path), "--verify-code", "-q"]) == 2
    err = capsys.readouterr().err
    assert "label_type: integer or number" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_generate_math_word_with_verify_code_on_the_embedded_model(tmp_path, capsys):
    """`targen generate math_word -n 2 --verify-code`: every slot ends kept with a computed answer, or
    rejected with the reason, or failed; the counts add up. (The 135M model is weak: no correctness.)"""
    assert main(["generate", "math_word", "-n", "2", "-o", str(tmp_path), "--verify-code", "-q"]) == 0
    spec = load_task("math_word")
    run_dir = RunDirectory(tmp_path)
    kept = run_dir.records()
    rejected = list(run_dir.iter_jsonl(run_dir.rejected))
    failed = list(run_dir.iter_jsonl(run_dir.failed))
    assert len(kept) + len(rejected) + len(failed) == 2
    for record in kept:
        spec.validate_example(record)
        assert isinstance(record["verified_answer"], int) and record["solution_code"]
        assert record["answer"] == record["verified_answer"]
        if not record["relabeled"]:  # self-correction kept the written answer, so code compared with it
            assert record["relabeled_by_code"] == (record["verified_answer"] != record["constrained_label"])
    for record in rejected:
        assert (
            record["rejected"]["by"] == "code" and record["rejected"]["reason"] and "solution_code" in record
        )
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["instances"] == len(kept) and stats["rejected"] == len(rejected)
    assert stats.get("verified_by_code", 0) == len(kept)
    assert stats.get("relabeled_by_code", 0) == sum(r["relabeled_by_code"] for r in kept)
    assert "verification:" in capsys.readouterr().out
