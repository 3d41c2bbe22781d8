"""Batch runs against the fake's files and batches endpoints: the same records as an online run, retries
in later rounds, failed and expired jobs, and the journal that a resumed run reads."""

import json
from collections import Counter

import dspy
import pytest

from targen_dspy.backends import build_lm
from targen_dspy.backends.batch_api import OpenAIBatches
from targen_dspy.backends.fake_batches import BatchPlan
from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.backends.json_adapter import SignatureCachedJSONAdapter
from targen_dspy.backends.replay import MAX_SUBMISSIONS, Answers, batch_lm
from targen_dspy.engine.batch import BatchBackend
from targen_dspy.engine.cache import RunCache
from targen_dspy.engine.rundir import RunDirectory, targen_records
from targen_dspy.engine.runner import RunSettings, run
from targen_dspy.errors import ModelError, RunError
from targen_dspy.program import TarGEN
from targen_dspy.signatures import load_task
from tests.engine.test_dedup import FakeEncoder

MODEL = "openai/gpt-4o-mini"


def generate(spec, server, path, n, *, batch, monkeypatch, embed=None, cache="cache", **settings):
    """A run of `n` instances into `path` (its own DSPy cache, named `cache`: no answer of another run is
    replayed)."""
    monkeypatch.setattr(dspy, "cache", RunCache(str(path.parent / f"{path.name}-{cache}")))
    program = TarGEN(spec)
    online = build_lm(MODEL, api_base=server.api_base)
    backend = None
    if batch:
        answers = Answers()
        program.set_lm(batch_lm(online, answers))
        backend = BatchBackend(OpenAIBatches(server.api_base, "test-key"), answers, poll_seconds=0.01)
    else:
        program.set_lm(online)
    run_dir = RunDirectory(path, targen_records(spec.label_field, list(spec.fields)))
    settings = RunSettings(n=n, seeds_per_context=2, batch=batch, **settings)
    with dspy.context(adapter=SignatureCachedJSONAdapter()):
        stats = run(
            program, run_dir, settings, {"generator": MODEL}, progress=False, batch=backend, embed=embed
        )
    return stats.to_json()


def rows(path, name="data.jsonl"):
    file = path / name
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


@pytest.mark.parametrize("task", ["rte", "ticket_urgency"])  # two labels; four labels over attributes
def test_batch_and_online_runs_give_the_same_records(task, tmp_path, monkeypatch):
    spec = load_task(task)
    with FakeOpenAI(record_bodies=True) as online_server:
        online = generate(spec, online_server, tmp_path / "online", 12, batch=False, monkeypatch=monkeypatch)
    with FakeOpenAI(batches=BatchPlan(delay=0.05)) as server:
        batched = generate(spec, server, tmp_path / "batch", 12, batch=True, monkeypatch=monkeypatch)
        submitted = server.batches.submitted
        first_file = json.loads(server.batches.files["file-1"].splitlines()[0])
    # the first request (contexts: no earlier answer shapes it) is the online run's, the same JSON body
    assert first_file["body"] == online_server.bodies[0] and first_file["url"] == "/v1/chat/completions"
    online_rows, batch_rows = rows(tmp_path / "online"), rows(tmp_path / "batch")
    assert [set(row) for row in batch_rows] == [set(row) for row in online_rows]
    assert sorted(row["id"] for row in batch_rows) == sorted(row["id"] for row in online_rows)
    labels = [Counter(row["constrained_label"] for row in run) for run in (batch_rows, online_rows)]
    assert labels[0] == labels[1]
    assert batched["instances"] == online["instances"] == 12 and batched["failed_slots"] == 0
    # one request per call, each submitted once: contexts, seeds, then generation and correction rounds
    assert set(submitted.values()) == {1}
    assert batched["batch"]["requests"] == len(submitted) == batched["this_invocation"]["calls"]
    assert batched["batch"]["jobs"] == 4  # contexts, seeds, instances (generation), instances (correction)
    assert batched["this_invocation"]["calls"] == online["this_invocation"]["calls"]
    # the fake bills a quarter of the characters: the same prompts, so the same tokens as online
    assert batched["this_invocation"]["prompt_tokens"] == online["this_invocation"]["prompt_tokens"]
    assert batched["batch"]["cost_usd"] == pytest.approx(online["this_invocation"]["cost_usd"] / 2, rel=0.05)
    attributes = [{row["id"]: row.get("attributes") for row in run} for run in (batch_rows, online_rows)]
    assert attributes[0] == attributes[1]
    manifest = json.loads((tmp_path / "batch" / "manifest.json").read_text())
    assert manifest["settings"]["batch"] is True
    journal = rows(tmp_path / "batch", "batches.jsonl")
    stages = [event["stage"] for event in journal if event["event"] == "uploaded"]
    assert stages == ["contexts", "seeds", "instances", "instances"]
    uploaded = [event for event in journal if event["event"] == "uploaded" and event["stage"] == "instances"]
    assert all(sorted(event["slots"]) == sorted(r["id"] for r in batch_rows) for event in uploaded)


def test_group_checking_drops_the_same_instances_as_online(rte, tmp_path, monkeypatch):
    counts = []
    for batch in (False, True):
        with FakeOpenAI(batches=BatchPlan()) as server:
            stats = generate(rte, server, tmp_path / f"run-{batch}", 8, batch=batch, monkeypatch=monkeypatch,
                             embed=FakeEncoder().embed, dedup=0.9)  # fmt: skip
        kept, dropped = rows(tmp_path / f"run-{batch}"), rows(tmp_path / f"run-{batch}", "duplicates.jsonl")
        counts.append(
            (stats["duplicates_removed"], sorted(r["id"] for r in kept), sorted(r["id"] for r in dropped))
        )
    assert counts[0] == counts[1] and counts[0][0] > 0  # the fake's texts differ only in their numbers


