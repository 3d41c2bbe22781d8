"""`targen generate`: a labeled synthetic dataset into a run directory (resumed if it exists)."""

from __future__ import annotations

import argparse
from pathlib import Path

from targen_dspy.commands.cluster import add_ray_arguments, api_bases, ray_workers_for
from targen_dspy.commands.models import add_model_arguments, use_models
from targen_dspy.commands.spec_options import add_trust_argument
from targen_dspy.program.options import CORRECTIONS

HELP = "generate a labeled synthetic dataset into a run directory"
# Options of one method that the other has no step for, and why: given with it, they are a one-line error.
# Their argparse default is None, so that "not given" is told apart from a value equal to the default.
_NO_SELF_CORRECTION = "self-reference has no self-correction step"
ONLY_FOR = {
    "targen": {
        "seeds_per_context": "self-reference writes no seeds",
        "program": "a program.json is a compiled TarGEN program",
        "constraint": "the self-reference prompt takes no constraints",
        "correction": _NO_SELF_CORRECTION,
        "corrector_model": _NO_SELF_CORRECTION,
        "corrector_api_base": _NO_SELF_CORRECTION,
        "reflect": "self-reference has no rewriting steps",
        "harder": "self-reference has no rewriting steps",
        "verify_code": "self-reference has no verification steps",
        "corpus": "self-reference has no verification steps",
        "batch": "self-reference's rounds each need the one before, online",
        "poll_seconds": "self-reference's rounds each need the one before, online",
        "ray": "self-reference's rounds run in this process",
        "actors": "self-reference's rounds run in this process",
    },
    "self-reference": {
        "example": "TarGEN starts from no example",
        **dict.fromkeys(
            ("strategy", "batch_size", "references", "max_rounds", "patience"),
            "TarGEN plans slots, it has no rounds of references",
        ),
    },
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="catalogue name (see `targen tasks`) or path to a spec .yaml")
    add_trust_argument(parser)
    parser.add_argument("-n", type=int, default=20, help="number of instances (default 20)")
    parser.add_argument(
        "-o", "--out", type=Path, help="run directory (default runs/TASK); an existing one is resumed"
    )
    add_model_arguments(parser, several_api_bases=True)
    parser.add_argument("--seeds-per-context", type=int, help="seeds asked for per context (default 4)")
    parser.add_argument(
        "--workers",
        type=int,
        help="model calls made in parallel (default 1): instances, or a self-reference round's calls",
    )
    parser.add_argument("--rpm", type=float, help="at most this many LLM requests per minute")
    parser.add_argument("--tpm", type=float, help="at most this many tokens per minute")
    parser.add_argument("--program", type=Path, help="a program.json written by `targen compile`")
    datagen = parser.add_argument_group("diversity and quality options (DataGen)")
    datagen.add_argument(
        "--constraint",
        action="append",
        metavar="TEXT",
        help="a rule every generation step must follow (repeatable), besides the spec's `constraints`",
    )
    parser.add_argument(
        "--correction",
        choices=CORRECTIONS,
        help="self-correction: relabel an instance the corrector judges otherwise (the paper's, default), "
        "filter it out and make a new one in its place (keeps the planned label balance), or off",
    )
    datagen.add_argument(
        "--dedup",
        type=float,
        metavar="THRESHOLD",
        help="group checking: drop an instance whose MiniLM cosine to a kept one is at least this "
        "(e.g. 0.9) into duplicates.jsonl (self-reference: drop the example; default 0.95 when the "
        "embeddings extra is installed)",
    )
    datagen.add_argument(
        "--reflect",
        type=int,
        metavar="N",
        help="self-reflection: critique each instance and rewrite it when flawed, at most N times",
    )
    datagen.add_argument(
        "--harder",
        action="store_true",
        default=None,  # None: not given (see ONLY_FOR)
        help="rewrite each instance to be harder, keeping its label",
    )
    datagen.add_argument(
        "--verify-code",
        action="store_true",
        default=None,
        help="code-based verification (numeric labels, e.g. math_word): the model writes a Python "
        "program, a sandbox runs it, and its answer relabels the instance; a failing program drops it",
    )
    datagen.add_argument(
        "--corpus",
        type=Path,
        metavar="DIR",
        help="retrieval-grounded validation: judge each instance's facts against BM25 passages of the "
        ".txt/.md files in DIR; contradicted instances are dropped into rejected.jsonl",
    )
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
        help="how each round picks its references among earlier outputs (default random; tree makes one "
        "call per example of the round before, in parallel with --workers)",
    )
    method.add_argument("--batch-size", type=int, help="examples asked for per call (default 5)")
    method.add_argument("--references", type=int, help="references shown per call (default 3)")
    method.add_argument("--max-rounds", type=int, help="stop after this many rounds")
    method.add_argument(
        "--patience", type=int, help="stop after this many rounds with nothing new (default 3)"
    )
    batch = parser.add_argument_group("provider batch APIs (half price, results within 24 h)")
    batch.add_argument(
        "--batch",
        action="store_true",
        default=None,  # None: not given (see ONLY_FOR)
        help="send every stage's calls as OpenAI batch jobs (--model openai/NAME); a rerun resumes the jobs",
    )
    batch.add_argument(
        "--poll-seconds", type=float, help="with --batch: seconds between looks at a running job (default 30)"
    )
    add_ray_arguments(parser)
    parser.add_argument("--force", action="store_true", help="resume even if the spec or program changed")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> None:
    from targen_dspy.engine.cache import run_cache
    from targen_dspy.signatures import load_task

    check_method_options(args)
    endpoints = api_bases(args)
    args.api_base = endpoints[0]  # the driver's models: a Ray run's actors get one of `endpoints` each
    spec = load_task(args.task, args.trust_spec_code)
    with run_cache():  # disk only: memory stays flat however long the run
        if args.method == "self-reference":
            _self_reference(spec, args)
        else:
            _targen(spec, args, endpoints)


