"""The JSON adapter of remote models: DSPy's messages exactly, the system message built once per
signature, the demos' messages once per signature and demos."""

import dspy
import pytest

from targen_dspy.backends import adapter_for
from targen_dspy.backends.json_adapter import (
    SignatureCachedJSONAdapter,
    _output_requirements,
    _special_fields,
    _system_message,
)
from targen_dspy.program.correction import correction_demos
from targen_dspy.signatures import load_task, step_signatures


@pytest.mark.parametrize("task", ["rte", "copa", "wic", "record"])
def test_messages_are_dspys_and_each_system_message_is_built_once(task):
    adapter = adapter_for("openai/any")
    assert isinstance(adapter, SignatureCachedJSONAdapter)
    _system_message.cache_clear()
    for signature in step_signatures(load_task(task)).values():
        expected = dspy.JSONAdapter().format_system_message(signature)
        assert all(adapter.format_system_message(signature) == expected for _ in range(3))
    info = _system_message.cache_info()
    assert (info.misses, info.hits) == (4, 8)


def test_a_changed_instruction_is_a_new_signature_and_a_new_message():
    signature = step_signatures(load_task("rte"))["correction"]
    tuned = signature.with_instructions("Judge strictly.")
    adapter = SignatureCachedJSONAdapter()
    assert "Judge strictly." in adapter.format_system_message(tuned)
    assert "Judge strictly." not in adapter.format_system_message(signature)


@pytest.mark.parametrize("task", ["rte", "copa", "wic", "record"])
def test_whole_prompts_with_demos_are_dspys_and_demos_are_formatted_once(task, monkeypatch):
    spec = load_task(task)
    signature, demos = step_signatures(spec)["correction"], correction_demos(spec)
    assert demos
    inputs = {name: f"a {name}" for name in signature.input_fields}
    adapter, formatted = SignatureCachedJSONAdapter(), []
    original = dspy.JSONAdapter.format_demos
    monkeypatch.setattr(dspy.JSONAdapter, "format_demos", lambda *a: formatted.append(1) or original(*a))
    for _ in range(3):
        assert adapter.format(signature, demos, inputs) == dspy.JSONAdapter().format(signature, demos, inputs)
    assert len(formatted) == 1 + 3  # the cached adapter once, DSPy's own three times


def test_changed_demos_are_formatted_again_and_callers_cannot_change_the_cache():
    spec = load_task("rte")
    signature = step_signatures(spec)["correction"]
    demos, adapter = correction_demos(spec), SignatureCachedJSONAdapter()
    first = adapter.format_demos(signature, demos)
    first[0]["content"] = "changed by a caller"
    assert adapter.format_demos(signature, demos) == dspy.JSONAdapter().format_demos(signature, demos)
    demos[0]["corrected_label"] = "a label changed in place"  # the same list and Example, new value
    again = adapter.format_demos(signature, demos)
    assert again == dspy.JSONAdapter().format_demos(signature, demos)
    assert "a label changed in place" in again[1]["content"]
    shorter = demos[:1]
    assert adapter.format_demos(signature, shorter) == dspy.JSONAdapter().format_demos(signature, shorter)
    assert adapter.format_demos(signature, []) == []


@pytest.mark.parametrize("task", ["rte", "copa", "wic", "record"])
def test_output_reminder_is_dspys_and_built_once_per_signature(task):
    adapter = SignatureCachedJSONAdapter()
    _output_requirements.cache_clear()
    signatures = list(step_signatures(load_task(task)).values())
    for signature in signatures * 3:
        expected = dspy.JSONAdapter().user_message_output_requirements(signature)
        assert adapter.user_message_output_requirements(signature) == expected
    assert _output_requirements.cache_info().misses == len(signatures)
    inputs = {name: f"a {name}" for name in signatures[0].input_fields}
    assert adapter.format(signatures[0], [], inputs) == dspy.JSONAdapter().format(signatures[0], [], inputs)


class WithTools(dspy.Signature):
    """Answer with the tools."""

    history: dspy.History = dspy.InputField()
    question: str = dspy.InputField()
    tools: list[dspy.Tool] = dspy.InputField()
    answer: str = dspy.OutputField()
    calls: dspy.ToolCalls = dspy.OutputField()


@pytest.mark.parametrize("signature", [WithTools, *step_signatures(load_task("copa")).values()])
def test_history_and_tool_fields_are_found_as_dspy_finds_them(signature):
    ours, dspys = SignatureCachedJSONAdapter(), dspy.JSONAdapter()
    for _ in range(2):  # the second answer comes from memory
        assert ours._get_history_field_name(signature) == dspys._get_history_field_name(signature)
        assert ours._get_tool_call_input_field_name(signature) == dspys._get_tool_call_input_field_name(
            signature
        )
        assert ours._get_tool_call_output_field_name(signature) == dspys._get_tool_call_output_field_name(
            signature
        )
    if signature is WithTools:
        assert _special_fields(signature) == ("history", "tools", "calls")
