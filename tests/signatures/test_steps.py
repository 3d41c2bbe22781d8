import json
import re
from typing import Literal, get_args, get_origin

import pydantic
import pytest
from dspy.adapters.utils import parse_value

from targen_dspy.signatures import (
    ProposeContexts,
    correction_signature,
    instance_signature,
    load_task,
    seed_signature,
)
from targen_dspy.signatures.steps import GRAMMAR_PATTERN, SeedText, constrain, contains_pattern


def test_instance_signature_takes_label_as_input_and_writes_typed_fields(rte, copa):
    sig = instance_signature(rte)
    assert "target_label" in sig.input_fields and "seed" in sig.input_fields
    assert list(sig.output_fields) == ["hypothesis"]  # the premise is the seed
    assert sig.instructions.startswith("Build one example")
    copa_sig = instance_signature(copa)
    assert list(copa_sig.output_fields) == ["question", "plausible_choice", "implausible_choice"]
    assert copa_sig.output_fields["question"].annotation == Literal["cause", "effect"]


def test_correction_signature_reads_fields_and_answers_in_label_set(rte, copa):
    sig = correction_signature(rte)
    inputs = list(sig.input_fields)
    assert inputs.index("premise") < inputs.index("proposed_label") and inputs[-1] == "proposed_label"
    assert list(sig.output_fields) == ["reasoning", "corrected_label"]
    assert get_args(sig.output_fields["corrected_label"].annotation) == ("entailment", "not_entailment")
    assert get_args(correction_signature(copa).output_fields["corrected_label"].annotation) == (0, 1)


def test_structured_seed_signature_writes_objects_of_its_parts(wic):
    seeds = seed_signature(wic).output_fields["seeds"].annotation
    seed_type = get_args(seeds)[0]
    assert get_origin(seeds) is list and list(seed_type.model_fields) == ["word", "sense1", "sense2"]
    schema = seed_type.model_json_schema()["properties"]
    assert schema["word"]["pattern"] == "^([a-z]{3,14})$"  # for the grammar; the seed step checks it
    assert seed_type.model_validate({"word": "Not One Word"}).sense1 == ""  # a cut-off seed still parses
    assert seed_signature(load_task("rte")).output_fields["seeds"].annotation == list[SeedText]


def test_structured_seed_comes_in_as_its_parts(wic):
    sig = instance_signature(wic)
    assert list(sig.input_fields) == [
        "task_description",
        "setting",
        "word",
        "sense1",
        "sense2",
        "target_label",
        "target_label_meaning",
    ]
    assert list(sig.output_fields) == ["sentence1", "sentence2"]  # `word` is the seed's


def test_correction_signature_leaves_computed_fields_out(wic):
    assert list(correction_signature(wic).input_fields)[3:-1] == ["word", "sentence1", "sentence2"]


def test_constrain_narrows_fields_for_one_seed(wic):
    parts = {"word": "bank", "sense1": "money", "sense2": "river"}
    sig = constrain(instance_signature(wic), wic, parts)
    sentence = sig.output_fields["sentence1"].annotation
    assert parse_value("The Bank opens at nine.", sentence) == "The Bank opens at nine."
    for wrong in ("Banking hours are long.", "A riverbank.", "No word here."):
        with pytest.raises(ValueError):
            parse_value(wrong, sentence)
    assert instance_signature(wic).output_fields["sentence1"].annotation is str  # the predictor's own

    record = load_task("record")
    names = {"person": "Ana Reyes", "place": "Porto", "organization": "Atlantic Rail"}
    answer = constrain(instance_signature(record), record, names).output_fields["answer"].annotation
    assert get_args(answer) == ("Ana Reyes", "Porto", "Atlantic Rail")


@pytest.mark.parametrize(
    ("pieces", "text", "matches"),
    [
        (
            [["the trophy"], ["the suitcase"], ["it"]],
            "The trophy did not fit in the suitcase as it was big.",
            True,
        ),
        (
            [["the trophy"], ["the suitcase"], ["it"]],
            "It did not fit: the trophy, the suitcase.",
            False,
        ),  # order
        ([["it"]], "The kitten slept.", False),  # whole words only
        ([["he", "she"]], "Then she left.", True),
        ([["@placeholder"]], "Fans cheered @placeholder's goal.", True),
        ([["bank"]], 'The "bank" closed.', False),  # a quote would end the JSON string
        ([["bank"]], "The bank [closed].", False),  # DSPy would read brackets as a list
    ],
)
def test_contains_pattern(pieces, text, matches):
    assert (re.fullmatch(contains_pattern(pieces), text) is not None) == matches


def test_constrained_schemas_compile_to_llama_cpp_grammars():
    """The schema the embedded model decodes with: every catalogue task's, for a sample seed."""
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    from dspy.adapters.json_adapter import _get_structured_outputs_response_format

    from targen_dspy.backends.local import bounded_schema

    seeds = {
        "wic": {"word": "bank", "sense1": "money", "sense2": "river"},
        "wsc": {"span1_text": "the trophy", "other_candidate": "the suitcase", "span2_text": "it"},
        "axg": {"subject1": "the nurse", "subject2": "the patient", "pronoun": "she"},
        "record": {"person": "Ana Reyes", "place": "Porto", "organization": "Atlantic Rail"},
    }
    for name, parts in seeds.items():
        spec = load_task(name)
        for sig in (constrain(instance_signature(spec), spec, parts), seed_signature(spec)):
            schema = bounded_schema(_get_structured_outputs_response_format(sig).model_json_schema())
            text = grammar.json_schema_to_gbnf(json.dumps(schema))
            assert grammar.LlamaGrammar.from_string(text, verbose=False) is not None


def test_contexts_and_plain_seeds_steer_only_the_embedded_grammar():
    """Contexts and plain seeds must start with a letter in the local grammar (the 135M model writes
    "1.1.2.1" otherwise); a remote model's answer is parsed as any text."""
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    from dspy.adapters.json_adapter import _get_structured_outputs_response_format

    from targen_dspy.backends.local import bounded_schema

    for sig, name in ((ProposeContexts, "contexts"), (seed_signature(load_task("rte")), "seeds")):
        schema = bounded_schema(_get_structured_outputs_response_format(sig).model_json_schema())
        item = schema["properties"][name]["items"]
        assert GRAMMAR_PATTERN not in item
        assert re.fullmatch(item["pattern"], "a hospital ward")
        assert not re.fullmatch(item["pattern"], "1.1.2.1")
        text = grammar.json_schema_to_gbnf(json.dumps(schema))
        assert grammar.LlamaGrammar.from_string(text, verbose=False) is not None
        parsed = pydantic.TypeAdapter(sig.output_fields[name].annotation).validate_python(["1.1.2.1"])
        assert parsed == ["1.1.2.1"]
