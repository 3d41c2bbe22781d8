"""`targen generate`: a labeled synthetic dataset into a run directory (resumed if it exists)."""

from __future__ import annotations

import argparse
from pathlib import Path

from targen_dspy.commands.models import add_model_arguments, use_models

HELP = "generate a labeled synthetic dataset into a run directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="catalogue name (see `targen tasks`) or path to a spec .yaml")
    parser.add_argument("-n", type=int, default=20, help="number of instances (default 20)")
    parser.add_argument(
        "-o", "--out", type=Path, help="run directory (default runs/TASK); an existing one is resumed"
    )
    add_model_arguments(parser)
    parser.add_argument("--seeds-per-context", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="instances made in parallel")
    parser.add_argument("--rpm", type=float, help="at most this many LLM requests per minute")
    parser.add_argument("--tpm", type=float, help="at most this many tokens per minute")
    parser.add_argument("--program", type=Path, help="a program.json written by `targen compile`")
    method = parser.add_argument_group(
        "example-based generation with self-reference (--method self-reference)"
    )
    method.add_argument("--method", choices=["targen", "self-reference"], default="targen")
    method.add_argument(
        "--example", type=Path, help="the formatting example (default: the spec's first example)"
    )
    method.add_argument(
        "--strategy",
        choices=["random", "contrastive", "similar", "tree"],
        default="random",
        help="how each round picks its references among earlier outputs",
    )
    method.add_argument("--batch-size", type=int, default=5, help="examples asked for per call")
    method.add_argument("--references", type=int, default=3, help="references shown per call")
    method.add_argument("--max-rounds", type=int, help="stop after this many rounds")
    method.add_argument(
        "--near-duplicate", type=float, default=0.95, help="cosine above which two examples count as one"
    )
    method.add_argument(
        "--patience", type=int, default=3, help="stop after this many rounds with nothing new"
    )
    parser.add_argument("--force", action="store_true", help="resume even if the spec or program changed")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> None:
    import dspy

    from targen_dspy.backends import adapter_for
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.engine.runner import RunSettings
    from targen_dspy.engine.runner import run as run_program
    from targen_dspy.optimizers import load_compiled
    from targen_dspy.program import TarGEN
    from targen_dspy.signatures import load_task

    spec = load_task(args.task)
    if args.method == "self-reference":
        return _self_reference(spec, args)
    settings = RunSettings(
        n=args.n, seeds_per_context=args.seeds_per_context, workers=args.workers, rpm=args.rpm, tpm=args.tpm
    )
    run_dir = RunDirectory(args.out or Path("runs") / spec.name)
    program = load_compiled(spec, args.program) if args.program else TarGEN(spec)
    models = use_models(program, args)
    with dspy.context(adapter=adapter_for(args.model)):
        stats = run_program(program, run_dir, settings, models, force=args.force, progress=not args.quiet)
    report(stats, run_dir)


def _self_reference(spec, args: argparse.Namespace) -> None:
    import dspy

    from targen_dspy.backends import adapter_for
    from targen_dspy.engine.rounds import RoundSettings, format_example, run_self_reference
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.program.self_reference import SelfReferenceGenerator

    settings = RoundSettings(
        n=args.n,
        strategy=args.strategy,
        batch_size=args.batch_size,
        references=args.references,
        max_rounds=args.max_rounds,
        patience=args.patience,
        near_duplicate=args.near_duplicate,
    )
    run_dir = RunDirectory(args.out or Path("runs") / f"{spec.name}-self-reference")
    program = SelfReferenceGenerator(spec, format_example(spec, args.example))
    models = use_models(program, args)
    with dspy.context(adapter=adapter_for(args.model)):
        stats = run_self_reference(
            program,
            run_dir,
            settings,
            models,
            embed=_embedder(args.strategy),
            force=args.force,
            progress=not args.quiet,
        )
    spent = stats["this_invocation"]
    print(
        f"{stats['instances']} distinct examples in {run_dir.data} after {stats['rounds']} rounds "
        f"({spent['calls']} LLM calls, {stats['failed_calls']} unparseable)"
    )
    if stats["stopped"]:
        print(f"stopped early: {stats['stopped']}")


def _embedder(strategy: str):
    """MiniLM embeddings when installed (near-duplicate removal; needed by similar/contrastive)."""
    from targen_dspy.analysis.embeddings import load_encoder
    from targen_dspy.errors import ModelError

    try:
        return load_encoder().embed
    except ModelError:
        if strategy in ("similar", "contrastive"):
            raise
        return None


def report(stats: dict, run_dir) -> None:
    spent = stats["this_invocation"]
    cost = "unknown cost" if spent["cost_usd"] is None else f"${spent['cost_usd']:.4f}"
    print(
        f"{stats['instances']} instances in {run_dir.data} "
        f"({stats['relabeled']} relabeled by self-correction, {stats['failed_slots']} failed slots)\n"
        f"this run: {spent['calls']} LLM calls "
        f"({spent['cache_hits']} from cache, {spent['retries']} retries), "
        f"{spent['prompt_tokens']}+{spent['completion_tokens']} tokens, {cost}, {spent['seconds']:.1f}s"
    )
    for constrained, row in stats["confusion"].items():
        print(f"  constrained {constrained} -> " + ", ".join(f"{k}: {v}" for k, v in row.items()))
