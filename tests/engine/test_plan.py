from collections import Counter

import pytest

from targen_dspy.engine.plan import label_counts, plan_slots
from targen_dspy.signatures import parse_spec


def materials(contexts: int, seeds: int):
    return [(f"ctx{c}", [f"seed{c}.{s}" for s in range(seeds)]) for c in range(contexts)]


@pytest.mark.parametrize("n", [1, 2, 7, 8, 100])
def test_counts_are_exact_and_even(rte, n):
    counts = label_counts(rte, n)
    assert sum(counts.values()) == n
    assert max(counts.values()) - min(counts.values()) <= 1


def test_counts_follow_weights(rte):
    data = rte.model_dump()
    data["labels"][0]["weight"] = 3
    spec = parse_spec(data)
    assert label_counts(spec, 8) == {"entailment": 6, "not_entailment": 2}


def test_slots_balanced_unique_and_spread_over_contexts(rte):
    slots = list(plan_slots(rte, 10, materials(3, 2)))  # 5 seeds needed, as many contexts as it takes
    assert len(slots) == 10
    assert len({s.id for s in slots}) == 10
    assert Counter(s.label for s in slots) == {"entailment": 5, "not_entailment": 5}
    assert {s.context for s in slots} == {"ctx0", "ctx1", "ctx2"}
    # each seed serves one slot per label: pairs built from the same raw material
    assert all(count <= 2 for count in Counter(s.seed for s in slots).values())
    assert len({s.sampling_seed for s in slots}) == 10


def test_slot_ids_are_deterministic(copa):
    assert [s.id for s in list(plan_slots(copa, 6, materials(2, 2)))] == [
        s.id for s in list(plan_slots(copa, 6, materials(2, 2)))
    ]


def test_too_few_seeds_is_an_error(rte):
    with pytest.raises(ValueError, match="2 seeds for 3 needed"):
        list(plan_slots(rte, 6, materials(1, 2)))


def test_slots_are_planned_as_the_materials_arrive(rte):
    arrived = []

    def materials_one_by_one():
        for context in materials(3, 2):
            arrived.append(context[0])
            yield context

    slots = plan_slots(rte, 10, materials_one_by_one())
    assert next(slots).context == "ctx0" and arrived == ["ctx0"]  # no waiting for later contexts
    rest = list(slots)
    assert len(rest) == 9 and arrived == ["ctx0", "ctx1", "ctx2"]
