"""`targen export`: a run's instances as a Hugging Face dataset, parquet or JSONL."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a run's instances with Hugging Face datasets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory")
    parser.add_argument("--to", choices=["hf", "parquet", "jsonl"], default="hf")
    parser.add_argument("-o", "--out", type=Path, help="target path (default inside the run directory)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="push to the Hugging Face Hub instead")


def run(args: argparse.Namespace) -> None:
    from targen_dspy.engine.export import export
    from targen_dspy.engine.rundir import RunDirectory

    print(f"exported to {export(RunDirectory(args.run), args.to, args.out, args.push_to_hub)}")
