"""Self-reflection and difficulty enhancement (DataGen): an instance the critique finds flawed is
rewritten and keeps its version before, a sound one is untouched, and a harder rewrite keeps the label."""

import dspy

from targen_dspy.engine.runner import program_hash
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions
from targen_dspy.program.rewrite import DifficultyEnhancer, SelfReflection
from tests.conftest import json_lm, made

WRITE = "## setting ## ]]"  # only the instance step has a setting input
REVISE = "## critique ## ]]"  # only the revision step gets a critique as input
CORRECT = "## proposed_label ## ]]"
# The difficulty step's inputs include the label meanings, as do self-correction's and the critique's:
# DummyLM answers the first key a prompt contains, so HARDEN comes after their keys.
HARDEN = "## label_meanings ## ]]"
PREMISE = "The club won the cup in 1999."


def critique_of(hypothesis: str) -> str:
    return f"## hypothesis ## ]]\n{hypothesis}\n\n[[ ## target_label"


def verdict(label="entailment"):
    return {"reasoning": "checked", "corrected_label": label}


def prompts(lm):
    return [call["messages"][-1]["content"] for call in lm.history]


def test_options_off_add_no_predictor_and_keep_the_program_hash(rte):
    plain = TarGEN(rte)
    assert [name for name, _ in TarGEN(rte, GenerationOptions()).named_predictors()] == [
        name for name, _ in plain.named_predictors()
    ]
    assert program_hash(TarGEN(rte, GenerationOptions())) == program_hash(plain)
    both = TarGEN(rte, GenerationOptions(reflect_rounds=2, harder=True))
    assert {name for name, _ in both.named_predictors()} - {name for name, _ in plain.named_predictors()} == {
        "harden.rewrite",
        "reflect.critique",
        "reflect.revise",
    }
    assert program_hash(both) != program_hash(plain)


def test_flawed_instance_is_rewritten_and_keeps_the_version_before(rte):
    lm = json_lm(
        {
            WRITE: {"hypothesis": "The club lost the cup in 1999."},  # contradicts the premise: a flaw
            critique_of("The club lost the cup in 1999."): {
                "critique": "It contradicts the premise.",
                "flawed": True,
            },
            REVISE: {"hypothesis": "The club has won a cup."},
            critique_of("The club has won a cup."): {"critique": "None.", "flawed": False},
            CORRECT: verdict(),
        }
    )
    program = TarGEN(rte, GenerationOptions(reflect_rounds=3))
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = made(program, "sport", "The club won the cup in 1999.", "entailment")
    assert pred.fields == {
        "premise": "The club won the cup in 1999.",
        "hypothesis": "The club has won a cup.",
    }
    assert pred.rewrites == {
        "before_reflection": {
            "premise": "The club won the cup in 1999.",
            "hypothesis": "The club lost the cup in 1999.",
        }
    }
    assert pred.critiques == ["It contradicts the premise."]
    # write, critique (flawed), revise, critique (sound), then self-correction reads the new version
    sent = prompts(lm)
    assert len(sent) == 5
    assert "The club has won a cup." in sent[-1] and CORRECT in sent[-1]
    revise = sent[2]
    assert "It contradicts the premise." in revise and rte.meaning("entailment") in revise


