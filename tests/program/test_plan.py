from collections import Counter

import pytest

from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from targen_dspy.program.plan import Material, plan_slots
from targen_dspy.program.targen import ContextsAsk, SeedsAsk
from targen_dspy.signatures import load_task, parse_spec
from targen_dspy.signatures.labels import label_policy


def materials(contexts: int, seeds: int) -> list[Material]:
    return [Material(f"ctx{c}", tuple(f"seed{c}.{s}" for s in range(seeds))) for c in range(contexts)]


@pytest.mark.parametrize("n", [1, 2, 7, 8, 100])
def test_counts_are_exact_and_even(rte, n):
    counts = label_policy(rte).planned(n)
    assert sum(counts.values()) == n
    assert max(counts.values()) - min(counts.values()) <= 1


def test_counts_follow_weights(rte):
    data = rte.model_dump()
    data["labels"][0]["weight"] = 3
    assert label_policy(parse_spec(data)).planned(8) == {"entailment": 6, "not_entailment": 2}


def test_three_labels_give_the_remainder_to_the_first():
    assert label_policy(load_task("cb")).planned(7) == {"entailment": 3, "contradiction": 2, "neutral": 2}


def test_slots_balanced_unique_and_spread_over_contexts(rte):
    slots = list(plan_slots(rte, 10, materials(3, 2)))  # 5 seeds needed, as many contexts as it takes
    assert len(slots) == 10
    assert len({s.id for s in slots}) == 10
    assert Counter(s.label for s in slots) == {"entailment": 5, "not_entailment": 5}
    assert {s.context for s in slots} == {"ctx0", "ctx1", "ctx2"}
    # each seed serves one slot per label: pairs built from the same raw material
    assert all(count <= 2 for count in Counter(s.seed for s in slots).values())
    assert len({s.sampling_seed for s in slots}) == 10


def test_slot_ids_name_context_seed_and_label(copa):
    """Ids are what a resumed run recognises its finished slots by: context, seed and label index."""
    slots = list(plan_slots(copa, 6, materials(2, 2)))
    assert [(s.id, s.seed, s.label) for s in slots] == [
        ("c0-s0-l0", "seed0.0", 0),
        ("c0-s0-l1", "seed0.0", 1),
        ("c0-s1-l0", "seed0.1", 0),
        ("c0-s1-l1", "seed0.1", 1),
        ("c1-s0-l0", "seed1.0", 0),
        ("c1-s0-l1", "seed1.0", 1),
    ]


def test_too_few_seeds_is_an_error(rte):
    with pytest.raises(ValueError, match="2 seeds for 3 needed"):
        list(plan_slots(rte, 6, materials(1, 2)))


def test_slots_are_planned_as_the_materials_arrive(rte):
    arrived = []

    def materials_one_by_one():
        for material in materials(3, 2):
            arrived.append(material.context)
            yield material

    slots = plan_slots(rte, 10, materials_one_by_one())
    assert next(slots).context == "ctx0" and arrived == ["ctx0"]  # no waiting for later contexts
    rest = list(slots)
    assert len(rest) == 9 and arrived == ["ctx0", "ctx1", "ctx2"]


class Scripted:
    """A Scheduler whose stage answers come from scripts instead of a model; it records every ask."""

    def __init__(self, contexts: list[list[str]], seeds: dict[str, list[str]]):
        self.contexts, self.seeds, self.asks = iter(contexts), seeds, []

    def map(self, step, stage, items):
        for item in items:
            self.asks.append(item)
            yield next(self.contexts) if isinstance(item, ContextsAsk) else self.seeds[item.setting]


def test_materials_ask_for_just_enough_and_drop_seeds_seen_before(rte):
    run = Scripted(
        contexts=[["a bank", "a school", "A bank."]],  # the third is the first again
        seeds={"a bank": ["s1", "s2"], "a school": ["S1.", "s3"]},  # "S1." repeats s1
    )
    saved = []
    got = list(TarGEN(rte).materials(6, [], run, 2, saved.append))
    assert got == [Material("a bank", ("s1", "s2")), Material("a school", ("s3",))]
    assert run.asks == [
        ContextsAsk(count=2, known=(), sampling_seed=run.asks[0].sampling_seed),
        SeedsAsk("a bank", 2),
        SeedsAsk("a school", 2),
    ]
    assert saved == [got]  # saved once, at the end of the round


def test_materials_resume_from_stored_and_give_up_when_the_model_runs_dry(rte):
    stored = [Material("a bank", ("s1", "s2"))]
    run = Scripted(contexts=[[], [], []], seeds={})
    with pytest.raises(RunError, match="only 2 distinct seeds of the 4"):
        list(TarGEN(rte).materials(8, stored, run, 2, lambda materials: None))
    assert [ask.known for ask in run.asks] == [("a bank",)] * 3  # three idle rounds, then it stops
