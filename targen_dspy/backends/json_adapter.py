"""DSPy's JSONAdapter for hosted and served models, with what depends on the signature and its demos alone
formatted once instead of for every call.

DSPy 3.4 builds the system message (field descriptions, the JSON structure, the instruction) and the
demos' messages again for every call: about a tenth of a run's client CPU per call each (the demos' JSON
is written by Python's pure-Python encoder, with indentation). So it does the reminder of the output
fields that ends the user message, and its search of the fields for a history or tools field (a few
percent more each). The texts are the same, so the prompts and the cache keys are too.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

import dspy

_FORMATTED_DEMOS = 64  # signatures with demos kept; a run has a handful (the correction step's)


class SignatureCachedJSONAdapter(dspy.JSONAdapter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        # per signature: a deep copy of the demos last formatted for it, and their messages
        self._demos: dict[type[dspy.Signature], tuple[list[Any], list[dict[str, Any]]]] = {}

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        return _system_message(signature)

    def user_message_output_requirements(self, signature: type[dspy.Signature]) -> str:
        return _output_requirements(signature)

    # Which field holds the conversation history or the tools, looked for per call by DSPy: per signature.
    def _get_history_field_name(self, signature: type[dspy.Signature]) -> str | None:
        return _special_fields(signature)[0]

    def _get_tool_call_input_field_name(self, signature: type[dspy.Signature]) -> str | None:
        return _special_fields(signature)[1]

    def _get_tool_call_output_field_name(self, signature: type[dspy.Signature]) -> str | None:
        return _special_fields(signature)[2]

    def format_demos(self, signature: type[dspy.Signature], demos: list[Any]) -> list[dict[str, Any]]:
        """DSPy's messages for `demos`, formatted again only when the demos are not equal (values and all)
        to those last formatted for this signature; each caller gets its own message dicts."""
        if not demos:
            return super().format_demos(signature, demos)
        with self._lock:
            formatted = self._demos.get(signature)
        if formatted is None or formatted[0] != demos:
            formatted = copy.deepcopy(demos), super().format_demos(signature, demos)
            with self._lock:
                if len(self._demos) >= _FORMATTED_DEMOS:
                    self._demos.clear()
                self._demos[signature] = formatted
        return [dict(message) for message in formatted[1]]


@functools.lru_cache(maxsize=512)  # signatures are classes: a run has a few dozen at most
def _system_message(signature: type[dspy.Signature]) -> str:
    return dspy.JSONAdapter().format_system_message(signature)


@functools.lru_cache(maxsize=512)
def _output_requirements(signature: type[dspy.Signature]) -> str:
    return dspy.JSONAdapter().user_message_output_requirements(signature)


@functools.lru_cache(maxsize=512)
def _special_fields(signature: type[dspy.Signature]) -> tuple[str | None, str | None, str | None]:
    """The names of `signature`'s history field, tools input field and tool calls output field (or None)."""
    adapter = dspy.JSONAdapter()
    return (
        adapter._get_history_field_name(signature),
        adapter._get_tool_call_input_field_name(signature),
        adapter._get_tool_call_output_field_name(signature),
    )
