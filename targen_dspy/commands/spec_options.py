"""The spec option shared by the commands that load a task spec (generate, compile, validate, analyze)."""

from __future__ import annotations

import argparse

from targen_dspy.signatures.hook_policy import ENTRY_POINT_GROUP, TRUST_FLAG


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        TRUST_FLAG,
        dest="trust_spec_code",
        action="store_true",
        help="let the spec's postprocess hook import any module:function (it runs with your permissions; "
        f"only for specs whose author you trust). Without it, only shipped hooks and those in the "
        f"{ENTRY_POINT_GROUP!r} entry points of installed packages can run",
    )
