"""The JSON adapter of remote models: DSPy's messages exactly, the system message built once per
signature."""

import dspy
import pytest

from targen_dspy.backends import adapter_for
from targen_dspy.backends.json_adapter import SignatureCachedJSONAdapter, _system_message
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
