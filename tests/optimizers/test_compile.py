import json
from collections import Counter

import dspy
import pytest

from targen_dspy.backends import build_lm
from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.errors import SpecError
from targen_dspy.optimizers import (
    CompileSettings,
    compile_program,
    correction_examples,
    load_compiled,
    load_gold,
    save_compiled,
    split_gold,
    teleprompter,
)
from targen_dspy.program import TarGEN
from targen_dspy.signatures import load_task
from tests.conftest import json_lm

GOLD = [
    {
        "premise": f"Gold premise {i}.",
        "hypothesis": f"Gold hypothesis {i}.",
        "label": "entailment" if i % 2 else "not_entailment",
    }
    for i in range(12)
]


def gold_file(tmp_path, rows=GOLD):
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps({**row, "idx": i}) + "\n" for i, row in enumerate(rows)))
    return path


def oracle_lm():
    """Knows every gold label; agrees with the writer on generated instances."""
    answers = {
        f"## premise ## ]]\n{row['premise']}": {
            "reasoning": "by the meanings",
            "corrected_label": row["label"],
        }
        for row in GOLD
    }
    answers.update(
        {
            "## context_kind ##": {"contexts": ["Sports news", "Finance desk", "Law courts", "Art museums"]},
            "## seed_kind ##": {
                "seeds": [
                    "The first seed text.",
                    "The second seed text.",
                    "A third seed text.",
                    "A fourth seed text.",
                ]
            },
            "## target_label ## ]]\nentailment": {"hypothesis": "It restates the premise."},
            "## target_label ## ]]\nnot_entailment": {"hypothesis": "It adds a new claim."},
            "## proposed_label ## ]]\nentailment": {"reasoning": "fits", "corrected_label": "entailment"},
            "## proposed_label ## ]]\nnot_entailment": {
                "reasoning": "fits",
                "corrected_label": "not_entailment",
            },
        }
    )
    return json_lm(answers)


def test_load_gold_reads_task_fields_and_rejects_bad_rows(rte, tmp_path):
    rows = load_gold(rte, gold_file(tmp_path))
    assert rows[0] == GOLD[0]  # idx dropped
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"premise": "p", "hypothesis": "h", "label": "maybe"}\n')
    with pytest.raises(SpecError, match="bad.jsonl:1 has label 'maybe'"):
        load_gold(rte, bad)
    bad.write_text('{"sentence": "p"}\n')
    with pytest.raises(SpecError, match="lacks"):
        load_gold(rte, bad)


def test_split_never_shares_examples_and_correction_cases_include_wrong_proposals(rte):
    split = split_gold(GOLD, 0.25)
    assert len(split.held_out) == 3 and len(split.train) == 9
    assert not {r["premise"] for r in split.held_out} & {r["premise"] for r in split.train}
    cases = correction_examples(rte, split.train)
    assert len(cases) == 18
    assert sum(c.proposed_label != c.corrected_label for c in cases) == 9
    assert set(cases[0].inputs()) == {"premise", "hypothesis", "proposed_label"}


def test_teleprompter_factory(rte):
    def metric(*a, **k):
        return 1.0

    assert (
        type(teleprompter(CompileSettings(), metric, labeled_demos=True, reflection_lm=None))
        is dspy.BootstrapFewShot
    )
    assert isinstance(
        teleprompter(CompileSettings(candidates=3), metric, labeled_demos=True, reflection_lm=None),
        dspy.BootstrapFewShotWithRandomSearch,
    )
    lm = json_lm([])
    mipro = teleprompter(
        CompileSettings(optimizer="mipro"), metric, labeled_demos=False, reflection_lm=lm, task_lm=lm
    )
    assert isinstance(mipro, dspy.MIPROv2) and mipro.prompt_model is lm
    gepa = teleprompter(
        CompileSettings(optimizer="gepa"),
        metric,
        labeled_demos=False,
        reflection_lm=lm,
        log_dir="/tmp/gepa-log",
    )
    assert isinstance(gepa, dspy.GEPA) and gepa.log_dir == "/tmp/gepa-log"
    with pytest.raises(SpecError, match="reflection model"):
        teleprompter(CompileSettings(optimizer="gepa"), metric, labeled_demos=False, reflection_lm=None)
    with pytest.raises(SpecError, match="--optimizer must be one of"):
        CompileSettings(optimizer="sgd")


