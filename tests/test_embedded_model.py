"""The whole program on the real embedded model (SmolLM2-135M through llama.cpp), small n."""

import json
from collections import Counter

import pytest

from targen_dspy.cli import main
from targen_dspy.signatures import load_task

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", ["rte", "copa"])
def test_generate_on_embedded_model(task, tmp_path):
    spec = load_task(task)
    assert main(["generate", task, "-n", "8", "-o", str(tmp_path), "-q"]) == 0
    records = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert len(records) == 8
    assert Counter(r["constrained_label"] for r in records) == {v: 4 for v in spec.label_values}
    for record in records:
        for name, field in spec.fields.items():
            value = record[name]
            assert isinstance(value, str) and value.strip(), (name, record)
            if field.choices:
                assert value in field.choices
        assert record["label"] in spec.label_values
        assert record["relabeled"] == (record["label"] != record["constrained_label"])
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["instances"] == 8 and sum(stats["labels"].values()) == 8
