"""`targen validate`: check a task spec and show the typed signatures of the four steps it yields."""

from __future__ import annotations

import argparse
import math
import textwrap
from typing import TYPE_CHECKING

from targen_dspy.commands.spec_options import add_trust_argument

if TYPE_CHECKING:
    from targen_dspy.signatures import TaskSpec

HELP = "check a task spec and print the signatures it yields"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="path to a spec .yaml (or a catalogue name)")
    add_trust_argument(parser)


def run(args: argparse.Namespace) -> None:
    from dspy.adapters.utils import get_annotation_name

    from targen_dspy.signatures import load_task, step_signatures
    from targen_dspy.signatures.labels import label_policy

    spec = load_task(args.spec, args.trust_spec_code)
    print(f"{spec.name}: valid, {len(spec.fields)} fields -> {label_policy(spec).describe()}")
    if "TODO" in spec.model_dump_json():
        print("note: the spec still has TODO placeholders")
    if spec.attributes:
        sizes = " × ".join(f"{name} ({len(values)})" for name, values in spec.attributes.items())
        combinations = math.prod(len(values) for values in spec.attributes.values())
        print(f"attributes: {sizes} = {combinations} combinations, spread evenly over every label")
    for rule in spec.constraints:
        print(f"constraint: {rule}")
    for step, signature in step_signatures(spec).items():
        print(f"\n[{step}]\n{textwrap.indent(textwrap.dedent(signature.instructions).strip(), '  ')}")
        for direction, fields in (("in ", signature.input_fields), ("out", signature.output_fields)):
            for name, field in fields.items():
                desc = field.json_schema_extra.get("desc", "")
                constraint = _constraint(spec, name) if step == "instance" and direction == "out" else ""
                print(f"  {direction} {name}: {get_annotation_name(field.annotation)}{constraint} - {desc}")
        if step == "seeds" and spec.seed.parts:
            for name, part in spec.seed.parts.items():
                pattern = f" matching {part.pattern}" if part.pattern else ""
                print(f"      {name}: {get_annotation_name(part.python_type)}{pattern} - {part.description}")


def _constraint(spec: TaskSpec, name: str) -> str:
    """How the instance step narrows a field for each seed (see `signatures.steps.constrain`)."""
    field = spec.written_fields.get(name)
    if field is None:  # an open label, written after the fields
        return ""
    if field.contains:
        pieces = (item if isinstance(item, str) else " or ".join(item) for item in field.contains)
        return f" containing {', then '.join(pieces)}"
    if field.one_of:
        return f" one of {', '.join(field.one_of)}"
    return f" matching {field.pattern}" if field.pattern else ""
