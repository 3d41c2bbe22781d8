"""The embedded model's logits processors (presence penalty, no copied runs): which tokens they lower,
on the real model's tokenizer."""

import numpy as np
import pytest

from targen_dspy.backends import local_engine
from targen_dspy.backends.local import NO_COPY, LlamaCppEngine

pytest.importorskip("llama_cpp", reason="the embedded model needs the [local] extra")

SCHEMA = {"properties": {"premise": {"type": "string"}, "label": {"enum": ["entailment", "neutral"]}}}
MESSAGES = [
    {"role": "system", "content": "Write new examples."},
    {"role": "user", "content": 'Example: {"premise": "Pelicans nest in 1994.", "label": "entailment"}'},
]


@pytest.fixture(scope="module")
def model():
    return local_engine()._model(MESSAGES[0]["content"])


def first_token(model, text):
    return model.tokenize(text.encode(), add_bos=False, special=False)[0]


def lowered(model, processor, input_ids):
    scores = np.zeros(model.n_vocab(), dtype=np.single)
    return np.flatnonzero(processor(np.array(input_ids, dtype=np.intc), scores) < 0)


def test_words_shown_in_the_prompt_are_lowered_but_not_labels_fields_or_instructions(model):
    processor = LlamaCppEngine._presence_penalty(model, MESSAGES, SCHEMA, 5.0)
    prompt = model.tokenize(b"prompt tokens", add_bos=False)
    lowered_ids = set(lowered(model, processor, prompt))
    for shown in (" Pelicans", "Pelicans", " 1994"):
        assert first_token(model, shown) in lowered_ids
    for free in (" entailment", " premise", " Write", " examples", " in"):
        assert first_token(model, free) not in lowered_ids


def test_words_of_an_object_already_written_are_lowered_not_those_of_the_one_being_written(model):
    processor = LlamaCppEngine._presence_penalty(model, MESSAGES, SCHEMA, 5.0)
    prompt = model.tokenize(b"prompt tokens", add_bos=False)
    lowered(model, processor, prompt)  # the first call marks where the reply starts
    walrus = first_token(model, " Walruses")
    writing = model.tokenize(b'{"premise": "Walruses swim', add_bos=False)
    assert walrus not in lowered(model, processor, prompt + writing)
    written = model.tokenize(b'{"premise": "Walruses swim."}', add_bos=False)
    assert walrus in lowered(model, processor, prompt + written)


def tokens(model, text: str) -> list[int]:
    return model.tokenize(text.encode(), add_bos=False, special=False)


def test_a_run_of_the_prompt_cannot_be_completed_in_the_reply(model):
    engine = local_engine()
    prompt = tokens(model, "Premise: The old ferry to the island stopped running in the winter of 1990.\n")
    processor = engine._no_copy(model, 6)
    lowered(model, processor, prompt)  # the first call indexes the prompt
    copy = tokens(model, '{"hypothesis": "The old ferry to the island stopped running')
    assert copy[-1] in lowered(model, processor, prompt + copy[:-1])
    # a shorter run of the prompt is free: text names what it is about
    short = tokens(model, '{"hypothesis": "The old ferry to')
    assert short[-1] not in lowered(model, processor, prompt + short[:-1])


def test_a_loop_in_the_reply_is_broken(model):
    processor = local_engine()._no_copy(model, 6)
    prompt = tokens(model, "Write a sentence.\n")
    lowered(model, processor, prompt)
    loop = tokens(model, '{"text": "The cat chased the dog, the cat chased the dog, the cat chased the')
    assert tokens(model, " dog")[0] in lowered(model, processor, prompt + loop)


def test_json_syntax_ends_a_run(model):
    """The keys and quotes the grammar forces are never lowered: an answer shaped like the prompt's
    example answer is no copy."""
    processor = local_engine()._no_copy(model, 6)
    prompt = tokens(model, 'Example: {"premise": "x", "hypothesis": "y"}\n')
    lowered(model, processor, prompt)
    reply = tokens(model, '{"premise": "x", "hypothesis": "')
    assert not set(lowered(model, processor, prompt + reply[:-1])) & {reply[-1]}


@pytest.mark.slow
def test_the_engine_reads_the_no_copy_run_from_the_schema_and_still_answers_json():
    import json

    from dspy.lm15 import Config, Message, Request

    schema = {
        "type": "object",
        "properties": {"sentence": {"type": "string"}},
        "required": ["sentence"],
        NO_COPY: 6,
    }
    request = Request(
        model="local",
        messages=[Message.user("Repeat exactly: the old ferry to the island stopped running in 1990.")],
        config=Config(
            max_tokens=60, temperature=0.0, seed=1, response_format={"type": "json_schema", "schema": schema}
        ),
    )
    written = json.loads(local_engine().complete(request).message.text)["sentence"]
    assert "the island stopped running in 1990" not in written.lower()
