"""`targen analyze`: labels, diversity, difficulty and self-correction of a dataset, beside a reference."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from targen_dspy.commands.spec_options import add_trust_argument

HELP = "analyse a dataset (labels, diversity, difficulty), optionally beside a real reference set"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="JSONL file, e.g. a run's data.jsonl")
    parser.add_argument("--reference", type=Path, help="JSONL set to compare with, e.g. a real val split")
    parser.add_argument(
        "--task", help="catalogue name or spec .yaml: text fields and label order come from its spec"
    )
    add_trust_argument(parser)
    parser.add_argument(
        "-o", "--out", type=Path, help="report directory (default: DATA's folder/STEM-analysis)"
    )
    parser.add_argument(
        "--near-duplicate",
        type=float,
        default=0.95,
        help="cosine at or above which two instances are near-duplicates",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds for PVI (default 5)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> None:
    from targen_dspy.analysis.embeddings import load_encoder
    from targen_dspy.analysis.entities import entity_bias, load_ner
    from targen_dspy.analysis.records import read_jsonl
    from targen_dspy.analysis.report import write_report
    from targen_dspy.analysis.summary import Dataset, analyse
    from targen_dspy.signatures import load_task

    started = time.monotonic()
    spec = load_task(args.task, args.trust_spec_code) if args.task else None
    data = Dataset("data", args.data, read_jsonl(args.data))
    reference = Dataset("reference", args.reference, read_jsonl(args.reference)) if args.reference else None
    analysis = analyse(
        data,
        reference,
        load_encoder(),
        spec=spec,
        near_duplicate=args.near_duplicate,
        folds=args.folds,
        progress=not args.quiet,
    )
    recognize = load_ner()  # None without the `bias` extra: the report says how to get it
    texts = [
        (result.dataset.name, ["\n".join(str(r[f]) for f in analysis.fields) for r in result.dataset.records])
        for result in analysis.sets
    ]
    entities = entity_bias(texts, recognize) if recognize else None
    out = args.out or args.data.parent / f"{args.data.stem}-analysis"
    report = write_report(analysis, out, entities)
    for result in analysis.sets:
        difficulty = "PVI n/a" if result.pvi is None else f"V-info {result.pvi.v_information:.3f} bits"
        print(
            f"{result.dataset.name}: {len(result.keys)} instances, "
            f"distinct-2 {result.lexical.distinct_2:.3f}, self-BLEU {result.lexical.self_bleu:.3f}, "
            f"mean cosine {result.cosine.mean:.3f}, "
            f"near-duplicates {result.cosine.near_duplicate_rate:.1%}, {difficulty}"
        )
    print(f"report: {report} ({time.monotonic() - started:.1f}s)")
