import json
from collections import Counter

import dspy
import pytest

from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.runner import RunSettings, run
from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from tests.conftest import json_lm

CONTEXTS = {"contexts": ["Sport", "Finance", "Medicine"]}


def seeds_by_context():
    """Distinct seeds per context (a seed repeated under another context would be dropped)."""
    return {
        f"## setting ## ]]\n{c}\n\n[[ ## avoid": {"seeds": [f"{c} seed number {i}." for i in range(4)]}
        for c in CONTEXTS["contexts"]
    }


def rte_lm(flip: bool = False):
    """Contexts, seeds and one answer per label; the corrector flips entailment when asked to."""
    return json_lm(
        {
            "## context_kind ##": CONTEXTS,
            **seeds_by_context(),
            "## target_label ## ]]\nentailment": {"hypothesis": "It restates the premise."},
            "## target_label ## ]]\nnot_entailment": {"hypothesis": "It adds a new claim."},
            "## proposed_label ## ]]\nentailment": {
                "reasoning": "checked",
                "corrected_label": "not_entailment" if flip else "entailment",
            },
            "## proposed_label ## ]]\nnot_entailment": {
                "reasoning": "checked",
                "corrected_label": "not_entailment",
            },
        }
    )


def generate(spec, path, n, lm, **kw):
    program = TarGEN(spec)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        return run(
            program,
            RunDirectory(path),
            RunSettings(n=n, seeds_per_context=2, **kw),
            {"generator": "dummy"},
            progress=False,
        ).to_json()


