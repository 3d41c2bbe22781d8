"""`targen tasks`: the task catalogue."""

from __future__ import annotations

import argparse

HELP = "list the task catalogue"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> None:
    from targen_dspy.signatures import catalogue_names, load_task
    from targen_dspy.signatures.spec import label_text

    names = catalogue_names()
    width = max(map(len, names))
    for name in names:
        spec = load_task(name)
        labels = ", ".join(label_text(v) for v in spec.label_values)  # as in the data: true, not True
        if spec.open_label:
            labels = f"{spec.label_field} ({spec.label_type}, written by the model)"
        print(f"{name:<{width}}  {', '.join(spec.fields)} -> {labels}")
