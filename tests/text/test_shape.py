"""The task-shape check on hand-made records: the junk the embedded model wrote before issue 17 fails it,
task-shaped instances pass."""

import json

import pytest

from targen_dspy.signatures import load_task
from targen_dspy.text.shape import ShapeCheck, passing_share

PREMISE = "The museum, which opened in 1998 in Porto, lends paintings to schools across the region."
GOOD_RTE = {
    "context": "a regional newspaper's culture desk",
    "seed": PREMISE,
    "premise": PREMISE,
    "hypothesis": "The museum is in Porto.",
    "label": "entailment",
}


def problems(task, **changes):
    spec = load_task(task)
    return ShapeCheck(spec).record({**GOOD_RTE, **changes} if task == "rte" else changes)


def test_a_task_shaped_rte_record_passes():
    assert problems("rte") == []


@pytest.mark.parametrize(
    ("changes", "found"),
    [
        ({"premise": "Alejandro", "seed": "Alejandro"}, "premise has 1 words, not 4 to 40"),
        ({"hypothesis": "not_entailment"}, "hypothesis is a label name"),
        ({"hypothesis": "Not entailment."}, "hypothesis is a label name"),
        (
            {"hypothesis": "The hypothesis follows from the premise alone."},
            "hypothesis copies the task's own text",
        ),
        ({"hypothesis": "The hypothesis does not follow from the premise"}, "copies the task's own text"),
        ({"hypothesis": PREMISE}, "hypothesis is the same text as premise"),
        ({"hypothesis": PREMISE.replace("which opened", "opened").rstrip(".")}, "the same text as premise"),
        ({"context": "true"}, "context has 1 words"),
        ({"context": "A"}, "context has 1 words"),
        ({"seed": "1.1.1"}, "seed has 1 words"),
        ({"hypothesis": ""}, "hypothesis is empty"),
        ({"hypothesis": " ".join(["word"] * 16)}, "hypothesis has 16 words, not 3 to 15"),
        (
            {"hypothesis": "The museum is a pilot. This,included,Zorvath,whois,a."},
            "joins words without spaces",
        ),
        ({"hypothesis": "the_door_was_closed when I left"}, "hypothesis joins words without spaces"),
    ],
)
def test_junk_rte_records_fail_with_the_reason(changes, found):
    assert any(found in problem for problem in problems("rte", **changes))


def test_a_text_naming_a_field_talks_about_the_task():
    spec = load_task("copa")
    fields = {"premise": "The light in the kitchen was very bright.", "question": "cause"}
    meta = ShapeCheck(spec).fields({**fields, "choice1": "choice2 is the more plausible one"}, spec.fields)
    assert "choice1 names the task's field 'choice2'" in meta
    plain = {**fields, "choice1": "The bulb was new.", "choice2": "Someone asked a question."}
    assert ShapeCheck(spec).fields(plain, spec.fields) == []  # "question" is a word as well as a field


def test_numbers_and_pairs_with_commas_are_not_joined_words():
    assert problems("rte", hypothesis="The museum has 4,000,000 visitors.") == []
    assert problems("rte", hypothesis="The museum lends paintings to Porto,Braga.") == []


def test_a_short_phrase_that_shares_words_with_the_spec_is_no_copy():
    # the spec's context description names "a news beat" and "sport" as examples
    assert problems("rte", context="a news beat") == []
    assert problems("rte", context="sport and business") == []


def test_example_text_copied_whole_is_a_copy_but_a_short_shared_word_is_not():
    spec = load_task("wsc")
    check = ShapeCheck(spec)
    assert check.copies_spec("The trophy would not fit into the brown suitcase because it was too big.")
    assert not check.copies_spec("it")  # a pronoun the example also uses


def test_structured_seed_parts_are_checked():
    spec = load_task("wic")
    check = ShapeCheck(spec)
    good = {"word": "bank", "sense1": "the land beside a river", "sense2": "a place that keeps money"}
    assert check.seed(json.dumps(good)) == []
    assert any("does not match" in p for p in check.seed(json.dumps({**good, "word": "Bank1"})))
    assert any(
        "copies" in p
        for p in check.seed(json.dumps({**good, "sense1": spec.seed.parts["sense1"].description}))
    )
    assert check.seed("1.1.1") == ["seed is not a JSON object of its parts: '1.1.1'"]


def test_fields_chosen_from_a_set_may_repeat_and_are_not_bounded():
    spec = load_task("copa")
    record = {
        "context": "a busy kitchen at dinner time",
        "seed": "The soup boiled over on the stove.",
        "premise": "The soup boiled over on the stove.",
        "question": "effect",
        "choice1": "The cook wiped the stove clean.",
        "choice2": "The cook planted tomatoes outside.",
        "label": 0,
    }
    assert ShapeCheck(spec).record(record) == []
    assert ShapeCheck(spec).record({**record, "choice2": record["choice1"]}) == [
        "choice2 is the same text as choice1"
    ]


def test_ticket_seed_without_a_field_needs_two_words():
    spec = load_task("ticket_urgency")
    check = ShapeCheck(spec)
    assert check.seed("Login fails") == []
    assert check.seed("login") == ["seed has 1 words, not at least 2"]


def test_passing_share_counts_records():
    spec = load_task("rte")
    assert passing_share(spec, [GOOD_RTE, {**GOOD_RTE, "context": "true"}]) == (1, 2)


def test_a_text_that_loops_fails():
    loop = "The aliens went to Mars to search for life, but they went to Mars to search for life, " * 3
    assert any("repeats itself" in p for p in problems("rte", premise=loop, seed=loop))
