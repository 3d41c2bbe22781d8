"""Running the self-reference program into a run directory: rounds of batches, each round's
references chosen from what is already on disk, every example validated and de-duplicated before it
is appended. Re-running the same command resumes from the last round on disk."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import math
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import dspy
from tqdm import tqdm

from targen_dspy.backends.hot_paths import RUN_SETTINGS, memoized_dspy_lookups
from targen_dspy.engine.calls import CallEngine, RunSettings
from targen_dspy.engine.limits import Unparseable
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.runner import program_hash
from targen_dspy.errors import RunError, SpecError
from targen_dspy.inputs import MB, one_line, read_text
from targen_dspy.program.distinct import normalise
from targen_dspy.program.sampling import STRATEGIES, Vectors, next_references
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
        if not 0 < self.near_duplicate <= 1:
            raise RunError(f"--dedup is a cosine in (0, 1], got {self.near_duplicate}")
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
    calls: RunSettings | None = None,
    embed: Embed | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Up to `settings.n` distinct examples into `run_dir`; returns stats, including why it stopped.

    `calls` are the engine's settings for the model calls: workers (a round's calls in parallel), rate
    limits, attempts at an answer that parses, and retries; with `embed`, near-duplicates of kept
    examples (cosine at least `settings.near_duplicate`) are dropped."""
    spec = program.spec
    calls = calls or RunSettings(n=settings.n)
    run_dir.claim(_manifest(program, settings, calls, models), force)
    texts = text_fields(spec)  # what near-duplicates and similar references are judged on
    near = NearDuplicateFilter(embed, settings.near_duplicate, texts) if embed and texts else None
    vectors = partial(record_vectors, fields=texts, embed=embed) if embed and texts else None
    records = run_dir.records()
    distinct = _Distinct([name for name in program.example if name != spec.label_field], near)
    distinct.add_if_new({"id": FORMAT_EXAMPLE_ID, **program.example})  # a copy of it is not new either
    distinct.load(records)
    round_ = max((r["round"] for r in records), default=-1) + 1
    last_batch = [r for r in records if r["round"] == round_ - 1]
    engine = CallEngine(calls)
    failures, idle, stopped = 0, 0, None
    bar = tqdm(
        total=settings.n,
        initial=min(len(records), settings.n),
        desc=spec.name,
        unit="ex",
        disable=not progress,
    )
    with (
        dspy.context(**RUN_SETTINGS),
        memoized_dspy_lookups(),
        engine.meter.counting(program),
        ThreadPoolExecutor(calls.workers, thread_name_prefix="targen") as pool,
        run_dir.appender() as data,
        run_dir.appender(run_dir.failed) as failed,
    ):
        kept = _Kept(records, settings.n, distinct, data, bar)
        while len(records) < settings.n:
            if round_ >= settings.round_cap:
                stopped = f"reached the cap of {settings.round_cap} rounds"
                break
            batch: list[dict[str, Any]] = []
            for references, written in _round(
                program, engine, pool, settings, round_, kept.records, last_batch, vectors
            ):
                if isinstance(written, Unparseable):
                    failures += 1
                    raw = getattr(written.error, "lm_response", None)
                    failed.append({"round": round_, "error": "unparseable model output", "raw": raw})
                else:
                    batch += kept.add(written, round_, references)
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
        "retries": dict(engine.meter.parse_retries),
        "this_invocation": engine.meter.summary(),
    }
    run_dir.write_json(run_dir.stats, stats)
    return stats


def _manifest(
    program: SelfReferenceGenerator, settings: RoundSettings, calls: RunSettings, models: dict[str, str]
) -> dict[str, Any]:
    return {
        "task": program.spec.name,
        "method": "self-reference",
        "spec_hash": program.spec.hash,
        "program_hash": program_hash(program),
        "presence_penalty": program.presence_penalty,
        "models": models,
        "settings": asdict(settings),
        "calls": {"workers": calls.workers, "rpm": calls.rpm, "tpm": calls.tpm},
    }


class _Kept:
    """The run's examples: a new, distinct one is appended to data.jsonl until there are `n`."""

    def __init__(self, records: list[dict[str, Any]], n: int, distinct: _Distinct, data: Any, bar: tqdm):
        self.records, self.n, self.distinct, self.data, self.bar = records, n, distinct, data, bar

    def add(
        self, examples: list[dict[str, Any]], round_: int, references: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The records made of the new `examples` a call wrote with `references`."""
        added = []
        for example in examples:
            key = hashlib.sha256(json.dumps(example, sort_keys=True).encode()).hexdigest()[:12]
            if len(self.records) >= self.n or not self.distinct.add_if_new({"id": key, **example}):
                continue
            record = {
                "id": key,
                **example,
                "round": round_,
                "references": [r["id"] for r in references] or [FORMAT_EXAMPLE_ID],
            }
            self.data.append(record)
            self.records.append(record)
            added.append(record)
            self.bar.update()
        return added


def _round(
    program: SelfReferenceGenerator,
    engine: CallEngine,
    pool: ThreadPoolExecutor,
    settings: RoundSettings,
    round_: int,
    records: list[dict[str, Any]],
    last_batch: list[dict[str, Any]],
    vectors: Vectors | None,
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]] | Unparseable]]:
    """The round's calls, on the pool's workers, each with its references; their examples (or why none
    parsed) are yielded in call order, so that the data is the same with any number of workers."""
    # Until something exists to refer to, the format example (always shown) is the only reference.
    rng = random.Random(settings.seed * 100_003 + round_)
    reference_sets = (
        [[]]
        if not records
        else next_references(settings.strategy, records, last_batch, settings.references, rng, vectors)
    )
    futures = [
        pool.submit(
            contextvars.copy_context().run,  # dspy.context(...) holds in the worker too
            _write,
            program,
            engine,
            references,
            settings.batch_size,
            settings.seed + 1000 * round_ + call,
        )
        for call, references in enumerate(reference_sets)
    ]
    try:
        for references, future in zip(reference_sets, futures, strict=True):
            yield references, future.result()
    finally:  # an error or Ctrl-C: drop the calls that have not started
        for future in futures:
            future.cancel()


def _write(
    program: SelfReferenceGenerator,
    engine: CallEngine,
    references: list[dict[str, Any]],
    count: int,
    sampling_seed: int,
) -> list[dict[str, Any]] | Unparseable:
    """One call's examples, asked again (with a new sampling seed) while its answer does not parse."""
    write = partial(program, references=references, count=count)
    try:
        return engine.parsed("examples", write, sampling_seed, 1).examples
    except Unparseable as exc:
        return exc


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
        example = spec.examples[0]  # its task fields only: a spec's example may carry more (`generate`)
        return {name: example[name] for name in [*spec.fields, spec.label_field]}
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
