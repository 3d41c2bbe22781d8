"""The pure parts of experiments/datagen_diversity.py: arguments, the specs of the four runs, the table.
No model runs."""

import importlib.util
import sys
from pathlib import Path

import pytest

from targen_dspy.signatures import load_task

_PATH = Path(__file__).resolve().parents[2] / "experiments" / "datagen_diversity.py"
_SPEC = importlib.util.spec_from_file_location("datagen_diversity", _PATH)
datagen = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = datagen  # dataclasses look their module up while being built
_SPEC.loader.exec_module(datagen)


@pytest.mark.parametrize("argv", [["--n", "1"], ["--dedup", "0"], ["--dedup", "1.2"]])
def test_bad_arguments_exit_with_usage_error(argv):
    with pytest.raises(SystemExit) as exit_:
        datagen.parse_args(argv)
    assert exit_.value.code == 2


def test_a_task_without_attributes_gets_the_generic_ones_and_keeps_its_plain_spec():
    rte = load_task("rte")
    assert datagen.with_attributes(rte).attributes == datagen.ATTRIBUTES
    assert datagen.without_attributes(rte).hash == rte.hash
    tickets = load_task("ticket_urgency")
    assert datagen.with_attributes(tickets) is tickets  # its own attributes
    assert not datagen.without_attributes(tickets).attributes


def test_table_shows_removed_only_for_group_checked_runs():
    row = dict(
        generated=10,
        labels={"entailment": 5, "not_entailment": 5},
        distinct_1=0.5,
        distinct_2=0.75,
        cosine=0.4,
        near_duplicates=0.1,
        near_threshold=0.2,
        calls=0,
        seconds=1.0,
    )
    rows = [
        datagen.Row(name="plain", kept=10, removed=0, combinations=None, **row),
        datagen.Row(name="attributes+dedup", kept=7, removed=3, combinations=6, **row),
    ]
    table = datagen.markdown_table(rows, size=7, threshold=0.9)
    lines = table.splitlines()
    assert "removed (cosine ≥ 0.9)" in lines[0] and "distinct-1 (7 sampled)" in lines[0]
    assert lines[2].split(" | ")[3] == "-" and lines[3].split(" | ")[3] == "3"
    assert "| 6 |" in lines[3] and "| 10.0% | 20.0% |" in lines[3]
    assert "near-duplicates ≥ 0.9 (all kept)" in lines[0]
