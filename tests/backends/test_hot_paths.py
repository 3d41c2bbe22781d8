"""DSPy's per-call look-ups, memoized inside a run: the same answers, one scan per model, one
TypeAdapter per type, and DSPy's own functions back afterwards."""

import datetime

import dspy.adapters.utils
import dspy.clients.capabilities
import dspy.clients.costs
import pytest
from dspy.clients.model_metadata import model_info

from targen_dspy.backends import hot_paths


def test_inside_the_context_dspy_uses_the_memos_and_after_it_its_own():
    originals = (dspy.clients.costs.model_info, dspy.adapters.utils.serialize_for_json)
    with hot_paths.memoized_dspy_lookups():
        assert dspy.clients.costs.model_info is hot_paths.memoized_model_info
        assert dspy.clients.capabilities.model_info is hot_paths.memoized_model_info
        assert dspy.adapters.utils.serialize_for_json is hot_paths.serialize_for_json
    assert (dspy.clients.costs.model_info, dspy.adapters.utils.serialize_for_json) == originals
    assert dspy.clients.capabilities.model_info is originals[0]


def test_model_info_is_dspys_answer_with_one_look_up_per_model(monkeypatch):
    looked_up = []

    def counting(provider, model, *, namespaces=None):
        looked_up.append((provider, model))
        return model_info(provider, model, namespaces=namespaces)

    hot_paths._looked_up.cache_clear()
    monkeypatch.setattr(hot_paths, "model_info", counting)
    for provider, model in [("openai", "gpt-4o-mini"), ("openai", "a-server-of-ones-own")] * 3:
        assert hot_paths.memoized_model_info(provider, model) == model_info(provider, model)
    assert looked_up == [("openai", "gpt-4o-mini"), ("openai", "a-server-of-ones-own")]
    # each caller gets its own copy: changing one answer changes no later one
    hot_paths.memoized_model_info("openai", "gpt-4o-mini")["input_cost_per_token"] = -1
    assert hot_paths.memoized_model_info("openai", "gpt-4o-mini")["input_cost_per_token"] > 0
    hot_paths._looked_up.cache_clear()


class Opaque:
    def __str__(self) -> str:
        return "opaque"


@pytest.mark.parametrize(
    "value",
    ["text", 3, 2.5, True, None, ["a", 1], {"k": [1, {"x": "y"}]}, datetime.date(2026, 1, 2), Opaque()],
)
def test_serialize_for_json_is_dspys(value):
    original = dspy.adapters.utils.serialize_for_json
    assert hot_paths.serialize_for_json(value) == original(value)


def test_proxy_settings_are_read_once_per_run_and_afresh_by_the_next(monkeypatch):
    import urllib.request

    import dspy._vendor.lm15.transports._proxy as transport_proxy

    monkeypatch.setenv("HTTP_PROXY", "http://first-proxy:3128")
    with hot_paths.memoized_dspy_lookups():
        assert transport_proxy.getproxies() == urllib.request.getproxies()
        monkeypatch.setenv("HTTP_PROXY", "http://second-proxy:3128")
        assert transport_proxy.getproxies()["http"] == "http://first-proxy:3128"  # within one run
    with hot_paths.memoized_dspy_lookups():
        assert transport_proxy.getproxies()["http"] == "http://second-proxy:3128"
    assert transport_proxy.getproxies is urllib.request.getproxies


def test_structured_output_schema_is_dspys_built_once_per_signature():
    from dspy.adapters.json_adapter import _get_structured_outputs_response_format as dspys

    from targen_dspy.signatures import ProposeContexts

    signature = ProposeContexts
    hot_paths.structured_outputs_response_format.cache_clear()
    first = hot_paths.structured_outputs_response_format(signature, True)
    again = hot_paths.structured_outputs_response_format(signature, True)
    assert again is first and hot_paths.structured_outputs_response_format.cache_info().misses == 1
    assert first.model_json_schema() == dspys(signature, True).model_json_schema()
    first.model_json_schema()["properties"].clear()  # a caller that changes its schema changes no other
    assert again.model_json_schema() == dspys(signature, True).model_json_schema()
    hot_paths.structured_outputs_response_format.cache_clear()
