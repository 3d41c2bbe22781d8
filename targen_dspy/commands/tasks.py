"""`targen tasks`: the task catalogue."""

from __future__ import annotations

import argparse

HELP = "list the task catalogue"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> None:
    from targen_dspy.signatures import catalogue_names, load_task

    for name in catalogue_names():
        spec = load_task(name)
        labels = ", ".join(str(v) for v in spec.label_values)
        if spec.open_label:
            labels = f"{spec.label_field} ({spec.label_type}, written by the model)"
        print(f"{name:<10} {', '.join(spec.fields)} -> {labels}")
