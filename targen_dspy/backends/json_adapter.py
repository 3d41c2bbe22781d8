"""DSPy's JSONAdapter for hosted and served models, with its system message built once per signature.

The system message (field descriptions, the JSON structure, the instruction) depends on the signature
alone, yet DSPy 3.4 builds it again for every call: about a tenth of a run's client CPU per call.
"""

from __future__ import annotations

import functools

import dspy


class SignatureCachedJSONAdapter(dspy.JSONAdapter):
    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        return _system_message(signature)


@functools.lru_cache(maxsize=512)  # signatures are classes: a run has a few dozen at most
def _system_message(signature: type[dspy.Signature]) -> str:
    return dspy.JSONAdapter().format_system_message(signature)
