"""The embedded model's adapter (issue 17): a formatting example per step, word bounds and one seed per call
in the schema its grammar decodes with; and none of it in what a remote model is sent."""

import json
import re

import dspy
import pytest
from dspy.adapters.json_adapter import _get_structured_outputs_response_format

from targen_dspy.backends.compact_adapter import (
    CONTEXTS_EXAMPLE,
    COPY_RUN,
    CompactJSONAdapter,
    LocalLevers,
)
from targen_dspy.backends.json_adapter import SignatureCachedJSONAdapter
from targen_dspy.backends.local import NO_COPY, bounded_schema, words_pattern
from targen_dspy.signatures import ProposeContexts, instance_signature, load_task, parse_spec
from targen_dspy.signatures.steps import at_most, correction_signature, seed_signature

OFF = LocalLevers(examples=False, word_bounds=False, one_seed=False, hide_avoid=False, no_copy=False)
INSTANCE_INPUTS = {
    "task_description": "d",
    "setting": "sport",
    "seed": "The club won the cup in 1999.",
    "target_label": "entailment",
    "target_label_meaning": "m",
}


class Schema:
    """An LM stand-in that takes response schemas, for `_prepare_response_format`."""

    supported_params = frozenset({"response_format"})
    supports_response_schema = True


def response_format(adapter, signature):
    kwargs = {}
    adapter._prepare_response_format(Schema(), kwargs, signature)
    format_ = kwargs["response_format"]
    return format_ if isinstance(format_, dict) else {"json_schema": {"schema": format_.model_json_schema()}}


def test_each_step_gets_one_formatting_example_before_the_request(rte):
    adapter = CompactJSONAdapter(rte)
    contexts = adapter.format(
        ProposeContexts, [], {"task_description": "d", "context_kind": "k", "avoid": [], "count": 4}
    )
    assert [m["role"] for m in contexts] == ["system", "user", "assistant", "user"]
    assert json.loads(contexts[2]["content"]) == CONTEXTS_EXAMPLE[1]
    instance = adapter.format(instance_signature(rte), [], INSTANCE_INPUTS)
    example = rte.examples[0]
    assert json.loads(instance[2]["content"]) == {"hypothesis": example["hypothesis"]}
    assert f"Seed: {example['premise']}" in instance[1]["content"] and "Setting" not in instance[1]["content"]
    assert instance[-1]["content"].startswith("Task description: d\nSetting: sport\nSeed: The club won")


def test_the_instance_step_is_shown_an_example_of_the_label_it_is_asked_for(rte):
    adapter = CompactJSONAdapter(rte)
    for wanted in ("entailment", "not_entailment"):
        messages = adapter.format(instance_signature(rte), [], INSTANCE_INPUTS | {"target_label": wanted})
        example = next(e for e in rte.examples if e["label"] == wanted)
        assert f"Target label: {wanted}" in messages[1]["content"]
        assert json.loads(messages[2]["content"]) == {"hypothesis": example["hypothesis"]}
    # a label no example has: the first example, shown with its own label
    unknown = adapter.format(instance_signature(rte), [], INSTANCE_INPUTS | {"target_label": "x"})
    assert f"Target label: {rte.examples[0]['label']}" in unknown[1]["content"]


def test_an_example_in_generated_form_is_shown_where_the_spec_has_one(copa):
    # COPA's model writes plausible/implausible choices; its examples carry them beside choice1/choice2
    messages = CompactJSONAdapter(copa).format(
        instance_signature(copa), [], INSTANCE_INPUTS | {"target_label": "0"}
    )
    assert json.loads(messages[2]["content"]) == {
        "question": "effect",
        "plausible_choice": "Water flowed from the spout.",
        "implausible_choice": "The toilet filled with water.",
    }


def test_no_example_where_the_spec_has_none_that_fits(copa):
    data = copa.model_dump(mode="json")
    data["examples"] = [
        {key: value for key, value in example.items() if not key.endswith("plausible_choice")}
        for example in data["examples"]
    ]
    plain = parse_spec(data)
    messages = CompactJSONAdapter(plain).format(
        instance_signature(plain), [], INSTANCE_INPUTS | {"target_label": "0"}
    )
    assert [m["role"] for m in messages] == ["system", "user"]


def test_levers_off_send_the_prompt_and_schema_as_before(rte):
    signature = at_most(seed_signature(rte), "seeds", 4)
    inputs = {"task_description": "d", "seed_kind": "k", "setting": "s", "avoid": [], "count": 4}
    messages = CompactJSONAdapter(rte, OFF).format(signature, [], inputs)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == (
        "Task description: d\nSeed kind: k\nSetting: s\nAvoid: []\nCount: 4\n"
        'Reply with JSON only, shaped like {"seeds": ...}'
    )
    plain = _get_structured_outputs_response_format(signature).model_json_schema()
    assert response_format(CompactJSONAdapter(rte, OFF), signature)["json_schema"]["schema"] == plain


def test_one_seed_per_call(rte):
    signature = at_most(seed_signature(rte), "seeds", 4)
    inputs = {"task_description": "d", "seed_kind": "k", "setting": "s", "avoid": [], "count": 4}
    adapter = CompactJSONAdapter(rte, LocalLevers(examples=False, word_bounds=False))
    assert "Count: 1" in adapter.format(signature, [], inputs)[-1]["content"]
    assert (
        response_format(adapter, signature)["json_schema"]["schema"]["properties"]["seeds"]["maxItems"] == 1
    )