def test_sound_instance_is_untouched(rte):
    lm = json_lm(
        {
            WRITE: {"hypothesis": "The club has won a cup."},
            critique_of("The club has won a cup."): {"critique": "None.", "flawed": False},
            CORRECT: verdict(),
        }
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = made(
            TarGEN(rte, GenerationOptions(reflect_rounds=3)),
            "sport",
            "The club won the cup in 1999.",
            "entailment",
        )
    assert pred.fields["hypothesis"] == "The club has won a cup." and pred.rewrites == {}
    assert pred.critiques == []
    assert len(lm.history) == 3  # write, one critique, self-correction: no rewrite


def test_reflection_stops_after_its_rounds(rte):
    lm = json_lm(
        [
            {"critique": "Too plain.", "flawed": True},
            {"hypothesis": "Version 1."},
            {"critique": "Still too plain.", "flawed": True},
            {"hypothesis": "Version 2."},
        ]
    )
    fields = {"premise": "P.", "hypothesis": "Version 0."}
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        out = SelfReflection(rte, rounds=2)(fields=fields, seed="P.", label="entailment")
    assert out.fields == {"premise": "P.", "hypothesis": "Version 2."}
    assert out.critiques == ["Too plain.", "Still too plain."] and out.rewritten
    assert len(lm.history) == 4  # the last rewrite is not critiqued again


def test_unparseable_rewrite_leaves_the_instance_as_it_was(rte):
    lm = json_lm([{"critique": "Bad.", "flawed": True}, {"wrong_field": "x"}])
    fields = {"premise": "P.", "hypothesis": "H."}
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        out = SelfReflection(rte, rounds=1)(fields=fields, seed="P.", label="entailment")
    assert out.fields == fields and not out.rewritten and out.critiques == []


def test_harder_rewrite_keeps_label_and_seed_and_the_version_before(rte):
    lm = json_lm(
        {
            WRITE: {"hypothesis": "The club won a cup."},
            CORRECT: verdict(),
            HARDEN: {"hypothesis": "A trophy was lifted by the club in the last year of the century."},
        }
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = made(
            TarGEN(rte, GenerationOptions(harder=True)),
            "sport",
            "The club won the cup in 1999.",
            "entailment",
        )
    assert pred.fields["premise"] == "The club won the cup in 1999."  # the seed's field is not rewritten
    assert pred.fields["hypothesis"].startswith("A trophy") and pred.constrained_label == "entailment"
    assert pred.rewrites == {
        "before_harder": {"premise": "The club won the cup in 1999.", "hypothesis": "The club won a cup."}
    }
    harden = prompts(lm)[1]
    assert "The club won a cup." in harden and rte.meaning("not_entailment") in harden  # all label meanings


def test_harder_then_reflection_keep_each_version(rte):
    lm = json_lm(
        {
            WRITE: {"hypothesis": "The club won."},
            CORRECT: verdict(),
            critique_of("Harder but broken."): {"critique": "Broken.", "flawed": True},
            REVISE: {"hypothesis": "Harder and sound."},
            critique_of("Harder and sound."): {"critique": "None.", "flawed": False},
            HARDEN: {"hypothesis": "Harder but broken."},
        }
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = made(TarGEN(rte, GenerationOptions(harder=True, reflect_rounds=1)), "s", PREMISE, "entailment")
    assert pred.fields["hypothesis"] == "Harder and sound."
    assert pred.rewrites["before_harder"]["hypothesis"] == "The club won."
    assert pred.rewrites["before_reflection"]["hypothesis"] == "Harder but broken."


def test_rewrite_recomputes_copa_choices_for_the_label(copa):
    """COPA's model writes a plausible and an implausible choice; the hook places them by label."""
    lm = json_lm(
        [
            {
                "question": "effect",
                "plausible_choice": "He got soaked.",
                "implausible_choice": "He got a raise.",
            }
        ]
    )
    fields = {
        "premise": "It rained.",
        "question": "effect",
        "choice1": "He got a raise.",
        "choice2": "He got wet.",
    }
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        out = DifficultyEnhancer(copa)(fields=fields, seed="It rained.", label=1)
    assert out.rewritten and out.fields == {
        "premise": "It rained.",
        "question": "effect",
        "choice1": "He got a raise.",
        "choice2": "He got soaked.",
    }


def test_open_label_is_written_again_with_the_harder_instance():
    """A math answer is not chosen first: the harder problem comes with its own answer, and the record
    keeps the easier problem with its answer."""
    from targen_dspy.signatures import load_task

    math = load_task("math_word")
    easy = {"question": "Ann has 3 bags of 4 apples. How many apples?", "solution": "3 * 4 = 12."}
    hard = {
        "question": "Ann has 3 bags of 4 apples and eats 2. How many are left?",
        "solution": "3 * 4 = 12. 12 - 2 = 10.",
    }
    lm = json_lm(
        {
            CORRECT: {"reasoning": "12 - 2 = 10", "corrected_label": 10},
            "## example ## ]]": {**hard, "answer": 10},
            WRITE: {**easy, "answer": 12},
        }
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = made(TarGEN(math, GenerationOptions(harder=True)), "market", "3 bags of 4", None)
    assert pred.fields == hard
    assert (pred.label, pred.constrained_label, pred.relabeled) == (10, 10, False)
    assert pred.rewrites == {"before_harder": {**easy, "answer": 12}}
    harden = prompts(lm)[1]
    assert '"answer": 12' in harden and math.label_description in harden


def test_open_label_critique_reads_the_written_answer():
    from targen_dspy.signatures import load_task

    math = load_task("math_word")
    lm = json_lm(
        [
            {"critique": "3 * 4 is 12, not 13.", "flawed": True},
            {"question": "Q?", "solution": "3 * 4 = 12.", "answer": 12},
            {"critique": "None.", "flawed": False},
        ]
    )
    fields = {"question": "Q?", "solution": "3 * 4 = 13."}
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        out = SelfReflection(math, rounds=2)(fields=fields, seed="s", label=13)
    assert out.label == 12 and out.fields["solution"] == "3 * 4 = 12." and out.rewritten
    critique = prompts(lm)[0]
    assert "[[ ## proposed_label ## ]]\n13" in critique and "3 * 4 = 13." in critique
