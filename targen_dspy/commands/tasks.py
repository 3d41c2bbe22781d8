"""`targen tasks`: the task catalogue."""

from __future__ import annotations

import argparse

HELP = "list the task catalogue"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> None:
    from targen_dspy.signatures import catalogue_names, load_task
    from targen_dspy.signatures.labels import label_policy

    names = catalogue_names()
    width = max(map(len, names))
    for name in names:
        spec = load_task(name)
        print(f"{name:<{width}}  {', '.join(spec.fields)} -> {label_policy(spec).describe()}")
