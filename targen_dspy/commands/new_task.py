"""`targen new-task`: a commented spec skeleton for a task of your own."""

from __future__ import annotations

import argparse
from pathlib import Path

from targen_dspy.errors import SpecError

HELP = "write a commented spec skeleton for a task of your own"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the task's name, lower_snake_case")
    parser.add_argument("-o", "--out", type=Path, help="where to write it (default NAME.yaml)")


def run(args: argparse.Namespace) -> None:
    from targen_dspy.signatures.catalogue import skeleton

    path = args.out or Path(f"{args.name}.yaml")
    text = skeleton(args.name)
    try:
        with open(path, "x", encoding="utf-8") as file:  # "x": never overwrite a spec
            file.write(text)
    except FileExistsError:
        raise SpecError(f"{path} exists; choose another path with -o or remove it") from None
    except OSError as exc:
        raise SpecError(f"cannot write {path}: {exc.strerror}") from None
    print(f"wrote {path}: replace its TODOs, then `targen validate {path}`")
