"""The project's exceptions. Every message says what is wrong and how to fix it, in one line; `redact`
keeps credentials out of any text made from an error."""

from __future__ import annotations

import os
import re


class TargenError(Exception):
    """Base class: a problem the user can fix; the CLI prints it as one line and exits with code 2."""


class SpecError(TargenError):
    """A task spec is missing, malformed or inconsistent."""


class ModelError(TargenError):
    """A model string, key, server or local model file is unusable."""


class RunError(TargenError):
    """A run directory or its options are inconsistent."""


class AskAgain(Exception):  # noqa: N818 - a request, not a failure: the engine asks again
    """An answer that parsed but cannot be used: the engine asks again with a new sampling seed, as for
    one that does not parse. `step` names the retries in the run's stats."""

    step = "instances"

    def gave_up(self) -> str:
        """Why the slot failed when every attempt ended so."""
        return str(self)


# Environment variables that hold credentials: litellm reads keys from PROVIDER_API_KEY and the like
# (OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY, HF_TOKEN, AZURE_AD_TOKEN, ...).
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET = 8  # shorter values are flags or placeholders, and would mangle ordinary text
_PREFIX = 12  # a key is matched from its first characters, so a truncated or masked echo is caught too


def redact(text: str) -> str:
    """`text` with every credential from the environment masked to its first four characters.

    A server may echo the key it was sent in an error message, and error texts are printed and written
    to run files: `backends.remote.KeySafeLM` redacts the errors of model calls where they are raised,
    and the CLI what it prints."""
    for secret in _secrets():
        head = re.escape(secret[:_PREFIX])
        pattern = head + r"[^\s\"'`,;)\]}]*" if len(secret) > _PREFIX else re.escape(secret)
        text = re.sub(pattern, f"{secret[:4]}****", text)
    return text


def _secrets() -> list[str]:
    values = {
        value.strip()
        for name, value in os.environ.items()
        if _SECRET_NAME.search(name) and len(value.strip()) >= _MIN_SECRET
    }
    return sorted(values, key=len, reverse=True)  # a key that contains another is masked whole
