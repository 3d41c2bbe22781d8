"""Which fields of a record are its text: from a spec, or from the records themselves."""

from targen_dspy.text.fields import record_text, text_fields
from tests.analysis.test_records import RUN_RECORD


def test_a_specs_text_fields_are_the_free_text_ones(copa, rte):
    assert text_fields(rte) == ["premise", "hypothesis"]
    assert text_fields(copa) == ["premise", "choice1", "choice2"]  # not question (cause/effect)


def test_without_a_spec_the_string_fields_but_bookkeeping_and_label():
    real = {"word": "class", "sentence1": "a", "sentence2": "b", "label": True, "idx": 0, "start1": 3}
    assert text_fields(None, [RUN_RECORD]) == ["premise", "hypothesis"]
    assert text_fields(None, [real]) == ["word", "sentence1", "sentence2"]
    assert text_fields(None, [real, {**real, "word": 7}]) == ["sentence1", "sentence2"]  # strings in all


def test_record_text_is_one_field_a_line():
    text = record_text(RUN_RECORD, ["premise", "hypothesis"])
    assert text == "The museum opened in 1994.\nThe museum is old."
