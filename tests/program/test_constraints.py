"""User constraints (DataGen): the spec's and the command line's rules reach every generation step as a
typed input, and a run without any sends exactly the prompts it sent before."""

import dspy
import pytest

from targen_dspy.engine.runner import program_hash
from targen_dspy.errors import SpecError
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions
from targen_dspy.signatures import parse_spec
from tests.conftest import json_lm, made

RULE = "Never mention a brand name."
SPEC_RULE = "Keep every sentence under twenty words."


def step_prompts(program):
    """The user prompt of each step's call: contexts, seeds, instance, (harder rewrite,) correction."""
    lm = json_lm(  # the first key a prompt contains picks the answer
        {
            "## context_kind ##": {"contexts": ["Sport"]},
            "## seed_kind ##": {"seeds": ["The club won the cup."]},
            "## proposed_label ##": {"reasoning": "ok", "corrected_label": "entailment"},
            "## label_meanings ##": {"hypothesis": "A club won something."},  # the harder rewrite
            "## target_label ##": {"hypothesis": "The club won."},
        }
    )
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        program.contexts(count=1)
        program.seeds(setting="Sport", count=1)
        made(program, "Sport", "The club won the cup.", "entailment")
    return [call["messages"][-1]["content"] for call in lm.history]


def test_constraints_reach_every_generation_step_as_a_typed_input(rte):
    spec = rte.model_copy(update={"constraints": (SPEC_RULE,)})
    contexts, seeds, instance, harder, correction = step_prompts(
        TarGEN(spec, GenerationOptions(constraints=(RULE,), harder=True))
    )
    for prompt in (contexts, seeds, instance, harder):
        assert f'[[ ## constraints ## ]]\n["{SPEC_RULE}", "{RULE}"]' in prompt
    assert "constraints" not in correction  # a judgment, not a generation step


def test_without_constraints_the_prompts_are_unchanged(rte):
    plain = step_prompts(TarGEN(rte))
    assert len(plain) == 4 and not any("constraints" in prompt for prompt in plain)
    assert step_prompts(TarGEN(rte, GenerationOptions())) == plain
    constrained = step_prompts(TarGEN(rte, GenerationOptions(constraints=(RULE,))))
    assert constrained[3] == plain[3]  # self-correction judges; it is not asked to follow them
    assert [prompt.split("[[ ## constraints")[0] for prompt in constrained[:3]] == [
        prompt.split("Respond with")[0] for prompt in plain[:3]
    ]  # the same prompts, with the rules added after the other inputs


def test_constraints_change_the_program_hash_but_add_no_predictor(rte):
    constrained = TarGEN(rte, GenerationOptions(constraints=(RULE,)))
    assert len(list(constrained.named_predictors())) == len(list(TarGEN(rte).named_predictors()))
    assert program_hash(constrained) != program_hash(TarGEN(rte))  # a resumed run cannot mix them


def test_spec_constraints_and_attributes_are_validated_and_hashed_only_when_set(rte):
    data = rte.model_dump()
    assert parse_spec({**data, "constraints": [], "attributes": {}}).hash == rte.hash
    assert parse_spec({**data, "constraints": [SPEC_RULE]}).hash != rte.hash
    with pytest.raises(SpecError, match="constraints"):
        parse_spec({**data, "constraints": [" "]})
    with pytest.raises(SpecError, match="lists a value twice"):
        parse_spec({**data, "attributes": {"tone": ["dry", "dry"]}})
    with pytest.raises(SpecError, match="at least one"):
        parse_spec({**data, "attributes": {"tone": []}})
