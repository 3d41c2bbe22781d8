"""The embedded model's presence penalty: which tokens it lowers, on the real model's tokenizer."""

import numpy as np
import pytest

from targen_dspy.backends import local_engine
from targen_dspy.backends.local import LlamaCppEngine

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
    return np.flatnonzero(processor[0](np.array(input_ids, dtype=np.intc), scores) < 0)


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
