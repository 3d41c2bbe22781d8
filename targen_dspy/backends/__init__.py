"""Model backends: `local` (the embedded SmolLM2 through llama.cpp) or any litellm model string."""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the command line reads LOCAL without importing DSPy
    import dspy

    from targen_dspy.backends.local import LlamaCppEngine
    from targen_dspy.signatures.spec import TaskSpec

LOCAL = "local"
_local_engine: LlamaCppEngine | None = None


def local_engine() -> LlamaCppEngine:
    """One in-process model per process: loading it twice would double memory for nothing."""
    from targen_dspy.backends.local import LlamaCppEngine

    global _local_engine
    if _local_engine is None:
        _local_engine = LlamaCppEngine()
        # Freed before the interpreter tears down llama.cpp's bindings, which a later __del__ would need
        # (otherwise "Exception ignored in Llama.__del__" ends the output of every process that used it).
        atexit.register(_local_engine.close)
    return _local_engine


def build_lm(
    model: str = LOCAL,
    *,
    api_base: str | None = None,
    temperature: float = 0.7,
    max_tokens: int = 512,
    cache: bool = True,
    timeout: float = 120.0,
) -> dspy.LM:
    """A dspy.LM for `model`: 'local' or a litellm string. Raises ModelError on a bad name, key or server.

    Retries are left to the run engine (num_retries=0): it backs off with jitter across all workers."""
    import dspy

    from targen_dspy.backends.remote import remote_lm

    if model == LOCAL:
        return dspy.LM(
            "local/smollm2-135m-instruct",
            engine=local_engine(),
            temperature=temperature,
            max_tokens=max_tokens,
            cache=cache,
            num_retries=0,
        )
    return remote_lm(
        model,
        api_base,
        temperature=temperature,
        max_tokens=max_tokens,
        cache=cache,
        num_retries=0,
        timeout=timeout,
    )


def adapter_for(model: str, spec: TaskSpec | None = None) -> dspy.Adapter:
    """The prompt format: terse for the small embedded model, with the task's formatting example and
    word bounds when `spec` is given; DSPy's JSONAdapter for the rest."""
    from targen_dspy.backends.compact_adapter import CompactJSONAdapter
    from targen_dspy.backends.json_adapter import SignatureCachedJSONAdapter

    return CompactJSONAdapter(spec) if model == LOCAL else SignatureCachedJSONAdapter()
