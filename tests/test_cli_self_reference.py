"""`targen generate --method self-reference` honours the engine's options (workers, rate limits, parse
retries, the near-duplicate threshold), measured on a real OpenAI-compatible server, and every option it
has no step for (and every self-reference option given to TarGEN) is a one-line error before any call."""

import json

import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.cli import main


@pytest.fixture
def one_encoder(encoder, monkeypatch, fresh_run_cache):
    """The runs share the session's MiniLM instead of loading it per run, and no run replays another's
    answers from the cache."""
    monkeypatch.setattr("targen_dspy.analysis.embeddings.load_encoder", lambda: encoder)


def self_reference(server, out, *args):
    model = ["--model", "openai/served", "--api-base", server.api_base]
    return main(["generate", "rte", "--method", "self-reference", "-o", str(out), "-q", *model, *args])


def stats(out):
    return json.loads((out / "stats.json").read_text())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds-per-context", "4"], "--seeds-per-context applies to --method targen only"),
        (["--program", "program.json"], "--program applies to --method targen only"),
        (["--constraint", "Short."], "--constraint applies to --method targen only"),
        (["--correction", "relabel"], "--correction applies to --method targen only"),  # the default, given
        (["--corrector-model", "openai/judge"], "--corrector-model applies to --method targen only"),
        (["--corrector-api-base", "http://x/v1"], "--corrector-api-base applies to --method targen only"),
        (["--reflect", "0"], "--reflect applies to --method targen only"),
        (["--harder"], "--harder applies to --method targen only"),
        (["--verify-code"], "--verify-code applies to --method targen only"),
        (["--corpus", "docs"], "--corpus applies to --method targen only"),
        (["--workers", "2"], "--workers above 1 applies to --method self-reference with --strategy tree"),
    ],
)
def test_an_option_self_reference_has_no_step_for_is_one_line(args, message, server, tmp_path, capsys):
    calls = server.calls
    assert self_reference(server, tmp_path / "run", *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert server.calls == calls and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--strategy", "random"],
        ["--batch-size", "5"],
        ["--references", "2"],
        ["--max-rounds", "3"],
        ["--patience", "3"],
        ["--example", "example.json"],
    ],
)
def test_a_self_reference_option_given_to_targen_is_one_line(args, server, tmp_path, capsys):
    model = ["--model", "openai/served", "--api-base", server.api_base]
    assert main(["generate", "rte", "-o", str(tmp_path / "run"), "-q", *model, *args]) == 2
    err = capsys.readouterr().err
    assert f"{args[0]} applies to --method self-reference only" in err and len(err.strip().splitlines()) == 1


def test_workers_run_a_tree_rounds_calls_in_parallel(tmp_path, one_encoder):
    with FakeOpenAI(latency=0.3) as server:
        code = self_reference(
            server, tmp_path, "-n", "10", "--strategy", "tree", "--batch-size", "4", "--workers", "4"
        )
        traffic = server.traffic
    assert code == 0 and stats(tmp_path)["instances"] == 10
    assert traffic.max_in_flight == 4  # round 1: one call per example of round 0, all at once


# The limiter books each call's start a fixed time after the one before; the server sees the first request
# a little after its start (formatting, connecting), so the spans below allow half a second of that.
LAG = 0.5


def test_rpm_spaces_the_requests(tmp_path, one_encoder):
    with FakeOpenAI() as server:
        assert self_reference(server, tmp_path, "-n", "6", "--batch-size", "2", "--rpm", "60") == 0
        traffic = server.traffic
    assert traffic.requests == 3  # 2 examples a call
    assert traffic.last_answer - traffic.first_request >= 1.0 * (traffic.requests - 1) - LAG  # 60/60 s apart


def test_tpm_spaces_the_requests_by_their_tokens(tmp_path, one_encoder):
    with FakeOpenAI(usage_tokens=500) as server:  # every call reports 500 tokens
        assert self_reference(server, tmp_path, "-n", "6", "--batch-size", "2", "--tpm", "30000") == 0
        traffic = server.traffic
    assert traffic.requests == 3
    # 500 tokens at 30,000 a minute: each call starts 1 s after the one before
    assert traffic.last_answer - traffic.first_request >= 1.0 * (traffic.requests - 1) - LAG


def test_answers_that_do_not_parse_are_asked_again_then_recorded(tmp_path, one_encoder):
    with FakeOpenAI(garbage_after={"examples": 1}) as server:  # one good answer, then garbage
        assert self_reference(server, tmp_path, "-n", "6", "--batch-size", "2", "--patience", "2") == 0
    result = stats(tmp_path)
    assert result["instances"] == 2 and result["failed_calls"] == 2 and result["retries"] == {"examples": 4}
    failed = [json.loads(line) for line in (tmp_path / "failed.jsonl").read_text().splitlines()]
    assert len(failed) == 2 and all("not the JSON object" in record["raw"] for record in failed)


def test_dedup_sets_the_near_duplicate_threshold(tmp_path, one_encoder):
    with FakeOpenAI() as server:
        assert self_reference(server, tmp_path / "loose", "-n", "6", "--batch-size", "3") == 0
        assert (
            self_reference(server, tmp_path / "strict", "-n", "6", "--batch-size", "3", "--dedup", "0.05")
            == 0
        )
    assert stats(tmp_path / "loose")["instances"] == 6  # at 0.95 the server's sentences are all distinct
    manifest = json.loads((tmp_path / "strict" / "manifest.json").read_text())
    assert manifest["settings"]["near_duplicate"] == 0.05
    # at 0.05 nearly every sentence is a near-duplicate of one kept before
    assert stats(tmp_path / "strict")["instances"] < 6
