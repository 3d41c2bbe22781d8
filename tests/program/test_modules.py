import dspy

from targen_dspy.program import ContextGenerator, InstanceGenerator, SeedGenerator, SelfCorrector, TarGEN
from targen_dspy.program.correction import correction_demos
from tests.conftest import json_lm, made


def test_contexts_are_distinct_across_rounds(rte):
    lm = json_lm(
        [
            {"contexts": ["Sports news", "sports news.", "Finance"]},  # a near-duplicate is dropped
            {"contexts": ["Finance", "Medicine"]},
        ]
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        result = ContextGenerator(rte)(count=3)
    assert result.contexts == ["Sports news", "Finance", "Medicine"]
    second_prompt = lm.history[1]["messages"][-1]["content"]
    assert "Sports news" in second_prompt and "Finance" in second_prompt  # shown as `avoid`


def test_contexts_skip_known_ones(rte):
    lm = json_lm([{"contexts": ["Finance", "Law"]}])
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        assert ContextGenerator(rte)(count=1, known=["finance"]).contexts == ["Law"]


def test_seeds_stop_after_max_rounds_when_model_runs_dry(rte):
    lm = json_lm(
        [
            {"seeds": ["A club won the cup."]},
            {"seeds": ["A club won the cup."]},
            {"seeds": ["a club won the cup"]},
        ]
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        result = SeedGenerator(rte, max_rounds=3)(setting="sport", count=4)
    assert result.seeds == ["A club won the cup."]
    assert len(lm.history) == 3


def test_instance_generator_copies_seed_and_passes_label_meaning(rte):
    lm = json_lm([{"hypothesis": "The club won."}])
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = InstanceGenerator(rte)(
            setting="sport", seed="The club won the cup in 1999.", label="entailment"
        )
    assert pred.fields == {"premise": "The club won the cup in 1999.", "hypothesis": "The club won."}
    prompt = lm.history[0]["messages"][-1]["content"]
    assert rte.meaning("entailment") in prompt


def test_instance_generator_runs_postprocess_for_copa(copa):
    answer = {"question": "effect", "plausible_choice": "He got wet.", "implausible_choice": "He got rich."}
    with dspy.context(lm=json_lm([answer, answer]), adapter=dspy.JSONAdapter()):
        first = InstanceGenerator(copa)(setting="home", seed="It rained all day.", label=0)
        second = InstanceGenerator(copa)(setting="home", seed="It rained all day.", label=1)
    assert (first.fields["choice1"], first.fields["choice2"]) == ("He got wet.", "He got rich.")
    assert (second.fields["choice1"], second.fields["choice2"]) == ("He got rich.", "He got wet.")


def test_corrector_demos_come_from_spec_examples_half_with_wrong_proposals(rte):
    demos = correction_demos(rte)
    assert len(demos) == len(rte.examples)
    assert [d.corrected_label for d in demos] == [e["label"] for e in rte.examples]
    assert demos[0].proposed_label == demos[0].corrected_label
    assert demos[1].proposed_label != demos[1].corrected_label


def test_corrector_returns_label_from_label_set(rte):
    lm = json_lm([{"reasoning": "It adds a fact.", "corrected_label": "not_entailment"}])
    fields = {"premise": "The club won the cup.", "hypothesis": "The club won twice."}
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        verdict = SelfCorrector(rte)(proposed_label="entailment", **fields)
    assert verdict.label == "not_entailment" and verdict.reasoning == "It adds a fact."
    assert lm.history[0]["kwargs"]["temperature"] == 0.0


def test_targen_composes_generation_and_correction(rte):
    lm = json_lm(
        {
            "## target_label ## ]]\nentailment": {"hypothesis": "The club won twice."},
            "## proposed_label ## ]]\nentailment": {
                "reasoning": "Adds a fact.",
                "corrected_label": "not_entailment",
            },
        }
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = made(TarGEN(rte), "sport", "The club won the cup.", "entailment")
    assert pred.fields == {"premise": "The club won the cup.", "hypothesis": "The club won twice."}
    assert (pred.constrained_label, pred.label, pred.relabeled) == ("entailment", "not_entailment", True)


def test_corrector_can_use_its_own_model(rte):
    program = TarGEN(rte)
    writer, judge = (
        json_lm([{"hypothesis": "The club won."}]),
        json_lm([{"reasoning": "ok", "corrected_label": "entailment"}]),
    )
    program.set_lm(writer)
    program.correct.set_lm(judge)
    with dspy.context(adapter=dspy.JSONAdapter()):
        made(program, "s", "The club won the cup.", "entailment")
    assert len(writer.history) == 1 and len(judge.history) == 1
