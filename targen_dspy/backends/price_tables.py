"""The price tables litellm and DSPy ship, used instead of fetching them (a module of its own, without
DSPy: the command line enters it around every command, `targen tasks` and `--help` included)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

COST_MAP_VARIABLE = "LITELLM_LOCAL_MODEL_COST_MAP"


@contextlib.contextmanager
def bundled_price_tables() -> Iterator[None]:
    """LITELLM_LOCAL_MODEL_COST_MAP set while inside, unless the user has set it: litellm (when it is
    imported) and DSPy's model metadata (at its first use in a run) then read the price tables they
    ship, instead of fetching them from the internet (seconds of retries, and a warning, offline)."""
    if COST_MAP_VARIABLE in os.environ:
        yield
        return
    os.environ[COST_MAP_VARIABLE] = "True"
    try:
        yield
    finally:
        os.environ.pop(COST_MAP_VARIABLE, None)