def test_unparseable_answers_are_asked_again_in_the_next_round(rte, tmp_path, monkeypatch):
    """As online: a slot whose hypothesis does not parse is asked again with a new sampling seed (a new
    request, in a later batch), and fails after the same number of attempts."""
    garbage = {"hypothesis": 3}  # three good instance answers, then garbage
    with FakeOpenAI(garbage_after=garbage) as online_server:
        online = generate(rte, online_server, tmp_path / "online", 6, batch=False, monkeypatch=monkeypatch)
    with FakeOpenAI(garbage_after=garbage) as server:
        batched = generate(rte, server, tmp_path / "batch", 6, batch=True, monkeypatch=monkeypatch)
        submitted = server.batches.submitted
    assert batched["instances"] == online["instances"] == 3
    assert batched["failed_slots"] == online["failed_slots"] == 3
    assert batched["retries"] == online["retries"] == {"instances": 6}  # 2 more attempts per failed slot
    failed = rows(tmp_path / "batch", "failed.jsonl")
    assert len(failed) == 3 and all(row["error"] == "unparseable model output" for row in failed)
    assert set(submitted.values()) == {1}  # every attempt a request of its own
    journal = rows(tmp_path / "batch", "batches.jsonl")
    assert [e["stage"] for e in journal if e["event"] == "uploaded"].count("instances") == 3


def test_failed_items_and_an_expired_job_are_submitted_again(rte, tmp_path, monkeypatch):
    plan = BatchPlan(fail_every=5, expire_batches=1)  # the contexts job expires; every 5th answer fails
    with FakeOpenAI(batches=plan) as server:
        stats = generate(rte, server, tmp_path / "run", 8, batch=True, monkeypatch=monkeypatch)
        submitted = server.batches.submitted
    assert stats["instances"] == 8 and stats["failed_slots"] == 0
    errors = [row for row in rows(tmp_path / "run", "responses.jsonl") if row["status"] != 200]
    assert errors and {row["body"]["error"]["type"] for row in errors} == {"server_error"}
    # each failed or expired answer made exactly one more submission of its request
    failures = Counter(row["custom_id"] for row in errors)
    assert all(submitted[custom_id] == failures[custom_id] + 1 for custom_id in submitted)
    journal = rows(tmp_path / "run", "batches.jsonl")
    expired = [e for e in journal if e["event"] == "state" and e["status"] == "expired"]
    assert len(expired) == 1 and expired[0]["counts"]["failed"] == 1
    assert any("injected fault" in row["body"]["error"]["message"] for row in errors)


def test_a_request_that_always_fails_fails_its_slot_after_the_bounded_submissions(rte, tmp_path, monkeypatch):
    plan = BatchPlan(fail_containing="[[ ## target_label ## ]]")  # every instance generation fails
    with FakeOpenAI(batches=plan) as server:
        stats = generate(rte, server, tmp_path / "run", 4, batch=True, monkeypatch=monkeypatch)
        submitted = server.batches.submitted
    assert stats["instances"] == 0 and stats["failed_slots"] == 4
    assert sorted(submitted.values()) == [1, 1] + [MAX_SUBMISSIONS] * 4  # contexts, seeds; each slot 3 times
    failed = rows(tmp_path / "run", "failed.jsonl")
    assert sorted(row["id"] for row in failed) == ["c0-s0-l0", "c0-s0-l1", "c0-s1-l0", "c0-s1-l1"]
    assert all("injected fault" in row["error"] for row in failed)


def test_batch_needs_an_openai_model(rte, tmp_path):
    online = dspy.LM("anthropic/claude-3-5-haiku-latest", api_key="not-a-key")
    with pytest.raises(ModelError, match="--batch uses the OpenAI batch API"):
        batch_lm(online, Answers())


def test_a_corrupt_journal_is_a_one_line_error(rte, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "batches.jsonl").write_text('{"event": "fetched", "file": "file-9"}\n')
    with FakeOpenAI() as server, pytest.raises(RunError, match="names file file-9 before its upload"):
        generate(rte, server, run_dir, 4, batch=True, monkeypatch=monkeypatch)


def test_a_crash_while_storing_a_jobs_results_fetches_the_rest_once(rte, tmp_path, monkeypatch):
    """Killed after some of a job's results were appended and before its `fetched` line: the rerun polls
    that job again, stores the results it lacks, each once, and submits nothing again."""
    run_dir = tmp_path / "run"
    with FakeOpenAI(batches=BatchPlan()) as server:
        generate(rte, server, run_dir, 6, batch=True, monkeypatch=monkeypatch)
        events = rows(run_dir, "batches.jsonl")
        last = events[-1]["file"]
        assert events[-1] == {"event": "fetched", "file": last}
        (run_dir / "batches.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events[:-1]))
        stored = (run_dir / "responses.jsonl").read_text().splitlines(keepends=True)
        (run_dir / "responses.jsonl").write_text("".join(stored[:-3]))  # the last 3 results not yet stored
        (run_dir / "data.jsonl").unlink()  # nor any record
        submitted_before = dict(server.batches.submitted)
        # a fresh DSPy cache: the killed process had not used the answers it had not stored
        stats = generate(rte, server, run_dir, 6, batch=True, monkeypatch=monkeypatch, cache="rerun")
        assert dict(server.batches.submitted) == submitted_before
    assert stats["instances"] == 6
    responses = [(row["batch"], row["custom_id"]) for row in rows(run_dir, "responses.jsonl")]
    assert len(responses) == len(set(responses)) == len(stored)
    assert stats["batch"]["answers"] == len(stored)
