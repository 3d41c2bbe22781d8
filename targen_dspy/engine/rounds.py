"""Running the self-reference program into a run directory: rounds of batches, each round's
references chosen from what is already on disk, every example validated and de-duplicated before it
is appended. Re-running the same command resumes from the last round on disk."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError
from tqdm import tqdm

from targen_dspy.backends.hot_paths import memoized_dspy_lookups
from targen_dspy.engine.cache import forget_last_answer
from targen_dspy.engine.limits import RetryPolicy
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.runner import CallEngine, RunSettings, program_hash
from targen_dspy.errors import RunError, SpecError
from targen_dspy.inputs import MB, one_line, read_text
from targen_dspy.program.distinct import normalise
from targen_dspy.program.sampling import STRATEGIES, next_references
from targen_dspy.program.self_reference import SelfReferenceGenerator
from targen_dspy.signatures import TaskSpec
from targen_dspy.text.fields import record_text, text_fields
from targen_dspy.text.vectors import Embed, NearDuplicateFilter, record_vectors

logger = logging.getLogger(__name__)
FORMAT_EXAMPLE_ID = "format-example"


@dataclass(frozen=True)
class RoundSettings:
    n: int
    strategy: str = "random"
    batch_size: int = 5
    references: int = 3
    max_rounds: int | None = None  # default: four times the rounds an ideal run needs
    near_duplicate: float = 0.95  # cosine at which two examples count as one (with embeddings)
    patience: int = 3  # rounds in a row that yield nothing new before the run stops
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.batch_size < 1 or self.references < 1:
            raise RunError("-n, --batch-size and --references must be at least 1")
        if self.strategy not in STRATEGIES:
            raise RunError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")

    @property
    def round_cap(self) -> int:
        return self.max_rounds or 4 * math.ceil(self.n / self.batch_size)


class _Distinct:
    """An example is new when its text, normalised, is and, with a near-duplicate filter, when its cosine
    to every kept example is below the filter's threshold."""

    def __init__(self, fields: list[str], near: NearDuplicateFilter | None):
        self.fields, self.near = fields, near
        self.texts: set[str] = set()

    def add_if_new(self, record: dict[str, Any]) -> bool:
        key = normalise(record_text(record, self.fields))
        if not key or key in self.texts:
            return False
        if self.near is not None and self.near.check(record) is not None:
            return False
        self.texts.add(key)
        return True

    def load(self, records: list[dict[str, Any]]) -> None:
        """Keep a resumed run's examples, already checked, without checking them again."""
        self.texts.update(normalise(record_text(record, self.fields)) for record in records)
        if self.near is not None:
            self.near.load(records)


def run_self_reference(
    program: SelfReferenceGenerator,
    run_dir: RunDirectory,
    settings: RoundSettings,
    models: dict[str, str],
    *,
    embed: Embed | None = None,
    retry: RetryPolicy | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Up to `settings.n` distinct examples into `run_dir`; returns stats, including why it stopped."""
    spec = program.spec
    manifest = {
        "task": spec.name,
        "method": "self-reference",
        "spec_hash": spec.hash,
        "program_hash": program_hash(program),
        "presence_penalty": program.presence_penalty,
        "models": models,
        "settings": asdict(settings),
    }
    run_dir.claim(manifest, force)
    fields = [name for name in program.example if name != spec.label_field]
    texts = text_fields(spec)
    near = NearDuplicateFilter(embed, settings.near_duplicate, texts) if embed and texts else None
    vectors = partial(record_vectors, fields=texts, embed=embed) if embed and texts else None

    records = run_dir.records()
    distinct = _Distinct(fields, near)
    distinct.add_if_new({"id": FORMAT_EXAMPLE_ID, **program.example})  # a copy of it is not new either
    distinct.load(records)
    round_ = max((r["round"] for r in records), default=-1) + 1
    last_batch = [r for r in records if r["round"] == round_ - 1]
    engine = CallEngine(RunSettings(n=settings.n, retry=retry or RetryPolicy()))
    failures, idle, stopped = 0, 0, None
    bar = tqdm(
        total=settings.n,
        initial=min(len(records), settings.n),
        desc=spec.name,
        unit="ex",
        disable=not progress,
    )
    with (
        dspy.context(disable_history=True),
        memoized_dspy_lookups(),
        engine.meter.counting(program),
        run_dir.appender() as data,
        run_dir.appender(run_dir.failed) as failed,
    ):
        while len(records) < settings.n:
            if round_ >= settings.round_cap:
                stopped = f"reached the cap of {settings.round_cap} rounds"
                break
            rng = random.Random(settings.seed * 100_003 + round_)
            # Until something exists to refer to, the format example (always shown) is the only reference.
            reference_sets = (
                [[]]
                if not records
                else next_references(
                    settings.strategy, records, last_batch, settings.references, rng, vectors
                )
            )
            batch: list[dict[str, Any]] = []
            for call, references in enumerate(reference_sets):
                write = partial(
                    program,
                    references=references,
                    count=settings.batch_size,
                    sampling_seed=settings.seed + 1000 * round_ + call,
                )
                try:
                    examples = engine.call(write, 1).examples
                except AdapterParseError as exc:
                    forget_last_answer()  # a rerun asks again instead of replaying it
                    failures += 1
                    failed.append(
                        {"round": round_, "error": "unparseable model output", "raw": exc.lm_response}
                    )
                    continue
                for new in examples:
                    key = hashlib.sha256(json.dumps(new, sort_keys=True).encode()).hexdigest()[:12]
                    if len(records) >= settings.n or not distinct.add_if_new({"id": key, **new}):
                        continue
                    record = {
                        "id": key,
                        **new,
                        "round": round_,
                        "references": [r["id"] for r in references] or [FORMAT_EXAMPLE_ID],
                    }
                    data.append(record)
                    records.append(record)
                    batch.append(record)
                    bar.update()
            idle = 0 if batch else idle + 1
            round_ += 1
            if idle >= settings.patience:
                stopped = f"{idle} rounds in a row yielded nothing new"
                break
            last_batch = batch or last_batch
    bar.close()
    stats = {
        "instances": len(records),
        "rounds": round_,
        "failed_calls": failures,
        "stopped": stopped,
        "labels": _label_counts(records, spec.label_field),
        "this_invocation": engine.meter.summary(),
    }
    run_dir.write_json(run_dir.stats, stats)
    return stats


def _label_counts(records: list[dict[str, Any]], label_field: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        if label_field in record:
            key = json.dumps(record[label_field])
            counts[key] = counts.get(key, 0) + 1
    return counts


def format_example(spec: TaskSpec, path: Path | None) -> dict[str, Any]:
    """The format example: the JSON object in `path` if given, else the spec's first example."""
    if path is None:
        if not spec.examples:
            raise RunError("--method self-reference needs a format example: pass --example example.json")
        return dict(spec.examples[0])
    try:
        example = json.loads(read_text(path, "--example", RunError, max_bytes=MB))
    except OSError as exc:
        raise RunError(f"cannot read --example {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, RecursionError):
        raise RunError(
            f"--example {path} is not JSON; give one JSON object shaped like an instance"
        ) from None
    if not isinstance(example, dict):
        raise RunError(f"--example {path} must hold one JSON object, not a {type(example).__name__}")
    try:  # the same check as the spec's own examples: every field with its type, and a valid label
        spec.validate_example(example)
    except SpecError as exc:
        raise RunError(one_line(f"--example {path}: {exc}; fix it to fit the {spec.name} spec")) from None
    # Extra keys (`idx`) are left out: the program asks the model for the example's keys.
    return {name: example[name] for name in [*spec.fields, spec.label_field]}
