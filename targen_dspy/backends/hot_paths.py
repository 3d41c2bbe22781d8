"""Seven of DSPy 3.4's per-call costs, memoized for the length of a run (same answers, less client CPU).

- DSPy looks the model up in its metadata snapshot three times per call (twice to price the answer,
  once for the model's capabilities). For a name the snapshot does not know, such as the model name of
  a vLLM or llama.cpp server, each look-up scans all of its 4,000+ entries: about half of a run's client
  CPU per call. The snapshot does not change while a process runs: one look-up per (provider, model)
  is enough, and the answer is copied per call as DSPy's own function does.
- Every input value an adapter formats builds a new pydantic TypeAdapter for the value's type (about
  a quarter of what is left); one per type is enough, and none for a plain string.
- Its HTTP transport reads the proxy settings from the whole environment for every request (about a
  tenth of what is left then); they are read once per run.
- JSONAdapter builds a pydantic model of the signature's outputs and its JSON schema for every call, to
  ask for structured output: a third of a batch run's client CPU, which replays calls (issue 18); one per
  signature is enough, copied per call.
- It chooses the backend of an LM (native or litellm, the provider's route, the client settings) from the
  LM's configuration two or three times per call, and derives the model's capabilities (which decide
  the adapter's response format) from that once per call: about a tenth of a run's client CPU per call
  against a local server. Both depend on the model string, engine, client settings and three
  environment variables only (read once per run, like the proxy settings), so one answer per such
  configuration is enough; an LM with declared providers or client settings that are not plain values
  (an httpx timeout, headers) is left to DSPy.
- It converts the LM's `timeout` setting into the engine's timeouts for every call (a frozen value, about
  a hundredth of a call's client CPU): once per number of seconds.
- A signature's `input_fields` and `output_fields` are picked out of all its fields again at every look-up,
  two dozen per call (the adapter, the predictor and the parser each ask), in proportion to the number of
  fields: a few percent of a call with TarGEN's six to eight fields. A signature class does not change its
  fields (DSPy makes a new class for new ones): once per class, remembered with the fields it was read
  from, and each caller gets a dict of its own.

`experiments/bench_engine.py` measures the effect. The originals come back when the run ends.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import dspy._vendor.lm15.transports._proxy
import dspy.adapters.base
import dspy.adapters.json_adapter
import dspy.adapters.utils
import dspy.clients.capabilities
import dspy.clients.costs
import dspy.clients.execution
from dspy.clients.backend_selection import CLIENT_KEYS, BackendSelection, select_backend
from dspy.clients.capabilities import Capabilities, _capabilities, resolve
from dspy.clients.engines.lm15_engine import timeouts_for
from dspy.clients.model_metadata import model_info
from dspy.signatures.signature import SignatureMeta
from pydantic import TypeAdapter


@functools.lru_cache(maxsize=1024)
def _looked_up(provider: str, model: str, namespaces: tuple[str, ...] | None) -> dict[str, Any]:
    return model_info(provider, model, namespaces=namespaces)


def memoized_model_info(provider: str, model: str, *, namespaces: Any = None) -> dict[str, Any]:
    """DSPy's `model_info`, answered from memory after the first look-up of a (provider, model)."""
    key = None if namespaces is None else tuple(namespaces)
    return copy.deepcopy(_looked_up(provider, model, key))


@functools.lru_cache(maxsize=256)
def _type_adapter(kind: type) -> TypeAdapter:
    return TypeAdapter(kind)


def serialize_for_json(value: Any) -> Any:
    """DSPy's `serialize_for_json`, with one TypeAdapter per type instead of one per value; a plain `str`
    (most of TarGEN's inputs) is its own JSON form and skips pydantic."""
    if type(value) is str:
        return value
    try:
        return _type_adapter(type(value)).dump_python(value, mode="json", fallback=str)
    except Exception:  # as DSPy's: a value pydantic cannot handle is shown as its string
        return str(value)


@functools.lru_cache(maxsize=512)  # signatures are classes; one built per seed (a `contains` schema) is new
def structured_outputs_response_format(signature: type, use_native_function_calling: bool = True) -> Any:
    """DSPy's structured-output `response_format` of a signature (a pydantic model whose
    `model_json_schema` gives the schema), built once per signature; each caller gets a schema of its
    own, as from DSPy's model built per call."""
    model = _BUILD_RESPONSE_FORMAT(signature, use_native_function_calling)
    schema = model.model_json_schema()
    model.model_json_schema = lambda *args, **kwargs: copy.deepcopy(schema)
    return model


@functools.lru_cache(maxsize=1)
def _environment_proxies() -> tuple[tuple[str, str], ...]:
    return tuple(urllib.request.getproxies().items())


def getproxies() -> dict[str, str]:
    """urllib's `getproxies`, read from the environment once per run instead of once per request."""
    return dict(_environment_proxies())


_STRUCTURED = "_get_structured_outputs_response_format"
_BUILD_RESPONSE_FORMAT = getattr(dspy.adapters.json_adapter, _STRUCTURED)
_PLAIN = (str, int, float, bool, type(None))


def _configuration(lm: Any, options: dict[str, Any] | None = None) -> tuple | None:
    """All that DSPy's backend selection reads of `lm`, its call `options` and the environment, as a
    hashable key; None when that is not all plain values (then DSPy answers every time)."""
    spec = getattr(lm, "_engine_spec", None)
    if not isinstance(spec, str) or getattr(lm, "_providers", ()):
        return None
    own = tuple((k, v) for k, v in lm.kwargs.items() if k in CLIENT_KEYS)
    given = tuple((k, v) for k, v in (options or {}).items() if k in CLIENT_KEYS)
    if not all(isinstance(v, _PLAIN) for _, v in own + given):
        return None
    return spec, lm.model, lm.model_type, own, given, _environment(lm.model.split("/", 1)[0].upper())