def _targen(spec, args: argparse.Namespace, endpoints: list[str | None]) -> None:
    import dspy

    from targen_dspy.backends import adapter_for
    from targen_dspy.engine.limits import parse_attempts
    from targen_dspy.engine.rundir import RunDirectory, targen_records
    from targen_dspy.engine.runner import RunSettings
    from targen_dspy.engine.runner import run as run_program
    from targen_dspy.optimizers import load_compiled
    from targen_dspy.program import TarGEN
    from targen_dspy.program.correction import FILTER_ATTEMPTS

    settings = RunSettings(
        n=args.n,
        **given(args, "seeds_per_context", "workers", "rpm", "tpm", "dedup"),
        max_attempts=FILTER_ATTEMPTS if args.correction == "filter" else parse_attempts(args.model),
        batch=bool(args.batch),
    )
    check_batch_options(args)
    options = generation_options(args)
    run_dir = RunDirectory(
        args.out or Path("runs") / spec.name, targen_records(spec.label_field, list(spec.fields))
    )
    program = load_compiled(spec, args.program, options) if args.program else TarGEN(spec, options)
    workers = {} if args.ray is None else {"workers": ray_workers_for(args, program, endpoints)}
    models = use_models(program, args)
    batch = batch_backend(program, args) if args.batch else None
    embed = None if args.dedup is None else _group_check_embedder()
    try:
        with dspy.context(adapter=adapter_for(args.model, spec)):
            stats = run_program(
                program, run_dir, settings, models, force=args.force, progress=not args.quiet, embed=embed,
                batch=batch, **workers,
            )  # fmt: skip
    finally:
        if batch is not None:
            batch.client.close()
    report(stats, run_dir, program.labels)


