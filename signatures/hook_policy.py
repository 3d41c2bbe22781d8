"""Which code a task spec may run. Specs are shared like data (downloaded, kept in a team catalogue), so a
spec may only name the hooks the project ships (`hooks.SHIPPED`) or those an installed package registers
in the `targen.hooks` entry-point group; anything else is imported only when the user says they trust
the spec's author (`--trust-spec-code`, in the spirit of Hugging Face's `trust_remote_code`).

The decision is made from the reference's text and the installed packages' metadata, before anything
is imported: a refused hook's module never runs.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from importlib.metadata import entry_points

from targen_dspy.errors import SpecError
from targen_dspy.signatures.spec import Postprocess

ENTRY_POINT_GROUP = "targen.hooks"
SHIPPED_MODULE = "targen_dspy.signatures.hooks"
TRUST_FLAG = "--trust-spec-code"
# `name` (a shipped or registered hook) or `package.module:function`.
_REFERENCE = re.compile(r"^(?:(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):)?(?P<name>[A-Za-z_]\w*)$")


def resolve_hook(reference: str, trust_code: bool = False) -> Postprocess:
    """The function a spec's `postprocess` names, or a one-line SpecError saying why it may not run."""
    match = _REFERENCE.match(reference)
    if match is None:
        raise SpecError(f"postprocess {reference!r} is not a hook name: use NAME or package.module:function")
    module, name = match["module"], match["name"]
    if module in (None, SHIPPED_MODULE):
        from targen_dspy.signatures.hooks import SHIPPED  # the project's own code: safe to import

        if name in SHIPPED:
            return SHIPPED[name]
        if module is not None:
            raise SpecError(f"postprocess {reference!r}: the shipped hooks are {', '.join(sorted(SHIPPED))}")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if reference in (entry.name, entry.value.replace(" ", "")):
            return _callable(reference, entry.load)
    if module is None:
        raise SpecError(
            f"postprocess {reference!r} is neither a shipped hook nor registered in the "
            f"{ENTRY_POINT_GROUP!r} entry points of an installed package"
        )
    if not trust_code:
        raise SpecError(
            f"postprocess {reference!r} would import and run code the spec names; a spec cannot run code "
            f"unless you trust its author: pass {TRUST_FLAG}, or register the hook in the "
            f"{ENTRY_POINT_GROUP!r} entry points of an installed package"
        )
    return _callable(reference, lambda: getattr(importlib.import_module(module), name))


def _callable(reference: str, load: Callable[[], object]) -> Postprocess:
    try:
        function = load()
    except Exception as exc:  # noqa: BLE001 - the import of someone's module: any error is theirs
        raise SpecError(
            f"postprocess {reference!r} cannot be imported ({type(exc).__name__}: {exc})"
        ) from None
    if not callable(function):
        raise SpecError(f"postprocess {reference!r} is not a function")
    return function
