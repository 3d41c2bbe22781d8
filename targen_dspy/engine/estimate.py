"""What a run will cost, before any call: calls, input and output tokens and price per step.

The program itself runs one call of each stage (contexts, seeds) and the slots of one seed (one per
label), with every predictor given a model whose engine makes no call: it counts the tokens of the
prompt the program's adapter rendered (`text.tokens`, as OpenAI bills them) and answers with
placeholder JSON in the shape the request's schema asks for. Those placeholders are the output
assumption: one sentence of PLACEHOLDER_WORDS words per free-text field, `count` items per list when the
prompt asks for a count (else one), the first value of a closed set. The run's calls are then
`contexts` calls (CONTEXTS_PER_CALL contexts each) for the contexts the seeds need, one `seeds` call per
context, and each instance step's calls per slot times n. Prices come from the table DSPy ships
(litellm's model cost map), at batch prices with `batch`."""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.lm15 import Message, Request, Response, TextPart, Usage

from targen_dspy.engine.meter import token_rates
from targen_dspy.program import TarGEN
from targen_dspy.program.plan import Material
from targen_dspy.program.targen import CONTEXTS_PER_CALL, ContextsAsk, SeedsAsk
from targen_dspy.text.tokens import count_tokens

PLACEHOLDER_WORDS = 20
_COUNT = re.compile(r"\[\[ ## count ## \]\]\n(\d+)")
_WORDS = "the quick brown fox jumps over a lazy dog near an old river bank while birds sing".split()  # noqa: SIM905
# Predictors by the program attribute that holds them, as the rows of the estimate name them.
STEP_NAMES = {"generate": "instances", "correct": "self-correction", "harden": "harder",
              "reflect": "reflection", "verify": "code verification", "ground": "grounding"}  # fmt: skip


@dataclass(frozen=True)
class StepEstimate:
    step: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


@dataclass(frozen=True)
class Estimate:
    model: str
    batch: bool
    steps: list[StepEstimate]
    priced: bool  # False: the price table does not know the model

    @property
    def total(self) -> StepEstimate:
        costs = [step.cost_usd for step in self.steps]
        return StepEstimate(
            "total", sum(s.calls for s in self.steps), sum(s.input_tokens for s in self.steps),
            sum(s.output_tokens for s in self.steps), None if None in costs else round(sum(costs), 6),
        )  # fmt: skip


class PlaceholderEngine:
    """A DSPy engine that calls no model: it tallies each request's tokens under `step` and answers
    with placeholder JSON (see the module's docstring)."""

    supports_response_schema = True
    supported_params = frozenset({"response_format", "temperature", "max_tokens", "seed"})

    def __init__(self, model: str, step: str, tally: dict[str, list[int]]):
        self.model, self.step, self.tally = model, step, tally
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def complete(self, request: Request) -> Response:
        system = (
            request.system
            if isinstance(request.system, str)
            else "".join(p.text for p in request.system or ())
        )
        prompt = system + "".join(message.text or "" for message in request.messages)
        found = _COUNT.search(request.messages[-1].text or "")
        schema = (request.config.response_format or {}).get("schema") or {}
        content = json.dumps(
            self._placeholder(schema, schema.get("$defs", {}), int(found[1]) if found else 1)
        )
        usage = count_tokens(prompt, self.model), count_tokens(content, self.model)
        with self._lock:
            calls = self.tally[self.step]
            calls[0], calls[1], calls[2] = calls[0] + 1, calls[1] + usage[0], calls[2] + usage[1]
        return Response(
            id=None,
            model=self.model,
            message=Message.assistant([TextPart(content)]),
            finish_reason="stop",
            usage=Usage(input_tokens=usage[0], output_tokens=usage[1], total_tokens=sum(usage)),
        )

    def _placeholder(self, schema: dict[str, Any], defs: dict[str, Any], count: int) -> Any:
        if "$ref" in schema:
            return self._placeholder(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, count)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [option for option in schema[key] if option.get("type") != "null"]
                return self._placeholder(options[0], defs, count)
        if "enum" in schema or "const" in schema:
            return schema["enum"][0] if "enum" in schema else schema["const"]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            return {
                name: self._placeholder(field, defs, count)
                for name, field in schema.get("properties", {}).items()
            }
        if kind == "array":
            return [self._placeholder(schema.get("items", {}), defs, 1) for _ in range(count)]
        if kind in ("integer", "number"):
            return 1
        if kind == "boolean":
            return False
        n = next(self._counter)  # distinct texts: the program drops repeated contexts and seeds
        return (
            " ".join(_WORDS[(n + i) % len(_WORDS)] for i in range(PLACEHOLDER_WORDS - 1)).capitalize()
            + f" {n}."
        )


def estimate(program: TarGEN, n: int, seeds_per_context: int, model: str, batch: bool) -> Estimate:
    """The expected calls, tokens and price of a run of `n` instances of `program` on `model` (under
    `dspy.context(adapter=...)`, the adapter of the run). The program's predictors get placeholder
    models: pass a program of its own."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # step -> calls, input, output
    program.check_shapes(False)  # placeholders are not task-shaped text, and need not be
    for name, predictor in program.named_predictors():
        attribute = name.split(".", 1)[0]
        engine = PlaceholderEngine(model, STEP_NAMES.get(attribute, attribute), tally)
        predictor.lm = dspy.LM(model, engine=engine, cache=False, num_retries=0, max_tokens=512)
    contexts_needed = math.ceil(program.seeds_needed(n) / seeds_per_context)
    contexts = program.propose_contexts(ContextsAsk(min(CONTEXTS_PER_CALL, contexts_needed), (), 0), 0)
    seeds = program.write_seeds(SeedsAsk(contexts[0], seeds_per_context), 0)
    per_seed = sum(1 for count in program.labels.planned(n).values() if count > 0)  # one slot per label
    slots = list(itertools.islice(program.plan(n, [Material(contexts[0], tuple(seeds))]), per_seed))
    for slot in slots:
        program.make(slot, slot.sampling_seed)
    calls = {"contexts": math.ceil(contexts_needed / CONTEXTS_PER_CALL), "seeds": contexts_needed}
    rates = token_rates(model, batch)
    steps = []
    for step, (made, prompt, completion) in tally.items():
        total = calls.get(step, round(n * made / len(slots)))
        scale = total / made
        tokens = round(prompt * scale), round(completion * scale)
        cost = None if rates is None else round(tokens[0] * rates[0] + tokens[1] * rates[1], 6)
        steps.append(StepEstimate(step, total, tokens[0], tokens[1], cost))
    return Estimate(model, batch, steps, rates is not None)


def table(result: Estimate) -> Iterator[str]:
    """The estimate as the lines `targen estimate` prints."""
    prices = "batch prices" if result.batch else "online prices"
    yield f"{'step':<18}{'calls':>8}{'input tok':>12}{'output tok':>12}{'USD (' + prices + ')':>26}"
    for step in [*result.steps, result.total]:
        cost = "?" if step.cost_usd is None else f"{step.cost_usd:.4f}"
        yield f"{step.step:<18}{step.calls:>8}{step.input_tokens:>12}{step.output_tokens:>12}{cost:>26}"
    if not result.priced:
        yield f"{result.model}: not in the price table (litellm's model cost map): tokens only"
