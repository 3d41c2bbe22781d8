"""Any model litellm can name (`openai/gpt-4o-mini`, `anthropic/...`, `ollama/...`, `openai/<name>` with an
API base for vLLM or a llama.cpp server), checked before the run so mistakes cost no calls.

DSPy 3.4 calls most providers through its own engine (lm15); litellm is then never needed, so the model
string and key are checked by that engine's routing and litellm (seconds to import) only for the models
it leaves to litellm.
"""

from __future__ import annotations

import importlib
import os
import socket
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import dspy
from dspy.clients.backend_selection import select_backend
from dspy.clients.base_lm import LM_CLASS_STATE_KEY

from targen_dspy.backends.price_tables import bundled_price_tables
from targen_dspy.errors import ModelError, redact

# A local OpenAI-compatible server ignores the key, but the client insists on one.
PLACEHOLDER_KEY = "not-needed"


def import_litellm() -> ModuleType:
    """litellm, imported with the price table it ships (see `bundled_price_tables`)."""
    with bundled_price_tables():
        return importlib.import_module("litellm")


def check_provider(model: str) -> str:
    """The litellm provider of `model`, or a ModelError naming the problem."""
    litellm = import_litellm()
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
    missing = import_litellm().validate_environment(model=model).get("missing_keys") or []
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


def remote_lm(model: str, api_base: str | None, **settings: Any) -> dspy.LM:
    """A dspy.LM for a remote model after checking the server (for a given API base), the model string
    and the key; the provider's key goes to `api_base` if set, else a placeholder."""
    if api_base is None:
        lm = KeySafeLM(model, **settings)
    else:
        check_reachable(api_base)
        key = os.environ.get(f"{provider_prefix(model).upper()}_API_KEY", PLACEHOLDER_KEY)
        lm = KeySafeLM(model, api_base=api_base, api_key=key, **settings)
    route = select_backend(lm)
    if not route.native:
        check_provider(model)
        if api_base is None:
            check_key(model)
    elif api_base is None and _missing_key(route.resolution):
        raise ModelError(
            f"{model} needs {route.resolution.env_key} in the environment (or pass --api-base for a "
            "local server)"
        )
    return lm


def _missing_key(resolution: Any) -> bool:
    """Whether DSPy's engine would read a key from an environment variable that is not set."""
    env_key = resolution.env_key
    return resolution.credential_policy == "key" and bool(env_key) and not os.environ.get(env_key)


def provider_prefix(model: str) -> str:
    """The part of `model` that names its key: `openai/x` is sent OPENAI_API_KEY (see remote_lm)."""
    return model.split("/", 1)[0].lower()


class KeySafeLM(dspy.LM):
    """dspy.LM whose errors carry no credential. A server may echo the key it was sent (`Incorrect API
    key provided: Bearer sk-...`), and error texts reach failed.jsonl, stderr and DSPy's logs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if not _mentions_secret(exc):
                raise
            raise _redacted(exc) from None

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().acall(*args, **kwargs)
        except Exception as exc:
            if not _mentions_secret(exc):
                raise
            raise _redacted(exc) from None

    def dump_state(self) -> dict[str, Any]:
        # It adds no state: saved as a plain dspy.LM, which DSPy loads without trusting a custom class.
        return {**super().dump_state(), LM_CLASS_STATE_KEY: f"{dspy.LM.__module__}.{dspy.LM.__qualname__}"}


def _mentions_secret(exc: BaseException) -> bool:
    seen: set[int] = set()
    chain: BaseException | None = exc
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        if redact(str(chain)) != str(chain):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def _redacted(exc: Exception) -> Exception:
    """`exc` itself, its type and attributes kept (retries depend on them), its message redacted and the
    provider's own error, key and all, dropped from its chain."""
    exc.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in exc.args)
    if isinstance(getattr(exc, "message", None), str):
        exc.message = redact(exc.message)
    exc.__context__ = None
    return exc
