"""`targen generate --ray`: the options, and the recipe a Ray actor builds its program from."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from targen_dspy.errors import RunError

MODEL_OPTIONS = ("model", "corrector_model", "corrector_api_base", "temperature", "timeout")


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('scaling out on a Ray cluster (pip install -e ".[ray]")')
    group.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="make the model calls on Ray actors: `auto` joins the running cluster, an ADDRESS that one, "
        "none starts a local cluster; --workers is then per actor and --rpm/--tpm hold for all of them",
    )
    group.add_argument(
        "--actors", type=int, help="Ray actors (default: one per CPU of the cluster); --api-base's spread"
    )


def api_bases(args: argparse.Namespace) -> list[str | None]:
    """The endpoints given (--api-base repeated), [None] for none; several only with --ray."""
    given = args.api_base or [None]
    if len(given) > 1 and args.ray is None:
        raise RunError("several --api-base need --ray, which spreads them over its actors")
    return given


@dataclass(frozen=True)
class ProgramRecipe:
    """What a Ray actor builds its program from (`ProgramBuilder`): the spec as data, the driver's
    prompts and demos (compiled or not), the optional steps and the models; actor i gets the i-th
    endpoint, round robin. Plain data, so Ray can send it to any node."""

    spec: dict[str, Any]
    trust_code: bool
    options: Any  # GenerationOptions
    states: dict[str, dict[str, Any]]
    models: dict[str, Any]
    endpoints: tuple[str | None, ...]

    @classmethod
    def of(cls, program: Any, args: argparse.Namespace, endpoints: list[str | None]) -> ProgramRecipe:
        return cls(
            spec=program.spec.model_dump(mode="json"),
            trust_code=args.trust_spec_code,
            options=program.options,
            states={name: {**p.dump_state(), "lm": None} for name, p in program.named_predictors()},
            models={name: getattr(args, name) for name in MODEL_OPTIONS},
            endpoints=tuple(endpoints),
        )

    def __call__(self, index: int) -> tuple[Any, Any]:
        from targen_dspy.backends import adapter_for
        from targen_dspy.commands.models import use_models
        from targen_dspy.program import TarGEN
        from targen_dspy.signatures.spec import parse_spec

        spec = parse_spec(self.spec, source=self.spec["name"], trust_code=self.trust_code)
        program = TarGEN(spec, self.options)
        for name, predictor in program.named_predictors():
            predictor.load_state(self.states[name])
        endpoint = self.endpoints[index % len(self.endpoints)]
        use_models(program, argparse.Namespace(**self.models, api_base=endpoint))
        return program, adapter_for(self.models["model"])


def ray_workers_for(args: argparse.Namespace, program: Any, endpoints: list[str | None]):
    """`runner.run`'s workers for `--ray`: Ray is imported (or its absence reported) only here."""
    from targen_dspy.engine.ray_workers import RaySettings, ray_workers

    settings = RaySettings(address=args.ray or None, actors=args.actors)
    return ray_workers(settings, ProgramRecipe.of(program, args, endpoints))
