"""A terse JSON adapter for very small models.

DSPy's JSONAdapter explains its message structure at length; a 135M model copies that text (field
names, format notes) into its answers. This adapter sends only the instruction, the inputs as
`Name: value` lines and a one-line JSON answer template; parsing is JSONAdapter's.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any, Literal, get_args, get_origin

import dspy
from dspy.adapters.utils import format_field_value


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


class CompactJSONAdapter(dspy.JSONAdapter):
    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        return textwrap.dedent(signature.instructions).strip()

    def format_user_message_content(
        self,
        signature: type[dspy.Signature],
        inputs: dict[str, Any],
        prefix: str = "",
        suffix: str = "",
        main_request: bool = False,
    ) -> str:
        lines = [prefix] if prefix else []
        for name, field in signature.input_fields.items():
            if name in inputs:
                lines.append(f"{_title(name)}: {format_field_value(field_info=field, value=inputs[name])}")
        if main_request:
            lines.append(self.user_message_output_requirements(signature))
        if suffix:
            lines.append(suffix)
        return "\n".join(lines)

    def user_message_output_requirements(self, signature: type[dspy.Signature]) -> str:
        outputs = signature.output_fields.items()
        shape = ", ".join(f'"{name}": {_placeholder(field.annotation)}' for name, field in outputs)
        # Output descriptions are left out: small models copy them in as answers.
        return f"Reply with JSON only, shaped like {{{shape}}}"


def _placeholder(annotation: Any) -> str:
    """A shape hint that carries no words a small model could copy as content."""
    if get_origin(annotation) is list:
        return "[..., ...]"
    if get_origin(annotation) is Literal:
        return " or ".join(json.dumps(v) for v in get_args(annotation))
    return "..."