def test_bootstrap_compile_tunes_every_step(rte):
    program = TarGEN(rte)
    program.set_lm(oracle_lm())
    with dspy.context(adapter=dspy.JSONAdapter()):
        compiled, scores = compile_program(program, GOLD, CompileSettings(generation_slots=4), progress=False)
    assert compiled.correct.check.demos and compiled.generate.write.demos
    assert compiled.correct.check.demos != program.correct.check.demos
    # the contexts and seeds steps are tuned too: every call wrote 4 distinct, task-shaped items
    assert compiled.contexts.propose.demos and compiled.seeds.write.demos
    assert scores["contexts_score"] == scores["seeds_score"] == {"hand_written": 100.0, "compiled": 100.0}


def test_held_out_scores_tell_the_compiled_corrector_from_the_hand_written_one(rte, fresh_run_cache):
    """A model that echoes the proposed label unless it is shown demonstrations, and then answers the label
    they give most often (the majority-label bias of in-context learning): the hand-written corrector
    (no demos: the spec's examples are left out) and the compiled one answer the same cases differently."""
    with FakeOpenAI(majority_of_demos=True) as server:
        program = TarGEN(rte.model_copy(update={"examples": ()}))
        program.set_lm(build_lm("openai/icl", api_base=server.api_base))
        with dspy.context(adapter=dspy.JSONAdapter()):
            compiled, scores = compile_program(
                program, GOLD, CompileSettings(generation_slots=4), progress=False
            )
    held_out = split_gold(GOLD, 0.3).held_out
    assert scores["held_out_gold_examples"] == len(held_out) == 4
    accuracy = scores["correction_accuracy"]
    # each held-out example is shown with its true label (echoed: right) and a wrong one (echoed: wrong)
    assert accuracy["hand_written"] == 50.0
    # with demos, every case gets the demos' majority label: right for the examples that carry it
    shown = Counter(demo["corrected_label"] for demo in compiled.correct.check.demos)
    majority = shown.most_common(1)[0][0]
    assert accuracy["compiled"] == 100 * sum(row["label"] == majority for row in held_out) / len(held_out)
    # 3 of the 4 held-out examples have the most frequent label
    assert accuracy["majority_class"] == 75.0 and accuracy["compiled"] != accuracy["hand_written"]


def test_save_load_round_trips_exactly_and_refuses_other_specs(rte, tmp_path):
    program = TarGEN(rte)
    program.set_lm(oracle_lm())
    with dspy.context(adapter=dspy.JSONAdapter()):
        compiled, scores = compile_program(program, GOLD, CompileSettings(generation_slots=4), progress=False)
    path = tmp_path / "program.json"
    save_compiled(compiled, path, {"models": {"generator": "dummy"}, "scores": scores})
    loaded = load_compiled(rte, path)
    for (name, original), (_, restored) in zip(
        compiled.named_predictors(), loaded.named_predictors(), strict=True
    ):
        assert restored.signature.instructions == original.signature.instructions, name
        assert [dict(d) for d in restored.demos] == [dict(d) for d in original.demos], name
    assert json.loads(path.read_text())["targen"]["spec_hash"] == rte.hash
    with pytest.raises(SpecError, match="compiled for task 'rte' with another spec"):
        load_compiled(load_task("copa"), path)
    path.write_text("not json")
    with pytest.raises(SpecError, match="is not JSON"):
        load_compiled(rte, path)
