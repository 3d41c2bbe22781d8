"""`targen export`: a run's instances as a Hub-ready folder with a dataset card (README.md), a Hugging
Face `datasets` folder, parquet or JSONL."""

from __future__ import annotations

import argparse
from pathlib import Path

from targen_dspy.commands.spec_options import add_trust_argument

HELP = "export a run's instances (default: a folder with a dataset card that datasets.load_dataset reads)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory")
    parser.add_argument(
        "--to",
        choices=["hub", "hf", "parquet", "jsonl"],
        default="hub",
        help="hub: data/train.parquet + README.md dataset card (default); hf: save_to_disk folder",
    )
    parser.add_argument("-o", "--out", type=Path, help="target path (default inside the run directory)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="push to the Hugging Face Hub instead")
    parser.add_argument(
        "--task",
        help="spec .yaml the run was made from, for the card (default: the manifest's catalogue task)",
    )
    add_trust_argument(parser)
    parser.add_argument(
        "--program", type=Path, help="the program.json the run was generated with: its scores go in the card"
    )


def run(args: argparse.Namespace) -> None:
    from targen_dspy.engine.card import compiled_record, dataset_card
    from targen_dspy.engine.export import export
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.review.run import find_run_spec, run_spec

    run_dir = RunDirectory(args.run)
    manifest = run_dir.read_json(run_dir.manifest) or {}
    if args.task:
        spec = run_spec(manifest, args.task, args.trust_spec_code, args.run)
    else:
        spec = find_run_spec(manifest, None, False)
        if spec is not None and manifest.get("spec_hash") not in (None, spec.hash):
            spec = None  # the catalogue's spec changed since the run: the card leaves its text out
    compiled = compiled_record(args.program, manifest) if args.program else None

    def card(data_file: str) -> str:
        return dataset_card(run_dir.path, manifest, spec, data_file, compiled)

    print(f"exported to {export(run_dir, args.to, args.out, args.push_to_hub, card)}")
