"""The downstream classifier on hand-made sets whose answer is known: a label given by an obvious topic
is learnt, a label independent of the input is not; a task of one's own is read as its spec's
`downstream:` says. Real SuperGLUE layouts when ../shared/data exists."""

import json
import re

import pytest

from targen_dspy.analysis.downstream import evaluate
from targen_dspy.errors import SpecError
from targen_dspy.signatures import load_task, parse_spec
from tests.analysis.conftest import ASTRONOMY, COOKING, shared_data

PAIR_TASKS = {  # task -> (its two text fields, the label of a cooking instance, of an astronomy one)
    "rte": (("premise", "hypothesis"), "entailment", "not_entailment"),
    "boolq": (("question", "passage"), True, False),
    "wic": (("sentence1", "sentence2"), True, False),
}


def pair_records(task: str, topic_decides: bool) -> tuple[list[dict], list[dict]]:
    """Every other sentence of each topic to train, the rest to test. The label is the topic of the
    first text, or (topic_decides=False) alternates within each topic and so says nothing about it."""
    (first, second), cooking, astronomy = PAIR_TASKS[task]
    train, test = [], []
    for i, (cook, star) in enumerate(zip(COOKING, ASTRONOMY, strict=True)):
        for text, label, other in ((cook, cooking, astronomy), (star, astronomy, cooking)):
            if not topic_decides and i % 4 >= 2:
                label = other
            (test if i % 2 else train).append(
                {first: text, second: "Something happened today.", "label": label}
            )
    return train, test


@pytest.mark.parametrize("task", sorted(PAIR_TASKS))
def test_a_label_given_by_the_topic_is_learnt(task, encoder):
    train, test = pair_records(task, topic_decides=True)
    result = evaluate(train, test, load_task(task), encoder, rounds=2)
    assert result.accuracy >= 0.9
    assert 0 <= result.ci_low <= result.accuracy <= result.ci_high <= 1
    assert (result.n_train, result.n_test, len(result.round_accuracies)) == (36, 36, 2)


def test_a_label_independent_of_the_input_is_not_learnt(encoder):
    train, test = pair_records("rte", topic_decides=False)
    assert evaluate(train, test, load_task("rte"), encoder, rounds=2).accuracy <= 0.7


def copa_records() -> tuple[list[dict], list[dict]]:
    """The right choice is on the premise's topic, the wrong one on the other; positions alternate.
    Every other premise of each topic to train, the rest to test."""
    train, test = [], []
    for i in range(len(COOKING)):
        for premise, right, wrong in (
            (COOKING[i], COOKING[(i + 7) % len(COOKING)], ASTRONOMY[i]),
            (ASTRONOMY[i], ASTRONOMY[(i + 7) % len(ASTRONOMY)], COOKING[i]),
        ):
            label = (i // 2) % 2
            choices = (right, wrong) if label == 0 else (wrong, right)
            question = "cause" if i % 3 else "effect"
            record = {"premise": premise, "question": question, "choice1": choices[0], "choice2": choices[1]}
            (test if i % 2 else train).append({**record, "label": label})
    return train, test


def test_copa_scores_each_choice(encoder):
    train, test = copa_records()
    result = evaluate(train, test, load_task("copa"), encoder, rounds=2)
    assert result.accuracy >= 0.9


@pytest.mark.parametrize(
    ("task", "change", "message"),
    [
        ("rte", {"hypothesis": None}, "lacks ['hypothesis']"),
        ("copa", {"label": 2}, "not the index of one of the choices"),
        ("copa", {"question": "reason"}, "not one of ['cause', 'effect']"),
    ],
)
def test_records_that_do_not_fit_the_layout_are_user_errors(task, change, message, encoder):
    train = (copa_records() if task == "copa" else pair_records("rte", True))[0]
    broken = {k: v for k, v in {**train[0], **change}.items() if v is not None}
    with pytest.raises(SpecError, match=re.escape(message)):
        evaluate([broken, *train[1:]], train, load_task(task), encoder, rounds=1)


def user_task(downstream: dict) -> dict:
    """A task of one's own, not in the catalogue: a headline and a note, labeled by the headline's topic."""
    return {
        "name": "topic_of_headline",
        "description": "Each example is a headline and a short note; the label is the headline's topic.",
        "fields": {"headline": "A news headline.", "note": "A short note about anything."},
        "labels": [
            {"value": "cooking", "means": "About food."},
            {"value": "astronomy", "means": "About space."},
        ],
        "context": "A newspaper section.",
        "seed": {"description": "A headline.", "field": "headline"},
        "correction": "Read the headline.",
        "downstream": downstream,
    }


def test_a_task_of_ones_own_is_read_as_its_spec_declares(encoder):
    train, test = [], []
    for i, (cook, star) in enumerate(zip(COOKING, ASTRONOMY, strict=True)):
        for headline, label in ((cook, "cooking"), (star, "astronomy")):
            (test if i % 2 else train).append(
                {"headline": headline, "note": "Something happened.", "label": label}
            )
    reads_headline = parse_spec(user_task({"inputs": ["headline"]}))
    reads_note = parse_spec(user_task({"inputs": ["note"]}))
    assert evaluate(train, test, reads_headline, encoder, rounds=1).accuracy >= 0.9
    assert evaluate(train, test, reads_note, encoder, rounds=1).accuracy <= 0.6  # the note says nothing


@pytest.mark.parametrize(
    ("task", "train_split"),
    [("rte", "train"), ("copa", "train"), ("wic", "train"), ("boolq", "train_fewglue32")],
)
def test_real_superglue_layouts(task, train_split, encoder):
    def read(split: str, count: int) -> list[dict]:
        lines = shared_data(task, split).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines[:count]]

    result = evaluate(read(train_split, 16), read("val", 12), load_task(task), encoder, rounds=2)
    assert (result.n_train, result.n_test) == (16, 12)
    assert 0 <= result.ci_low <= result.accuracy <= result.ci_high <= 1
