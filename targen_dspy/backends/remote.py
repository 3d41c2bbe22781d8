"""Any model litellm can name (`openai/gpt-4o-mini`, `anthropic/...`, `ollama/...`, `openai/<name>` with an
API base for vLLM or a llama.cpp server), checked before the run so mistakes cost no calls."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from targen_dspy.errors import ModelError

# A local OpenAI-compatible server ignores the key, but the client insists on one.
PLACEHOLDER_KEY = "not-needed"


def check_provider(model: str) -> str:
    """The litellm provider of `model`, or a ModelError naming the problem."""
    import litellm

    litellm.suppress_debug_info = True  # it prints a provider list on stdout otherwise
    try:
        _, provider, _, _ = litellm.get_llm_provider(model)
    except Exception:
        raise ModelError(
            f"unknown model {model!r}: use 'local' or a litellm string PROVIDER/NAME "
            "such as openai/gpt-4o-mini"
        ) from None
    return provider


def check_key(model: str) -> None:
    import litellm

    missing = litellm.validate_environment(model=model).get("missing_keys") or []
    if missing:
        raise ModelError(
            f"{model} needs {', '.join(missing)} in the environment (or pass --api-base for a local server)"
        )


def check_reachable(api_base: str, timeout: float = 3.0) -> None:
    url = urlparse(api_base if "://" in api_base else f"http://{api_base}")
    if not url.hostname:
        raise ModelError(f"--api-base {api_base!r} is not a URL; use e.g. http://localhost:8000/v1")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise ModelError(f"cannot reach {api_base} ({exc.strerror or exc}); is the server running?") from None


def remote_lm_kwargs(model: str, api_base: str | None) -> dict:
    """Keyword arguments for dspy.LM after checking provider, key and (for a given API base) the server."""
    check_provider(model)
    if api_base is None:
        check_key(model)
        return {}
    check_reachable(api_base)
    provider_key = f"{model.split('/', 1)[0].upper()}_API_KEY"
    return {"api_base": api_base, "api_key": os.environ.get(provider_key, PLACEHOLDER_KEY)}
