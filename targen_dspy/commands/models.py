"""Model options shared by the commands that call models (generate, compile, ...)."""

from __future__ import annotations

import argparse

import dspy

from targen_dspy.backends import LOCAL, build_lm


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=LOCAL, help="'local' (embedded SmolLM2) or a litellm string")
    parser.add_argument("--api-base", help="base URL of an OpenAI-compatible server (vLLM, llama.cpp, ...)")
    parser.add_argument("--corrector-model", help="model for the self-correction step (default: --model)")
    parser.add_argument("--corrector-api-base", help="base URL for --corrector-model")
    parser.add_argument(
        "--temperature", type=float, default=0.7, help="sampling temperature of the writing steps"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a model call is retried")


def use_models(program: dspy.Module, args: argparse.Namespace) -> dict[str, str]:
    """Give `program` the generator and corrector models named in `args`; returns their names."""
    lm = build_lm(args.model, api_base=args.api_base, temperature=args.temperature, timeout=args.timeout)
    program.set_lm(lm)
    corrector = args.corrector_model or args.model
    if args.corrector_model and hasattr(program, "correct"):
        api_base = args.corrector_api_base or args.api_base
        program.correct.set_lm(build_lm(corrector, api_base=api_base, timeout=args.timeout))
    return {"generator": args.model, "corrector": corrector}