@functools.lru_cache(maxsize=64)
def _environment(prefix: str) -> tuple[str | None, ...]:
    """The variables select_backend reads for a model prefix, read once per run like the proxy settings."""
    return tuple(os.environ.get(name) for name in (f"{prefix}_API_BASE", f"{prefix}_BASE_URL", "XAI_API_KEY"))


_selections: dict[tuple, BackendSelection] = {}
_capability_answers: dict[tuple, Capabilities] = {}
_routes: dict[tuple, Any] = {}


def memoized_select_backend(lm: Any, options: dict[str, Any] | None = None) -> BackendSelection:
    """DSPy's `select_backend`, answered from memory for a configuration it has answered before; each
    caller gets its own `clients` dict, as from DSPy."""
    key = _configuration(lm, options)
    if key is None:
        return select_backend(lm, options)
    if (selection := _selections.get(key)) is None:
        selection = _selections[key] = select_backend(lm, options)
    return BackendSelection(selection.native, selection.resolution, dict(selection.clients))


def memoized_capabilities(lm: Any, options: dict[str, Any] | None = None) -> Capabilities:
    """DSPy's `_capabilities` (an immutable answer), from memory for a configuration seen before."""
    key = _configuration(lm, options)
    if key is None:
        return _capabilities(lm, options)
    if (answer := _capability_answers.get(key)) is None:
        answer = _capability_answers[key] = _capabilities(lm, options)
    return answer


def memoized_resolve(lm: Any) -> Any:
    """DSPy's `resolve` (the model's route, an immutable answer), from memory for a model seen before."""
    key = _configuration(lm)
    if key is None:
        return resolve(lm)
    if (route := _routes.get(key)) is None:
        route = _routes[key] = resolve(lm)
    return route


@functools.lru_cache(maxsize=64)
def _timeouts(seconds: float) -> Any:
    return timeouts_for(seconds)


def memoized_timeouts_for(timeout: Any) -> Any:
    """DSPy's `timeouts_for`; for a number of seconds (or None) from memory after the first time."""
    if timeout is None or (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)):
        return _timeouts(timeout)
    return timeouts_for(timeout)


# DSPy's settings for a run (`dspy.context(**RUN_SETTINGS)`, with the memoized look-ups): no per-call
# history and no trace (DSPy keeps the last 10,000 predictions, inputs included: both would grow with the
# run; the meter keeps counts instead), and no check of every input value against its field's type, which
# only logs a warning: TarGEN's program makes its inputs itself, and with its typed fields (labels, lists)
# the check is a few percent of a call's client CPU.
RUN_SETTINGS: dict[str, Any] = {"disable_history": True, "trace": None, "warn_on_type_mismatch": False}

_FIELDS_WITH_TYPE = SignatureMeta._get_fields_with_type
# (signature class, field type): the fields dict the answer was picked from, and the answer. Emptied at the
# start and end of a run, and when full: a run has a few dozen signature classes, but a constrained field
# makes one per seed (`signatures.steps.constrain`).
_picked: dict[tuple[type, str], tuple[Any, dict[str, Any]]] = {}
_PICKED = 1024


def fields_with_type(signature: type, field_type: str) -> dict[str, Any]:
    """DSPy's `_get_fields_with_type` (a signature's input or output fields), picked once per signature
    class; a class whose fields were replaced (pydantic's `model_rebuild`) is read afresh."""
    fields = signature.__dict__.get("__pydantic_fields__")
    known = _picked.get((signature, field_type))
    if known is None or known[0] is not fields:
        if fields is None:  # not a complete pydantic model: DSPy's answer, not remembered
            return _FIELDS_WITH_TYPE(signature, field_type)
        if len(_picked) >= _PICKED:
            _picked.clear()
        known = _picked[signature, field_type] = (fields, _FIELDS_WITH_TYPE(signature, field_type))
    return dict(known[1])


# Where DSPy's calls find each function: the modules that imported it by name.
_REPLACEMENTS = (
    (dspy.clients.costs, "model_info", memoized_model_info),
    (dspy.clients.capabilities, "model_info", memoized_model_info),
    (dspy.adapters.utils, "serialize_for_json", serialize_for_json),
    (dspy.adapters.json_adapter, "serialize_for_json", serialize_for_json),
    (dspy.adapters.base, "serialize_for_json", serialize_for_json),
    (dspy._vendor.lm15.transports._proxy, "getproxies", getproxies),
    (dspy.adapters.json_adapter, _STRUCTURED, structured_outputs_response_format),
    (dspy.clients.execution, "select_backend", memoized_select_backend),
    (dspy.clients.capabilities, "select_backend", memoized_select_backend),
    (dspy.clients.capabilities, "_capabilities", memoized_capabilities),
    (dspy.clients.capabilities, "resolve", memoized_resolve),
    (dspy.clients.execution, "timeouts_for", memoized_timeouts_for),
    (SignatureMeta, "_get_fields_with_type", fields_with_type),
)


@contextlib.contextmanager
def memoized_dspy_lookups() -> Iterator[None]:
    """Inside, DSPy's calls use the memoized functions above; the originals come back after."""
    _environment_proxies.cache_clear()  # a run reads the proxy settings of its own start
    _environment.cache_clear()
    for answers in (_selections, _capability_answers, _routes, _picked):
        answers.clear()  # and chooses backends afresh
    originals = [getattr(module, name) for module, name, _ in _REPLACEMENTS]
    for module, name, replacement in _REPLACEMENTS:
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for (module, name, _), original in zip(_REPLACEMENTS, originals, strict=True):
            setattr(module, name, original)
        _picked.clear()  # holds signature classes
