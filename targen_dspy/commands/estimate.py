"""`targen estimate`: a run's calls, tokens and price per step, before any call is made."""

from __future__ import annotations

import argparse

from targen_dspy.commands.spec_options import add_trust_argument
from targen_dspy.program.options import CORRECTIONS

HELP = "estimate a run's calls, tokens and price per step before making any call"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="catalogue name (see `targen tasks`) or path to a spec .yaml")
    add_trust_argument(parser)
    parser.add_argument("-n", type=int, default=20, help="number of instances (default 20)")
    parser.add_argument("--model", required=True, help="the litellm model string the run will use")
    parser.add_argument("--batch", action="store_true", help="at the provider's batch prices")
    parser.add_argument("--seeds-per-context", type=int, default=4, help="as for generate (default 4)")
    parser.add_argument(
        "--program", help="a program.json written by `targen compile` (its prompts and demos)"
    )
    parser.add_argument("--correction", choices=CORRECTIONS, help="as for generate")
    parser.add_argument("--constraint", action="append", metavar="TEXT", help="as for generate")
    parser.add_argument("--reflect", type=int, metavar="N", help="as for generate")
    parser.add_argument("--harder", action="store_true", default=None, help="as for generate")
    parser.set_defaults(verify_code=None, corpus=None)


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    import dspy

    from targen_dspy.backends import adapter_for
    from targen_dspy.commands.generate import generation_options
    from targen_dspy.engine.calls import RunSettings
    from targen_dspy.engine.estimate import estimate, table
    from targen_dspy.optimizers import load_compiled
    from targen_dspy.program import TarGEN
    from targen_dspy.signatures import load_task

    RunSettings(n=args.n, seeds_per_context=args.seeds_per_context)  # the same checks as a run's
    spec = load_task(args.task, args.trust_spec_code)
    options = generation_options(args)
    program = load_compiled(spec, Path(args.program), options) if args.program else TarGEN(spec, options)
    with dspy.context(adapter=adapter_for(args.model, spec)):
        result = estimate(program, args.n, args.seeds_per_context, args.model, args.batch)
    print(f"{spec.name}, n = {args.n}, {args.model}{' (batch)' if args.batch else ''}: expected")
    for line in table(result):
        print(line)
