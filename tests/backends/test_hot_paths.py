"""DSPy's per-call look-ups, memoized inside a run: the same answers, one scan per model, one
TypeAdapter per type, and DSPy's own functions back afterwards."""

import datetime
import enum

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


class Colour(str, enum.Enum):
    RED = "red"


class Shouting(str):
    def __str__(self) -> str:
        return self.upper()


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "",
        3,
        2.5,
        float("inf"),
        True,
        None,
        ["a", 1],
        {"k": [1, {"x": "y"}]},
        datetime.date(2026, 1, 2),
    ]
    + [Opaque(), Colour.RED, Shouting("quiet")],  # a str subclass is not a plain string: pydantic's form
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


def _lms() -> list[dspy.LM]:
    """LMs whose backends DSPy chooses differently: native with a server of one's own, native hosted,
    forced to litellm, a timeout as a plain number, a client setting that sends the call to litellm."""
    return [
        dspy.LM("openai/a-server-of-ones-own", api_base="http://127.0.0.1:9/v1", api_key="k"),
        dspy.LM("openai/gpt-4o-mini", api_key="k", temperature=0.3),
        dspy.LM("anthropic/claude-3-5-haiku-latest", engine="litellm"),
        dspy.LM("openai/gpt-4o-mini", timeout=30),
        dspy.LM("openai/gpt-4o-mini", organization="org"),
    ]


def test_backend_selection_capabilities_and_route_are_dspys_for_each_configuration(monkeypatch):
    from dspy.clients.backend_selection import select_backend
    from dspy.clients.capabilities import _capabilities, resolve

    for options in (None, {"api_base": "http://127.0.0.1:8/v1"}, {"temperature": 0.1}):
        for lm in _lms():
            for _ in range(2):  # the second answer comes from memory
                assert hot_paths.memoized_select_backend(lm, options) == select_backend(lm, options)
                assert hot_paths.memoized_capabilities(lm, options) == _capabilities(lm, options)
                assert hot_paths.memoized_resolve(lm) == resolve(lm)
    # an environment variable DSPy reads sends the same LM to litellm: read at the start of a run
    lm = _lms()[1]
    with hot_paths.memoized_dspy_lookups():
        assert hot_paths.memoized_select_backend(lm).native
    monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:7/v1")
    with hot_paths.memoized_dspy_lookups():
        assert hot_paths.memoized_select_backend(lm) == select_backend(lm)
        assert not select_backend(lm).native


def test_each_caller_gets_its_own_clients_and_unplain_settings_are_left_to_dspy():
    from dspy.clients.backend_selection import select_backend

    lm = _lms()[0]
    hot_paths.memoized_select_backend(lm).clients["api_key"] = "changed"
    assert hot_paths.memoized_select_backend(lm).clients["api_key"] == "k"
    headers = dspy.LM("openai/gpt-4o-mini", api_key="k", headers={"X-Team": "a"})
    assert hot_paths._configuration(headers) is None
    assert hot_paths.memoized_select_backend(headers) == select_backend(headers)


def test_dspy_routes_through_the_memos_inside_a_run_only():
    import dspy.clients.execution

    originals = (dspy.clients.execution.select_backend, dspy.clients.capabilities._capabilities)
    with hot_paths.memoized_dspy_lookups():
        assert dspy.clients.execution.select_backend is hot_paths.memoized_select_backend
        assert dspy.clients.capabilities.select_backend is hot_paths.memoized_select_backend
        assert dspy.clients.capabilities._capabilities is hot_paths.memoized_capabilities
        assert dspy.clients.capabilities.resolve is hot_paths.memoized_resolve
        hot_paths.memoized_select_backend(_lms()[0])
        assert hot_paths._selections
    assert (dspy.clients.execution.select_backend, dspy.clients.capabilities._capabilities) == originals
    with hot_paths.memoized_dspy_lookups():
        assert not hot_paths._selections  # a run chooses afresh


