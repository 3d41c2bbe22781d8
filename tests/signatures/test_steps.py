from typing import Literal, get_args

from targen_dspy.signatures import correction_signature, instance_signature


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
