"""Attribute-guided generation (DataGen): every label is spread evenly over the combinations of the
spec's attribute values, deterministically; the values reach the instance prompt and each record."""

import json
from collections import Counter

import dspy

from targen_dspy.program.plan import Material, attribute_combinations, plan_slots
from targen_dspy.signatures import load_task
from tests.conftest import json_lm
from tests.engine.test_runner import generate, lines, rte_lm

ATTRIBUTES = {"tone": ("formal", "casual"), "length": ("short", "medium", "long")}
MATERIALS = [Material(f"context {c}", tuple(f"seed {c}-{s}" for s in range(10))) for c in range(3)]


def with_attributes(spec):
    return spec.model_copy(update={"attributes": ATTRIBUTES})


def by_label(slots):
    counts = {}
    for slot in slots:
        counts.setdefault(slot.label, Counter())[slot.attributes] += 1
    return counts


def test_each_label_gets_every_combination_equally_often(rte):
    spec = with_attributes(rte)
    combinations = attribute_combinations(spec)
    assert len(combinations) == 6 and combinations[0] == (("tone", "formal"), ("length", "short"))
    for label, counts in by_label(list(plan_slots(spec, 24, MATERIALS))).items():
        assert counts == dict.fromkeys(combinations, 2), label  # 12 per label, 6 combinations
    for counts in by_label(list(plan_slots(spec, 14, MATERIALS))).values():  # 7 per label: off by one at most
        assert set(counts) == set(combinations) and sorted(counts.values()) == [1, 1, 1, 1, 1, 2]


def test_three_labels_stay_balanced_within_each_label():
    cb = load_task("cb").model_copy(update={"attributes": {"register": ("news", "chat", "fiction")}})
    for counts in by_label(list(plan_slots(cb, 27, MATERIALS))).values():
        assert sorted(counts.values()) == [3, 3, 3]


def test_plan_is_deterministic_and_ids_name_the_combination(rte):
    spec = with_attributes(rte)
    slots = list(plan_slots(spec, 24, MATERIALS))
    assert slots == list(plan_slots(spec, 24, MATERIALS))
    combinations = attribute_combinations(spec)
    for slot in slots:
        index = int(slot.id.rsplit("-a", 1)[1])
        assert combinations[index] == slot.attributes
    # the slots of one seed share a combination (a minimal pair differs only in its label) ...
    per_seed = {}
    for slot in slots:
        per_seed.setdefault(slot.seed, set()).add(slot.attributes)
    assert all(len(combos) == 1 for combos in per_seed.values())
    # ... and a context is not tied to one combination
    per_context = {}
    for slot in slots:
        per_context.setdefault(slot.context, set()).add(slot.attributes)
    assert all(len(combos) > 1 for combos in per_context.values())


def test_no_attributes_plans_the_same_slots_as_before(rte):
    slots = list(plan_slots(rte, 6, MATERIALS))
    assert [s.id for s in slots] == ["c0-s0-l0", "c0-s0-l1", "c0-s1-l0", "c0-s1-l1", "c0-s2-l0", "c0-s2-l1"]
    assert all(s.attributes == () for s in slots)


def attribute_lm(spec):
    """rte_lm whose instance answers echo the label and attribute values their prompt showed (the
    engine keeps no LM history to read the prompts from)."""
    lm = rte_lm()
    echo = {}
    for label in spec.label_values:
        for combination in attribute_combinations(spec):
            shown = json.dumps(dict(combination))
            key = f"## target_label_meaning ## ]]\n{spec.meaning(label)}\n\n[[ ## attributes ## ]]\n{shown}"
            echo[key] = {"hypothesis": f"{label} {shown}"}
    lm.answers = {**echo, **lm.answers}
    return lm


def test_run_records_attributes_and_puts_them_in_the_instance_prompt(rte, tmp_path):
    spec = with_attributes(rte)
    stats = generate(spec, tmp_path, 12, attribute_lm(spec))
    records = lines(tmp_path)
    assert stats["instances"] == 12
    combos = Counter((r["constrained_label"], tuple(r["attributes"].items())) for r in records)
    assert len(combos) == 12 and set(combos.values()) == {1}  # 6 per label, each combination once
    for record in records:
        assert record["hypothesis"] == f"{record['constrained_label']} {json.dumps(record['attributes'])}"
        combination = tuple(record["attributes"].items())
        assert record["id"].endswith(f"-a{attribute_combinations(spec).index(combination)}")
    again = generate(spec, tmp_path, 12, attribute_lm(spec))["this_invocation"]
    assert again["calls"] == 0 and len(lines(tmp_path)) == 12  # resumed: the ids hold the combination


def test_attributes_in_a_catalogue_task():
    spec = load_task("ticket_urgency")
    assert spec.attributes and all(len(values) >= 2 for values in spec.attributes.values())
    lm = json_lm([{"subject": "App crashes", "message": "The app closes as soon as I open it."}])
    from targen_dspy.program import InstanceGenerator

    attributes = {name: values[0] for name, values in spec.attributes.items()}
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        InstanceGenerator(spec)(setting="bank", seed="card blocked", label="high", attributes=attributes)
    assert json.dumps(attributes) in lm.history[0]["messages"][-1]["content"]