@pytest.mark.parametrize("timeout", [None, 30, 2.5])
def test_timeouts_are_dspys(timeout):
    from dspy.clients.engines.lm15_engine import timeouts_for

    assert hot_paths.memoized_timeouts_for(timeout) == timeouts_for(timeout)
    assert hot_paths.memoized_timeouts_for(timeout) is hot_paths.memoized_timeouts_for(timeout)


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), "30"])
def test_a_timeout_dspy_refuses_is_refused_every_time(timeout):
    from dspy.clients.engines.lm15_engine import timeouts_for

    with pytest.raises((ValueError, TypeError)) as dspys:
        timeouts_for(timeout)
    for _ in range(2):
        with pytest.raises(dspys.type, match=str(dspys.value)[:20]):
            hot_paths.memoized_timeouts_for(timeout)


@pytest.mark.parametrize("task", ["rte", "copa", "wic", "record"])
def test_signature_fields_are_dspys_picked_once_per_class(task):
    from dspy.signatures.signature import SignatureMeta

    from targen_dspy.signatures import load_task, step_signatures

    dspys = SignatureMeta._get_fields_with_type
    signatures = list(step_signatures(load_task(task)).values())
    with hot_paths.memoized_dspy_lookups():
        assert SignatureMeta._get_fields_with_type is hot_paths.fields_with_type
        for signature in signatures * 2:
            for kind in ("input", "output"):
                assert signature._get_fields_with_type(kind) == dspys(signature, kind)
            assert signature.fields == {**dspys(signature, "input"), **dspys(signature, "output")}
        assert len(hot_paths._picked) == 2 * len(signatures)
        # each caller gets a dict of its own: changing one changes no later answer
        signatures[0].input_fields.clear()
        assert signatures[0].input_fields == dspys(signatures[0], "input")
    assert SignatureMeta._get_fields_with_type is dspys and not hot_paths._picked


def test_a_signature_with_new_fields_is_read_afresh():
    class Ask(dspy.Signature):
        """Answer."""

        question: str = dspy.InputField()
        answer: str = dspy.OutputField()

    with hot_paths.memoized_dspy_lookups():
        assert list(Ask.output_fields) == ["answer"]
        longer = Ask.append("confidence", dspy.OutputField(), type_=float)  # DSPy makes a new class
        assert list(longer.output_fields) == ["answer", "confidence"]
        assert list(Ask.output_fields) == ["answer"]
        # the same class with its fields replaced in place (as pydantic's model_rebuild does)
        Ask.__pydantic_fields__ = {"question": Ask.__pydantic_fields__["question"]}
        assert Ask.output_fields == {} and list(Ask.input_fields) == ["question"]


def test_the_field_memo_is_bounded(monkeypatch):
    from targen_dspy.signatures import load_task, step_signatures

    monkeypatch.setattr(hot_paths, "_PICKED", 3)
    signatures = list(step_signatures(load_task("rte")).values())
    with hot_paths.memoized_dspy_lookups():
        for signature in signatures:
            assert signature.input_fields
            assert len(hot_paths._picked) <= 3


def test_a_run_makes_no_history_no_trace_and_no_input_type_checks():
    """DSPy's input type check only logs a warning; a run's calls skip it (RUN_SETTINGS)."""
    import logging

    class Ask(dspy.Signature):
        """Answer."""

        count: int = dspy.InputField()
        answer: str = dspy.OutputField()

    lm = dspy.utils.DummyLM([{"answer": "a"}] * 2)
    warned = []
    handler = logging.Handler()
    handler.emit = lambda record: warned.append(record.getMessage())
    logger = logging.getLogger("dspy.predict.predict")
    logger.addHandler(handler)
    try:
        with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):  # the format DummyLM answers in
            with dspy.context(**hot_paths.RUN_SETTINGS):
                dspy.Predict(Ask)(count="not a number")
                assert not warned and dspy.settings.trace is None and dspy.settings.disable_history
            dspy.Predict(Ask)(count="not a number")  # outside a run DSPy warns as usual
    finally:
        logger.removeHandler(handler)
    assert len(warned) == 1 and "Type mismatch" in warned[0]
