"""`targen compile`: tune the generation and self-correction prompts from a small gold set."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from targen_dspy.commands.models import add_model_arguments, shared_api_base, use_models
from targen_dspy.commands.spec_options import add_trust_argument

HELP = "compile a tuned generator from a small gold set (DSPy teleprompters)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="catalogue name (see `targen tasks`) or path to a spec .yaml")
    add_trust_argument(parser)
    parser.add_argument("--valset", type=Path, required=True, help="gold JSONL in the task's own field names")
    parser.add_argument("--optimizer", default="bootstrap", help="bootstrap, mipro or gepa")
    parser.add_argument(
        "-o", "--out", type=Path, default=Path("program.json"), help="where to write program.json"
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--judge-model", help="judge of generated instances (default: the compiled corrector)"
    )
    parser.add_argument(
        "--reflection-model", help="model proposing instructions (mipro, gepa; default --model)"
    )
    parser.add_argument(
        "--auto", choices=["light", "medium", "heavy"], default="light", help="mipro/gepa budget"
    )
    parser.add_argument(
        "--candidates", type=int, default=0, help="bootstrap: random search over N candidates"
    )
    parser.add_argument("--max-demos", type=int, default=4)
    parser.add_argument("--generation-slots", type=int, default=8, help="slots to tune generation on")
    parser.add_argument(
        "--held-out", type=float, default=0.3, help="share of the gold set kept for the report"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-dir", help="gepa: checkpoint directory, so an interrupted compile resumes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> None:
    import dspy

    from targen_dspy.backends import adapter_for, build_lm
    from targen_dspy.optimizers import CompileSettings, compile_program, load_gold, save_compiled
    from targen_dspy.program import SelfCorrector, TarGEN
    from targen_dspy.signatures import load_task
    from targen_dspy.signatures.labels import label_policy

    spec = load_task(args.task, args.trust_spec_code)
    if label_policy(spec).open:
        from targen_dspy.errors import SpecError

        raise SpecError(
            f"{spec.name} has an open label; `targen compile` tunes tasks with a closed label set"
        )
    settings = CompileSettings(
        optimizer=args.optimizer,
        held_out=args.held_out,
        seed=args.seed,
        max_demos=args.max_demos,
        candidates=args.candidates,
        auto=args.auto,
        generation_slots=args.generation_slots,
        threads=args.threads,
        log_dir=args.log_dir,
    )
    gold = load_gold(spec, args.valset)
    program = TarGEN(spec)
    models = use_models(program, args)
    judge = None
    if args.judge_model:
        judge = SelfCorrector(spec)
        api_base = shared_api_base(args.judge_model, args)
        judge.set_lm(build_lm(args.judge_model, api_base=api_base, timeout=args.timeout))
        models["judge"] = args.judge_model
    reflection = args.reflection_model or args.model
    reflection_lm = build_lm(reflection, api_base=shared_api_base(reflection, args), timeout=args.timeout)
    with dspy.context(adapter=adapter_for(args.model, spec)):
        compiled, scores = compile_program(
            program, gold, settings, judge=judge, reflection_lm=reflection_lm, progress=not args.quiet
        )
    save_compiled(compiled, args.out, {"models": models, "optimizer": asdict(settings), "scores": scores})
    print(
        f"wrote {args.out} ({settings.optimizer}, {len(gold)} gold examples, "
        f"{scores['held_out_gold_examples']} held out for these figures)"
    )
    print(f"{'held-out score (%)':<28}{'hand-written':>14}{'compiled':>10}")
    for name in ("contexts_score", "seeds_score", "correction_accuracy", "generation_score"):
        hand, tuned = scores[name]["hand_written"], scores[name]["compiled"]
        print(f"{name.replace('_', ' '):<28}{hand:>14.1f}{tuned:>10.1f}")
    accuracy = scores["correction_accuracy"]
    baseline = accuracy["majority_class"]
    print(f"{'majority-class baseline':<28}{baseline:>14.1f}{baseline:>10.1f}")
    if max(accuracy["hand_written"], accuracy["compiled"]) <= baseline:
        print(
            "the corrector is no better than always answering the most frequent label: its relabels "
            "add noise; generate with --correction filter or off, or use a stronger --corrector-model"
        )