def test_every_step_asks_the_engine_not_to_copy_runs_of_its_prompt(rte):
    steps = [ProposeContexts, seed_signature(rte), instance_signature(rte), correction_signature(rte)]
    for signature in steps:
        with_it = response_format(CompactJSONAdapter(rte), signature)["json_schema"]["schema"]
        without = response_format(CompactJSONAdapter(rte, LocalLevers(no_copy=False)), signature)
        assert with_it[NO_COPY] == COPY_RUN and NO_COPY not in without["json_schema"]["schema"]


def test_the_small_model_is_not_shown_what_to_avoid(rte):
    """It copies the list instead of avoiding it; the program drops repeats either way."""
    inputs = {
        "task_description": "d",
        "seed_kind": "k",
        "setting": "s",
        "avoid": ["An earlier seed."],
        "count": 4,
    }
    shown = CompactJSONAdapter(rte, LocalLevers(hide_avoid=False)).format(seed_signature(rte), [], inputs)
    hidden = CompactJSONAdapter(rte).format(seed_signature(rte), [], inputs)
    assert "An earlier seed." in shown[-1]["content"]
    assert "An earlier seed." not in hidden[-1]["content"] and "Avoid: []" in hidden[-1]["content"]


def test_a_structured_seed_is_shown_the_parts_of_an_example_that_has_them():
    multirc, wic = load_task("multirc"), load_task("wic")
    inputs = {"task_description": "d", "seed_kind": "k", "setting": "s", "avoid": [], "count": 1}
    messages = CompactJSONAdapter(multirc).format(seed_signature(multirc), [], inputs)
    example = multirc.examples[0]
    assert json.loads(messages[2]["content"]) == {
        "seeds": [{"paragraph": example["paragraph"], "question": example["question"]}]
    }
    # WiC's seed parts (a word and two senses) are not fields of its examples: no example
    assert [m["role"] for m in CompactJSONAdapter(wic).format(seed_signature(wic), [], inputs)] == [
        "system",
        "user",
    ]


def test_a_structured_seeds_part_bounds_reach_the_grammar():
    multirc = load_task("multirc")
    signature = at_most(seed_signature(multirc), "seeds", 1)
    schema = response_format(CompactJSONAdapter(multirc), signature)["json_schema"]["schema"]
    part = next(iter(schema["$defs"].values()))["properties"]
    assert part["paragraph"]["x-words"] == [15, 150] and part["question"]["x-words"] == [4, 35]
    grammar = bounded_schema(schema)
    paragraph = next(iter(grammar["$defs"].values()))["properties"]["paragraph"]["pattern"]
    assert re.fullmatch(paragraph, " ".join(["Word"] * 15)) and not re.fullmatch(paragraph, "1")


def test_word_bounds_reach_the_grammar(rte):
    adapter = CompactJSONAdapter(rte)
    schema = bounded_schema(response_format(adapter, instance_signature(rte))["json_schema"]["schema"])
    pattern = schema["properties"]["hypothesis"]["pattern"]
    assert re.fullmatch(pattern, "The museum is in Lyon.")
    assert not re.fullmatch(pattern, "Lyon.") and not re.fullmatch(pattern, " ".join(["word"] * 26))
    # commas end words: at its word limit the small model joined words with them
    assert re.fullmatch(pattern, "In Lyon, the museum opened; it is 3.5 km away.")
    assert not re.fullmatch(pattern, "The museum is in Lyon,which,opened,in,1994.")
    seeds = bounded_schema(response_format(adapter, seed_signature(rte))["json_schema"]["schema"])
    assert seeds["properties"]["seeds"]["items"]["pattern"] == words_pattern(4, 40)  # the premise's bounds
    contexts = bounded_schema(response_format(adapter, ProposeContexts)["json_schema"]["schema"])
    assert not re.fullmatch(contexts["properties"]["contexts"]["items"]["pattern"], "true")


def test_word_bounds_compile_to_a_llama_cpp_grammar(rte):
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    schema = bounded_schema(
        response_format(CompactJSONAdapter(rte), instance_signature(rte))["json_schema"]["schema"]
    )
    text = grammar.json_schema_to_gbnf(json.dumps(schema))
    assert grammar.LlamaGrammar.from_string(text, verbose=False) is not None


def test_a_remote_model_is_sent_the_same_prompt_and_schema_with_or_without_bounds(rte):
    """Word bounds are checked after parsing for other models, never added to what they are sent: a resumed
    run replays DSPy's cache by prompt."""
    data = rte.model_dump(mode="json")
    for field in data["fields"].values():
        del field["min_words"], field["max_words"]
    plain = parse_spec(data)
    adapter = SignatureCachedJSONAdapter()
    bounded, unbounded = instance_signature(rte), instance_signature(plain)
    assert adapter.format(bounded, [], INSTANCE_INPUTS) == adapter.format(unbounded, [], INSTANCE_INPUTS)
    assert response_format(adapter, bounded) == response_format(adapter, unbounded)
    assert dspy.Predict(bounded).dump_state() == dspy.Predict(unbounded).dump_state()
    assert load_task("rte").hash != plain.hash