def check_batch_options(args: argparse.Namespace) -> None:
    """A one-line error for options a batch run cannot honour, before any model is loaded."""
    from targen_dspy.backends import LOCAL
    from targen_dspy.errors import RunError

    if not args.batch:
        if args.poll_seconds is not None:
            raise RunError("--poll-seconds applies to --batch runs only")
        return
    if args.model == LOCAL:
        raise RunError(
            "--batch needs a hosted model with a batch API: --model openai/NAME (not the embedded model)"
        )
    if args.corrector_model or args.corrector_api_base:
        raise RunError("--batch sends every step to --model: drop --corrector-model and --corrector-api-base")
    if args.ray is not None:
        raise RunError("--batch and --ray do not go together: a batch run's calls are made by the provider")
    for option in ("workers", "rpm", "tpm"):
        if getattr(args, option) is not None:
            raise RunError(
                f"--{option} applies to online runs: a batch run's calls are the provider's to schedule"
            )
    if args.poll_seconds is not None and not args.poll_seconds > 0:
        raise RunError(f"--poll-seconds must be positive, got {args.poll_seconds}")


def batch_backend(program, args: argparse.Namespace):
    """The batch API of --model's provider (at --api-base if given), and the program's models replaced
    by ones that replay the batch results (`backends.replay`)."""
    import os

    from targen_dspy.backends.batch_api import OpenAIBatches
    from targen_dspy.backends.remote import PLACEHOLDER_KEY
    from targen_dspy.backends.replay import Answers, batch_lm
    from targen_dspy.engine.batch import BatchBackend

    answers = Answers()
    program.set_lm(batch_lm(program.predictors()[0].lm, answers))
    key = os.environ.get("OPENAI_API_KEY", PLACEHOLDER_KEY)
    client = OpenAIBatches(args.api_base or "https://api.openai.com/v1", key, timeout=args.timeout)
    return BatchBackend(client, answers, args.poll_seconds or 30.0)


def check_method_options(args: argparse.Namespace) -> None:
    """A one-line error for an option given with a method that has no step for it."""
    from targen_dspy.errors import RunError

    other = "self-reference" if args.method == "targen" else "targen"
    for dest, why in ONLY_FOR[other].items():
        if getattr(args, dest) is not None:
            raise RunError(f"--{dest.replace('_', '-')} applies to --method {other} only: {why}")
    if args.actors is not None and args.ray is None:
        raise RunError("--actors applies to --ray only: without it the calls are made in this process")
    if args.method == "self-reference" and (args.workers or 1) > 1 and args.strategy != "tree":
        raise RunError(
            "--workers above 1 applies to --method self-reference with --strategy tree only: the other "
            "strategies make one call per round, each on the rounds before"
        )


