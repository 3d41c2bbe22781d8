"""Model options shared by the commands that call models (generate, compile, ...)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from targen_dspy.backends import LOCAL, build_lm

if TYPE_CHECKING:
    import dspy


def add_model_arguments(parser: argparse.ArgumentParser, several_api_bases: bool = False) -> None:
    parser.add_argument("--model", default=LOCAL, help="'local' (embedded SmolLM2) or a litellm string")
    parser.add_argument(
        "--api-base",
        action="append" if several_api_bases else "store",
        help="base URL of an OpenAI-compatible server (vLLM, llama.cpp, ...)"
        + ("; repeated with --ray, spread over the actors" if several_api_bases else ""),
    )
    parser.add_argument("--corrector-model", help="model for the self-correction step (default: --model)")
    parser.add_argument(
        "--corrector-api-base",
        help="base URL for --corrector-model (default: --api-base if both models have the same provider)",
    )
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
        api_base = args.corrector_api_base or shared_api_base(corrector, args)
        program.correct.set_lm(build_lm(corrector, api_base=api_base, timeout=args.timeout))
    return {"generator": args.model, "corrector": corrector}


def shared_api_base(model: str, args: argparse.Namespace) -> str | None:
    """--api-base for another model of the run, if it has --model's provider. A model of another provider
    is sent its own provider's key: on --model's server that key would go to a host never chosen for it
    (e.g. ANTHROPIC_API_KEY to a local vLLM); it keeps its provider's endpoint instead. With the embedded
    --model, --api-base can only be meant for the other models."""
    from targen_dspy.backends.remote import provider_prefix

    same = args.model == LOCAL or provider_prefix(model) == provider_prefix(args.model)
    return args.api_base if same else None