def lines(path):
    return [json.loads(line) for line in (path / "data.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("workers", [1, 4])
def test_run_writes_n_balanced_records(rte, tmp_path, workers):
    stats = generate(rte, tmp_path, 7, rte_lm(), workers=workers)
    records = lines(tmp_path)
    assert len(records) == 7 and stats["instances"] == 7
    assert sorted(Counter(r["constrained_label"] for r in records).values()) == [3, 4]
    for r in records:
        assert set(r) >= {
            "id",
            "premise",
            "hypothesis",
            "label",
            "constrained_label",
            "relabeled",
            "context",
            "seed",
        }
        assert r["premise"] == r["seed"] and r["hypothesis"]
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["spec_hash"] == rte.hash and manifest["settings"]["n"] == 7


def test_relabels_are_applied_and_counted(rte, tmp_path):
    stats = generate(rte, tmp_path, 4, rte_lm(flip=True))
    records = lines(tmp_path)
    flipped = [r for r in records if r["relabeled"]]
    assert len(flipped) == 2 == stats["relabeled"]
    assert all(r["constrained_label"] == "entailment" and r["label"] == "not_entailment" for r in flipped)
    # keyed by the labels as written in the data
    assert stats["confusion"] == {
        "entailment": {"not_entailment": 2},
        "not_entailment": {"not_entailment": 2},
    }


def test_materials_are_generated_once_and_reused_on_resume(rte, tmp_path):
    first = generate(rte, tmp_path, 4, rte_lm())["this_invocation"]
    # one contexts call, one seeds call (2 seeds needed, 2 per context), two calls per instance
    assert first["calls"] == 1 + 1 + 2 * 4 and first["cache_hits"] == 0 and first["slots_made"] == 4
    again = generate(rte, tmp_path, 4, rte_lm())["this_invocation"]
    assert again["calls"] == 0 and again["slots_made"] == 0  # everything already on disk
    assert len(lines(tmp_path)) == 4


def test_resume_after_torn_line_finishes_without_duplicates(rte, tmp_path):
    generate(rte, tmp_path, 6, rte_lm())
    data = tmp_path / "data.jsonl"
    kept = data.read_text().splitlines()[:3]
    data.write_text("\n".join(kept) + "\n" + '{"id": "c1-s0-l0", "premise": "tor')  # crash mid-write
    generate(rte, tmp_path, 6, rte_lm())
    ids = [r["id"] for r in lines(tmp_path)]
    assert len(ids) == 6 == len(set(ids))


def test_resume_with_other_spec_is_refused_unless_forced(rte, tmp_path):
    generate(rte, tmp_path, 2, rte_lm())
    changed = rte.model_copy(update={"correction": "Be strict."})
    with pytest.raises(RunError, match="another task spec"):
        generate(changed, tmp_path, 2, rte_lm())
    with dspy.context(lm=rte_lm(), adapter=dspy.JSONAdapter()):
        stats = run(
            TarGEN(changed),
            RunDirectory(tmp_path),
            RunSettings(n=2, seeds_per_context=2),
            {},
            force=True,
            progress=False,
        ).to_json()
    assert stats["instances"] == 2


def test_unparseable_output_is_retried_then_recorded_as_failed(rte, tmp_path):
    lm = json_lm(
        {
            "## context_kind ##": CONTEXTS,
            **seeds_by_context(),
            "## target_label ##": {"wrong_field": "x"},
        }
    )
    stats = generate(rte, tmp_path, 2, lm, max_attempts=2)
    assert stats["failed_slots"] == 2 and stats["instances"] == 0
    failed = [json.loads(line) for line in (tmp_path / "failed.jsonl").read_text().splitlines()]
    assert {f["id"] for f in failed} == {"c0-s0-l0", "c0-s0-l1"} and all(
        "wrong_field" in f["raw"] for f in failed
    )


class SeedRecordingEngine:
    """A DSPy engine answering like `json_lm` (the fields of the first key found in the prompt) that notes
    the sampling seed of every instance request (the run keeps no history)."""

    supports_response_schema = False
    supported_params = frozenset({"temperature", "max_tokens", "seed"})

    def __init__(self, answers):
        self.answers, self.instance_seeds = answers, []

    def complete(self, request):
        from dspy.lm15 import Message, Response, TextPart, Usage

        prompt = "".join(message.text or "" for message in request.messages)
        if "target_label" in prompt:
            self.instance_seeds.append(request.config.seed)
        fields = next(fields for key, fields in self.answers.items() if key in prompt)
        return Response(
            id="r",
            model="seed-recording",
            message=Message.assistant([TextPart(json.dumps(fields))]),
            finish_reason="stop",
            usage=Usage(input_tokens=1, output_tokens=1, total_tokens=2),
        )

    def close(self):
        pass


def test_a_failed_slot_is_asked_with_new_sampling_seeds_when_the_run_is_resumed(rte, tmp_path):
    """With the seeds of the first invocation, a seeded model would write the same unusable answers."""
    answers = {
        "## context_kind ##": CONTEXTS,
        **seeds_by_context(),
        "## target_label ##": {"wrong_field": "x"},
    }
    first, second = SeedRecordingEngine(answers), SeedRecordingEngine(answers)
    for engine in (first, second):
        generate(
            rte, tmp_path, 2, dspy.LM("local/seed-recording", engine=engine, cache=False), max_attempts=2
        )
    assert len(set(first.instance_seeds)) == 4 and len(set(second.instance_seeds)) == 4  # 2 slots x 2 tries
    assert not set(first.instance_seeds) & set(second.instance_seeds)
    failed = Counter(json.loads(line)["id"] for line in (tmp_path / "failed.jsonl").read_text().splitlines())
    assert failed == {"c0-s0-l0": 2, "c0-s0-l1": 2}


class SettingsRecordingEngine(SeedRecordingEngine):
    """Notes the DSPy settings each call is made under (on the run's worker threads)."""

    def __init__(self, answers):
        super().__init__(answers)
        self.settings: set[tuple] = set()

    def complete(self, request):
        settings = dspy.settings
        self.settings.add((settings.disable_history, settings.trace, settings.warn_on_type_mismatch))
        return super().complete(request)


@pytest.mark.parametrize("workers", [1, 4])
def test_every_call_of_a_run_keeps_no_history_no_trace_and_checks_no_input_types(rte, tmp_path, workers):
    engine = SettingsRecordingEngine(rte_lm().answers)
    generate(rte, tmp_path, 4, dspy.LM("local/recording", engine=engine, cache=False), workers=workers)
    assert engine.settings == {(True, None, False)}
    assert dspy.settings.warn_on_type_mismatch and not dspy.settings.disable_history  # as before the run


def test_too_few_seeds_is_a_clear_error(rte, tmp_path):
    lm = json_lm(
        {"## context_kind ##": {"contexts": ["Sport"]}, "## seed_kind ##": {"seeds": ["Only one seed here."]}}
    )
    with pytest.raises(RunError, match="only 1 distinct seeds of the 3"):
        generate(rte, tmp_path, 6, lm)
