"""The meter: LM calls, cache hits and tokens of a run, and the tokens of each unit of work."""

import contextlib
import contextvars
import pickle
import threading
import uuid

import dspy
import dspy.clients.execution
from dspy.lm15 import Message, Response, TextPart, Usage

from targen_dspy.engine import meter as meter_module
from targen_dspy.engine.meter import Meter


class UsageEngine:
    """A DSPy engine answering every request with the same JSON and 7 prompt + 3 completion tokens."""

    supports_response_schema = True
    supported_params = frozenset({"response_format", "temperature", "max_tokens", "seed"})

    def complete(self, request):
        return Response(
            id="r",
            model="usage-engine",
            message=Message.assistant([TextPart('{"answer": "yes"}')]),
            finish_reason="stop",
            usage=Usage(input_tokens=7, output_tokens=3, total_tokens=10),
        )

    def close(self):
        pass


def test_calls_cache_hits_tokens_and_per_unit_tokens_across_threads():
    lm = dspy.LM("local/usage-engine", engine=UsageEngine(), cache=True)
    program = dspy.Predict("question -> answer")
    meter = Meter()
    asked = uuid.uuid4().hex  # nothing in the test cache yet
    units: list[int] = []

    def work(question: str, calls: int) -> None:
        with meter.unit() as usage:
            for _ in range(calls):
                program(question=question)  # the second time: from DSPy's cache
        units.append(usage.tokens)

    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()), meter.counting(program):
        threads = [  # in a copy of the context, as the engine's workers
            threading.Thread(target=contextvars.copy_context().run, args=(work, f"{asked} {i}", 2))
            for i in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        program(question=f"{asked} outside any unit")
    summary = meter.summary()
    assert summary["calls"] == 7 and summary["cache_hits"] == 3
    assert summary["prompt_tokens"] == 4 * 7 and summary["completion_tokens"] == 4 * 3
    assert units == [10, 10, 10]  # each unit its own billed call, the cached one free
    assert meter.mean_tokens_per_call() == 10
    assert lm.callbacks == []  # counting leaves the LM as it found it, and DSPy's finalize too
    assert dspy.clients.execution.finalize is meter_module._finalize


def test_meters_of_other_processes_add_up_through_their_snapshots():
    """A Ray run's driver adds each actor's meter (a snapshot: plain data, as it crosses processes)."""
    lm = dspy.LM("local/usage-engine", engine=UsageEngine(), cache=True)
    program = dspy.Predict("question -> answer")
    actors = [Meter(), Meter()]
    asked = uuid.uuid4().hex
    for i, meter in enumerate(actors):
        with dspy.context(lm=lm, adapter=dspy.JSONAdapter()), meter.counting(program):
            program(question=f"{asked} {i}")
            program(question=f"{asked} {i}")  # from the cache
        meter.count_retry()
        meter.count_parse_retry("instances")
    run = Meter()
    run.add(pickle.loads(pickle.dumps(actors[0].snapshot())))
    run.add(pickle.loads(pickle.dumps(actors[1].snapshot())))
    summary = run.summary()
    assert (summary["calls"], summary["cache_hits"], summary["retries"]) == (4, 2, 2)
    assert (summary["prompt_tokens"], summary["completion_tokens"]) == (14, 6)
    assert run.parse_retries == {"instances": 2}
    assert run.mean_tokens_per_call() == 10


class FailingEngine(UsageEngine):
    def complete(self, request):
        raise RuntimeError("the server fell over")


def test_only_the_programs_answered_calls_count_and_overlapping_meters_count_their_own():
    program, other = dspy.Predict("question -> answer"), dspy.Predict("question -> answer")
    program.lm = dspy.LM("local/usage-engine", engine=UsageEngine(), cache=False)
    other.lm = dspy.LM("local/usage-engine", engine=UsageEngine(), cache=False)
    failing = dspy.Predict("question -> answer")
    failing.lm = dspy.LM("local/failing", engine=FailingEngine(), cache=False, num_retries=0)
    first, second = Meter(), Meter()
    asked = uuid.uuid4().hex
    started, ended = threading.Event(), threading.Event()

    def earlier_run() -> None:  # a run in another thread that starts first and ends first (not nested)
        with dspy.context(adapter=dspy.JSONAdapter()), first.counting(failing):
            with contextlib.suppress(Exception):
                failing(question=asked)
            started.set()
            ended.wait()

    thread = threading.Thread(target=earlier_run)
    thread.start()
    started.wait()
    with dspy.context(adapter=dspy.JSONAdapter()), second.counting(program):
        ended.set()
        thread.join()
        program(question=f"{asked} 1")
        other(question=f"{asked} 2")  # an LM of no counted program
        program(question=f"{asked} 3")
    assert dspy.clients.execution.finalize is meter_module._finalize
    assert first.summary()["calls"] == 0  # its one call failed
    assert second.summary()["calls"] == 2  # DSPy's usage tracker still sees all 3: prompt tokens 3 * 7
    assert second.summary()["prompt_tokens"] == 3 * 7
