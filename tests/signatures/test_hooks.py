import pytest

from targen_dspy.signatures.hooks import cloze_fields, pronoun_spans, word_offsets
from targen_dspy.signatures.spec import InconsistentInstance


def test_word_offsets_point_at_the_word_in_any_case():
    fields = word_offsets(
        {"word": "bank", "sentence1": "Banks? No: the bank.", "sentence2": "Bank it."}, True
    )
    assert fields["sentence1"][fields["start1"] : fields["end1"]] == "bank"  # not "Banks"
    assert (fields["start2"], fields["end2"]) == (0, 4)


@pytest.mark.parametrize(
    ("sentence1", "sentence2", "message"),
    [
        ("The bank.", "The riverbank.", "does not occur"),
        ("The bank.", " the BANK. ", "same sentence"),
    ],
)
def test_word_offsets_refuse_what_cannot_be_consistent(sentence1, sentence2, message):
    with pytest.raises(InconsistentInstance, match=message):
        word_offsets({"word": "bank", "sentence1": sentence1, "sentence2": sentence2}, False)


def test_pronoun_spans_locate_candidate_then_other_then_pronoun():
    generated = {
        "text": "It rained. (The dog) chased the cat, so it hid.",
        "span1_text": "the dog",
        "other_candidate": "the cat",
        "span2_text": "it",
    }
    fields = pronoun_spans(generated, True)
    tokens = fields["text"].split()
    assert (fields["span1_text"], fields["span2_text"]) == ("The dog", "it")  # as the text writes them
    assert (
        tokens[fields["span1_index"]] == "(The" and tokens[fields["span2_index"]] == "it"
    )  # not "It rained"
    with pytest.raises(InconsistentInstance, match="after"):
        pronoun_spans({**generated, "text": "It saw the dog and the cat."}, True)


def test_cloze_fields_make_the_answers_entities_with_spans():
    generated = {
        "passage": "Ana Reyes left Porto. ana reyes joined the Ana Reyes Trust in Porto.",
        "query": "@placeholder signed for three years.",
        "answer": "Ana Reyes",
        "person": "Ana Reyes",
        "place": "Porto",
        "organization": "Ana Reyes Trust",
    }
    fields = cloze_fields(generated, "person")
    assert fields["entities"] == ["Ana Reyes", "Porto", "ana reyes", "Ana Reyes Trust"]
    assert fields["answers"] == ["Ana Reyes", "ana reyes"]
    spans = [(span["start"], span["end"]) for span in fields["entity_spans"]]
    assert spans == [(0, 9), (15, 20), (22, 31), (43, 58), (62, 67)]  # the Trust's, not a "Ana Reyes" in it
    for span in fields["entity_spans"]:
        assert generated["passage"][span["start"] : span["end"]] == span["text"]
    with pytest.raises(InconsistentInstance, match="exactly once"):
        cloze_fields({**generated, "query": "@placeholder met @placeholder."}, "person")
    only_inside = {**generated, "passage": "The Ana Reyes Trust is in Porto."}
    with pytest.raises(InconsistentInstance, match="inside another entity"):
        cloze_fields(only_inside, "person")