def given(args: argparse.Namespace, *names: str) -> dict:
    """The options among `names` given on the command line (the rest keep the settings' defaults)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def generation_options(args: argparse.Namespace):
    """The optional steps switched on by the command line (`GenerationOptions`)."""
    from targen_dspy.errors import RunError
    from targen_dspy.program.options import GenerationOptions

    if args.reflect is not None and args.reflect < 0:
        raise RunError(f"--reflect is a number of rounds, at least 0, got {args.reflect}")
    constraints = args.constraint or []
    if any(not text.strip() for text in constraints):
        raise RunError("--constraint needs a rule, not an empty text")
    options = given(args, "reflect", "harder", "verify_code", "corpus", "correction")
    if "reflect" in options:
        options["reflect_rounds"] = options.pop("reflect")
    return GenerationOptions(constraints=tuple(text.strip() for text in constraints), **options)


def _self_reference(spec, args: argparse.Namespace) -> None:
    import dspy

    from targen_dspy.backends import adapter_for
    from targen_dspy.engine.rounds import RoundSettings, format_example, run_self_reference
    from targen_dspy.engine.rundir import RunDirectory, self_reference_records
    from targen_dspy.engine.runner import RunSettings
    from targen_dspy.program.self_reference import SelfReferenceGenerator

    settings = RoundSettings(
        n=args.n,
        **given(args, "strategy", "batch_size", "references", "max_rounds", "patience"),
        **({} if args.dedup is None else {"near_duplicate": args.dedup}),
    )
    calls = RunSettings(n=args.n, **given(args, "workers", "rpm", "tpm"))
    example = format_example(spec, args.example)
    run_dir = RunDirectory(
        args.out or Path("runs") / f"{spec.name}-self-reference", self_reference_records(list(example))
    )
    program = SelfReferenceGenerator(spec, example)
    models = use_models(program, args)
    embed = _group_check_embedder() if args.dedup is not None else _embedder(settings.strategy)
    with dspy.context(adapter=adapter_for(args.model, spec)):
        stats = run_self_reference(
            program,
            run_dir,
            settings,
            models,
            calls=calls,
            embed=embed,
            force=args.force,
            progress=not args.quiet,
        )
    spent = stats["this_invocation"]
    print(
        f"{stats['instances']} distinct examples in {run_dir.data} after {stats['rounds']} rounds "
        f"({spent['calls']} LLM calls, {sum(stats['retries'].values())} asked again, "
        f"{stats['failed_calls']} unparseable)"
    )
    if stats["stopped"]:
        print(f"stopped early: {stats['stopped']}")


def _group_check_embedder():
    """MiniLM embeddings for --dedup; a one-line error naming the extra to install when missing."""
    from targen_dspy.analysis.embeddings import load_encoder

    return load_encoder().embed


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


def report(stats, run_dir, labels) -> None:
    """The run's summary (`RunStats`) in a few lines; the confusion matrix only for a closed label set."""
    spent = stats.this_invocation
    cost = "unknown cost" if spent["cost_usd"] is None else f"${spent['cost_usd']:.4f}"
    removed = stats.duplicates_removed
    removed = "" if removed is None else f", {removed} near-duplicates removed"
    print(
        f"{stats.instances} instances in {run_dir.data} "
        f"({stats.relabeled} relabeled by self-correction, "
        f"{stats.failed_slots} failed slots{removed})\n"
        f"this run: {spent['calls']} LLM calls "
        f"({spent['cache_hits']} from cache, {spent['retries']} retries), "
        f"{spent['prompt_tokens']}+{spent['completion_tokens']} tokens, {cost}, {spent['seconds']:.1f}s"
    )
    if stats.batch is not None:
        batch = stats.batch
        cost = "unknown cost" if batch["cost_usd"] is None else f"${batch['cost_usd']:.4f} at batch prices"
        print(
            f"batch jobs of the whole run: {batch['jobs']} jobs, {batch['requests']} requests, "
            f"{batch['prompt_tokens']}+{batch['completion_tokens']} tokens, {cost}"
        )
    if stats.label_imbalance:
        print(f"warning: {stats.label_imbalance}")
    if stats.retries:
        asked = ", ".join(f"{step} {count}" for step, count in stats.retries.items())
        print(f"asked again after answers that did not parse: {asked}")
    if stats.rejected_by is not None:
        by = ", ".join(f"{count} by {step}" for step, count in stats.rejected_by.items())
        total = sum(stats.rejected_by.values())
        print(f"verification: {total} rejected ({by or 'none'}) into {run_dir.rejected}")
    data = stats.data
    if data.code_checks:
        computed, relabeled = data.code_checks["verified_by_code"], data.code_checks["relabeled_by_code"]
        print(f"  {computed} answers computed by code, {relabeled} of them relabeled")
    if data.grounding:
        print("  against the corpus: " + ", ".join(f"{k}: {v}" for k, v in data.grounding.items()))
    if labels.open:  # one row per answer written: no matrix to read
        return
    for constrained, row in data.confusion.items():
        print(f"  constrained {constrained} -> " + ", ".join(f"{k}: {v}" for k, v in row.items()))
