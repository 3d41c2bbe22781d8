"""The `targen` command. The only place that reads the environment, configures DSPy and prints."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from targen_dspy.errors import ModelError, TargenError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        self.exit(EXIT_USAGE, f"targen: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="targen", description="Seedless, label-constrained synthetic data with DSPy.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log DSPy and model warnings")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("tasks", help="list the task catalogue")

    gen = commands.add_parser("generate", help="generate a labeled synthetic dataset into a run directory")
    gen.add_argument("task", help="catalogue name (see `targen tasks`) or path to a spec .yaml")
    gen.add_argument("-n", type=int, default=20, help="number of instances (default 20)")
    gen.add_argument(
        "-o", "--out", type=Path, help="run directory (default runs/TASK); an existing one is resumed"
    )
    gen.add_argument("--model", default="local", help="'local' (embedded SmolLM2) or a litellm string")
    gen.add_argument("--api-base", help="base URL of an OpenAI-compatible server (vLLM, llama.cpp, ...)")
    gen.add_argument("--corrector-model", help="model for the self-correction step (default: --model)")
    gen.add_argument("--corrector-api-base", help="base URL for --corrector-model")
    gen.add_argument(
        "--temperature", type=float, default=0.7, help="sampling temperature of the writing steps"
    )
    gen.add_argument("--seeds-per-context", type=int, default=4)
    gen.add_argument("--workers", type=int, default=1, help="instances made in parallel")
    gen.add_argument("--rpm", type=float, help="at most this many LLM requests per minute")
    gen.add_argument("--tpm", type=float, help="at most this many tokens per minute")
    gen.add_argument("--timeout", type=float, default=120.0, help="seconds before a model call is retried")
    gen.add_argument("--force", action="store_true", help="resume even if the spec or program changed")
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    exp = commands.add_parser("export", help="export a run's instances with Hugging Face datasets")
    exp.add_argument("run", type=Path, help="run directory")
    exp.add_argument("--to", choices=["hf", "parquet", "jsonl"], default="hf")
    exp.add_argument("-o", "--out", type=Path, help="target path (default inside the run directory)")
    exp.add_argument("--push-to-hub", metavar="REPO", help="push to the Hugging Face Hub instead")
    return parser


def _cmd_tasks(args: argparse.Namespace) -> None:
    from targen_dspy.signatures import catalogue_names, load_task

    for name in catalogue_names():
        spec = load_task(name)
        labels = ", ".join(str(v) for v in spec.label_values)
        print(f"{name:<10} {', '.join(spec.fields)} -> {labels}")


def _cmd_generate(args: argparse.Namespace) -> None:
    import dspy

    from targen_dspy.backends import adapter_for, build_lm
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.engine.runner import RunSettings, run
    from targen_dspy.program import TarGEN
    from targen_dspy.signatures import load_task

    spec = load_task(args.task)
    settings = RunSettings(
        n=args.n, seeds_per_context=args.seeds_per_context, workers=args.workers, rpm=args.rpm, tpm=args.tpm
    )
    run_dir = RunDirectory(args.out or Path("runs") / spec.name)
    lm = build_lm(args.model, api_base=args.api_base, temperature=args.temperature, timeout=args.timeout)
    corrector_model = args.corrector_model or args.model
    corrector_lm = (
        build_lm(corrector_model, api_base=args.corrector_api_base or args.api_base, timeout=args.timeout)
        if args.corrector_model
        else lm
    )
    program = TarGEN(spec)
    program.set_lm(lm)
    program.correct.set_lm(corrector_lm)
    models = {"generator": args.model, "corrector": corrector_model}
    with dspy.context(adapter=adapter_for(args.model)):
        stats = run(program, run_dir, settings, models, force=args.force, progress=not args.quiet)
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


def _cmd_export(args: argparse.Namespace) -> None:
    from targen_dspy.engine.export import export
    from targen_dspy.engine.rundir import RunDirectory

    print(f"exported to {export(RunDirectory(args.run), args.to, args.out, args.push_to_hub)}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(name)s: %(message)s")
    from dspy.utils.exceptions import LMError

    try:
        {"tasks": _cmd_tasks, "generate": _cmd_generate, "export": _cmd_export}[args.command](args)
    except TargenError as exc:
        print(f"targen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LMError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"targen: {ModelError.__name__}: {first_line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "targen: interrupted; finished instances are on disk, rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
