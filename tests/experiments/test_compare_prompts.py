"""The pure parts of experiments/compare_prompts.py: arguments, folder names, the table. No model runs."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "experiments" / "compare_prompts.py"
_SPEC = importlib.util.spec_from_file_location("compare_prompts", _PATH)
compare = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = compare  # dataclasses look their module up while being built
_SPEC.loader.exec_module(compare)


@pytest.mark.parametrize(
    "argv",
    [
        ["--task", "cb"],
        ["--task", "rte", "--methods", "self-reference-best"],
        ["--task", "rte", "--methods", "targen-hand", "targen-hand"],
        ["--task", "rte", "--n", "1"],
        ["--task", "rte", "--gold", "3"],
        ["--task", "rte", "--rounds", "1"],
    ],
)
def test_bad_arguments_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        compare.parse_args(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_model_slug_is_a_folder_name():
    assert compare.model_slug("local") == "local"
    assert compare.model_slug("openai/gpt-4o-mini") == "openai-gpt-4o-mini"
    assert compare.model_slug("ollama/llama3:8b") == "ollama-llama3-8b"


def test_split_path_finds_the_only_fewglue_train_file(tmp_path):
    (tmp_path / "boolq").mkdir()
    (tmp_path / "boolq" / "train_fewglue32.jsonl").write_text("{}\n")
    (tmp_path / "boolq" / "val.jsonl").write_text("{}\n")
    assert compare.split_path(tmp_path, "boolq", "train").name == "train_fewglue32.jsonl"
    assert compare.split_path(tmp_path, "boolq", "val").name == "val.jsonl"
    with pytest.raises(SystemExit, match="no single train split"):
        compare.split_path(tmp_path, "rte", "train")


def test_table_rows_show_interval_corrector_and_missing_figures():
    judged = compare.SetRow(
        name="targen-compiled",
        size=200,
        labels={"entailment": 120, "not_entailment": 80},
        accuracy=0.5523,
        ci_low=0.5012,
        ci_high=0.6034,
        corrector=61.11,
        distinct_1=0.2,
        distinct_2=0.5,
        cosine=0.31,
        near_duplicates=0.025,
        pvi=None,
    )
    skipped = compare.SetRow(
        "self-reference-tree", 3, {"entailment": 3, "not_entailment": 0}, note="one label"
    )
    lines = compare.markdown_table([judged, skipped]).splitlines()
    assert len(lines) == 4 and lines[1].count("---") == 10
    assert "| 0.552 (0.501-0.603) | 61.1% |" in lines[2]
    assert "entailment 60% / not_entailment 40%" in lines[2]
    assert lines[2].endswith("| 0.310 | 2.5% | n/a |")
    assert lines[3].startswith("| self-reference-tree (one label) | 3 |")
    assert lines[3].count("n/a") == 7
