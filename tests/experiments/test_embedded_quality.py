"""experiments/embedded_quality.py on the fake OpenAI server: configurations, the spec without bounds,
and a real (small) run of two configurations whose table and results accumulate across invocations."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.signatures import load_task

_PATH = Path(__file__).resolve().parents[2] / "experiments" / "embedded_quality.py"
_SPEC = importlib.util.spec_from_file_location("embedded_quality", _PATH)
quality = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = quality  # dataclasses look their module up while being built
_SPEC.loader.exec_module(quality)


def test_configurations_name_the_levers_they_switch_on():
    assert quality.levers_of("before") == frozenset()
    assert quality.levers_of("after") == frozenset(quality.LEVERS)
    assert quality.levers_of("only:examples") == {"examples"}
    assert quality.levers_of("without:reject") == set(quality.LEVERS) - {"reject"}


@pytest.mark.parametrize("config", ["only:nothing", "some:examples", "later"])
def test_an_unknown_configuration_is_a_usage_error(config):
    with pytest.raises(SystemExit) as exit_:
        quality.parse_args(["--configs", config])
    assert exit_.value.code == 2


def test_the_spec_without_bounds_is_the_spec_as_it_was_before_bounds():
    for task in ("rte", "multirc", "copa"):
        spec = load_task(task)
        plain = quality.without_bounds(spec)
        assert all(field.word_bounds is None for field in {**plain.fields, **(plain.generate or {})}.values())
        assert plain.hash != spec.hash and plain.postprocess == spec.postprocess


def test_runs_on_a_server_and_accumulates_the_table(tmp_path, fresh_run_cache):
    out = tmp_path / "quality"
    common = ["--tasks", "rte", "--n", "4", "--model", "openai/served", "--out", str(out), "-q"]
    with FakeOpenAI(flip_labels=False) as server:
        quality.main([*common, "--api-base", server.api_base, "--configs", "before", "after"])
        quality.main([*common, "--api-base", server.api_base, "--configs", "only:reject"])
    results = json.loads((out / "results.json").read_text())
    cells = {cell["config"]: cell for cell in results["cells"]}
    assert set(cells) == {"before", "after", "only:reject"}
    # the fake server writes task-shaped text: every instance passes, with or without the levers
    assert all((cell["passing"], cell["written"], cell["error"]) == (4, 4, None) for cell in cells.values())
    assert (out / "rte" / "only-reject" / "data.jsonl").exists()
    table = (out / "table.md").read_text()
    assert "| task | before | only:reject | after |" in table
    assert "| rte | 4/4 (100%) | 4/4 (100%) | 4/4 (100%) |" in table
    assert "| all | 4/4 (100%) | 4/4 (100%) | 4/4 (100%) |" in table


def test_score_only_judges_the_runs_on_disk_again_without_calls(tmp_path, fresh_run_cache):
    out = tmp_path / "quality"
    common = ["--tasks", "rte", "--n", "4", "--model", "openai/served", "--out", str(out), "-q"]
    with FakeOpenAI(flip_labels=False) as server:
        quality.main([*common, "--api-base", server.api_base, "--configs", "after"])
        calls = server.calls
        data = out / "rte" / "after" / "data.jsonl"
        records = [json.loads(line) for line in data.read_text().splitlines()]
        records[0]["hypothesis"] = records[0]["premise"]  # as if a stricter check judged it again
        data.write_text("".join(json.dumps(record) + "\n" for record in records))
        quality.main([*common, "--api-base", server.api_base, "--configs", "after", "--score-only"])
        assert server.calls == calls
    (cell,) = json.loads((out / "results.json").read_text())["cells"]
    assert (cell["passing"], cell["written"]) == (3, 4)
    assert cell["calls"] > 0  # the calls the run made, kept from when it ran
    assert "hypothesis is the same text as premise" in cell["example_problems"][0]
