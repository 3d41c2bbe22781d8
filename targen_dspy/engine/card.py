"""The dataset card (README.md) that `targen export` writes beside the data: Hugging Face metadata in a
YAML header, then the run's facts (task, models, program, options, labels, self-correction, and the
analysis and review figures when there are some) and the papers to cite.

The run directory is the user's to edit, so what is read from it is checked and quoted, never trusted:
numbers must be numbers, and free text goes into the Markdown with its table separators escaped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from targen_dspy.errors import RunError
from targen_dspy.inputs import MB, read_text
from targen_dspy.review.agreement import agreement
from targen_dspy.review.answers import read_answers
from targen_dspy.review.index import RunIndex
from targen_dspy.signatures import TaskSpec

MAX_PROGRAM_BYTES = 50 * MB
ANALYSIS_FIGURES = Path("data-analysis") / "figures.json"  # written by `targen analyze RUN/data.jsonl`
# Steps from DataGen (Huang et al., 2024): the manifest's `options` keys (GenerationOptions) that are its.
DATAGEN_OPTIONS = ("constraints", "reflect_rounds", "harder", "verify_code", "corpus")
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]

TARGEN = """@inproceedings{gupta2024targen,
  title     = {{TarGEN}: Targeted Data Generation with Large Language Models},
  author    = {Gupta, Himanshu and Scaria, Kevin and Anantheswaran, Ujjwala and Verma, Shreyas and
               Parmar, Mihir and Sawant, Saurabh Arjun and Baral, Chitta and Mishra, Swaroop},
  booktitle = {Conference on Language Modeling (COLM)},
  year      = {2024},
  note      = {arXiv:2310.17876}
}"""
DATAGEN = """@inproceedings{huang2025datagen,
  title     = {{DataGen}: Unified Synthetic Dataset Generation via Large Language Models},
  author    = {Huang, Yue and Wu, Siyuan and Gao, Chujie and Chen, Dongping and Zhang, Qihui and Wan, Yao and
               Zhou, Tianyi and Xiao, Chaowei and Gao, Jianfeng and Sun, Lichao and Zhang, Xiangliang},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  note      = {arXiv:2406.18966}
}"""
SELF_REFERENCE = """@inproceedings{lee2023making,
  title     = {Making Large Language Models Better Data Creators},
  author    = {Lee, Dong-Ho and Pujara, Jay and Sewak, Mohit and White, Ryen W. and Jauhar, Sujay Kumar},
  booktitle = {Proceedings of the 2023 Conference on Empirical Methods in Natural Language Processing},
  pages     = {15349--15360},
  year      = {2023}
}"""


def compiled_record(program: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The `targen` record (optimizer, scores) of a program.json, which must be for the run's spec."""
    try:
        state = json.loads(read_text(program, "--program", RunError, max_bytes=MAX_PROGRAM_BYTES))
    except (ValueError, RecursionError):
        state = None
    record = state.get("targen") if isinstance(state, dict) else None
    if not isinstance(record, dict):
        raise RunError(f"--program {program} was not written by `targen compile`")
    if record.get("spec_hash") != manifest.get("spec_hash"):
        raise RunError(
            f"--program {program} was compiled for another spec than the run's; give the one it used"
        )
    return record


def size_category(n: int) -> str:
    """The Hub's size category of a dataset of `n` rows."""
    return next((name for limit, name in _SIZES if n < limit), "n>1M" if n < 10_000_000 else "n>10M")


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split()).replace("|", "\\|").replace("`", "'")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return [*lines, *("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows), ""]


def _label(key: str) -> str:
    value = json.loads(key) if key else None
    return value if isinstance(value, str) else key


def _number(value: Any, form: str) -> str:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return format(value, form) if ok else "n/a"


def header(task: str, n: int, data_file: str, open_label: bool) -> str:
    """The card's YAML metadata: everything but the license is known; the license is the user's."""
    metadata = {
        "task_categories": ["text-generation" if open_label else "text-classification"],
        "size_categories": [size_category(n)],
        "language": ["en"],
        "tags": ["synthetic", "targen"],
        "pretty_name": f"{task} (synthetic)",
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_file}]}],
    }
    license_line = (
        "license: other  # FILL IN the license you release this data under (e.g. cc-by-4.0), within the "
        "terms of the models that wrote it\n"
    )
    return "---\n" + license_line + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def dataset_card(
    run: Path,
    manifest: dict[str, Any],
    spec: TaskSpec | None,
    data_file: str,
    compiled: dict[str, Any] | None = None,
) -> str:
    """README.md for the export of the run in `run` (with its `manifest`), whose data is `data_file`
    (relative to the card). `spec` (the run's, when known) adds the task's description and labels;
    `compiled`, the `targen` record of the program.json the run was generated with, its scores."""
    label_field = spec.label_field if spec else "label"
    index = RunIndex(run, label_field)
    index.refresh()
    counts = index.counts()
    n = counts["instances"]["data"]
    task = spec.name if spec else _cell(manifest.get("task", run.name))
    self_reference = manifest.get("method") == "self-reference"
    options = manifest.get("options") if isinstance(manifest.get("options"), dict) else {}
    settings = manifest.get("settings") if isinstance(manifest.get("settings"), dict) else {}
    datagen = sorted(key for key in DATAGEN_OPTIONS if options.get(key))
    datagen += ["dedup"] if settings.get("dedup") is not None else []
    datagen += ["attributes"] if spec is not None and spec.attributes else []
    method = (
        "self-reference (Lee et al., 2023)"
        if self_reference
        else "[TarGEN](https://arxiv.org/abs/2310.17876) (Gupta et al., 2024)"
    )
    lines = [
        header(task, n, data_file, bool(spec and spec.open_label)),
        f"# {task} (synthetic)",
        "",
        f"{n} synthetic instances made by targen-dspy with {method}"
        + (f" and DataGen's steps ({', '.join(datagen)})" if datagen else "")
        + f". The data is `{data_file}`; every instance was written by a language model, not by people.",
        "",
    ]
    if spec is not None:
        lines += ["## Task", "", _cell(spec.description), "", f"Fields: {', '.join(spec.fields)}.", ""]
        if spec.open_label:
            lines += [f"Label `{spec.label_field}` ({spec.label_type}): {_cell(spec.label_description)}", ""]
        else:
            lines += _table(["label", "means"], [[v, spec.meaning(v)] for v in spec.label_values])
    lines += ["## How it was made", ""]
    models = manifest.get("models") if isinstance(manifest.get("models"), dict) else {}
    rows = [[f"model ({role})", model] for role, model in models.items()]
    rows += [[key, manifest[key]] for key in ("task", "spec_hash", "program_hash") if key in manifest]
    rows += [[f"setting {key}", value] for key, value in settings.items() if value is not None]
    rows += [[f"option {key}", value] for key, value in options.items()] or [["options", "none"]]
    lines += _table(["", "value"], rows)
    if compiled is not None:
        lines += _compiled(compiled)
    lines += _labels(counts, [json.dumps(v) for v in spec.label_values] if spec else [])
    lines += _analysis(run / ANALYSIS_FIGURES)
    lines += _review(run)
    lines += ["## Citation", "", "```bibtex", TARGEN]
    lines += [DATAGEN] if datagen else []
    lines += [SELF_REFERENCE] if self_reference else []
    lines += ["```", ""]
    return "\n".join(lines)


def _compiled(compiled: dict[str, Any]) -> list[str]:
    optimizer = compiled.get("optimizer") if isinstance(compiled.get("optimizer"), dict) else {}
    scores = compiled.get("scores") if isinstance(compiled.get("scores"), dict) else {}
    lines = [
        f"The prompts were compiled by `targen compile` ({_cell(optimizer.get('optimizer', 'unknown'))}).",
        "",
    ]
    rows = [
        [f"{_cell(metric)}: {_cell(name)}", _number(value, ".1f")]
        for metric, values in scores.items()
        if isinstance(values, dict)
        for name, value in values.items()
    ]
    return [*lines, *_table(["held-out score", "value"], rows)] if rows else lines


def _labels(counts: dict[str, Any], declared: list[str]) -> list[str]:
    """Label counts and the confusion matrix; labels (as JSON) in the spec's order, then any others."""
    labels = counts["labels"]
    seen = set(labels) | set(counts["confusion"]) | {k for row in counts["confusion"].values() for k in row}
    keys = [key for key in declared if key in seen] + sorted(seen - set(declared))
    total = sum(labels.values())
    lines = ["## Labels", ""]
    lines += _table(
        ["label", "instances", "share"],
        [[_label(k), labels.get(k, 0), f"{labels.get(k, 0) / total:.1%}"] for k in keys if total],
    )
    if counts["confusion"]:
        lines += [
            f"Self-correction relabeled {counts['relabeled']} of {total}. Rows: the label the generator "
            "was asked for; columns: the label after self-correction.",
            "",
        ]
        rows = [
            [_label(row), *(counts["confusion"][row].get(col, 0) for col in keys)]
            for row in keys
            if row in counts["confusion"]
        ]
        lines += _table(["asked for \\ final", *(_label(k) for k in keys)], rows)
    removed = [
        f"{count} {source}" for source, count in counts["instances"].items() if source != "data" and count
    ]
    if removed:
        lines += [
            f"Not in the data: {', '.join(removed)} (the run directory's rejected/duplicates files).",
            "",
        ]
    return lines


def _analysis(path: Path) -> list[str]:
    try:
        sets = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(sets, dict) or not all(isinstance(figures, dict) for figures in sets.values()):
        return []
    metrics = [
        ("distinct-1", "distinct_1", ".3f"),
        ("distinct-2", "distinct_2", ".3f"),
        ("self-BLEU-4", "self_bleu", ".3f"),
        ("mean pairwise cosine", "mean_cosine", ".3f"),
        ("near-duplicate rate", "near_duplicate_rate", ".1%"),
        ("V-usable information (mean PVI, bits)", "v_information", ".3f"),
    ]
    rows = [
        [name, *(_number(figures.get(key), form) for figures in sets.values())] for name, key, form in metrics
    ]
    note = (
        "From `targen analyze` (its report.md, `data-analysis/` in the run directory, has the plots): "
        "lexical and semantic diversity (lower self-BLEU and cosine: more diverse) and difficulty."
    )
    return ["## Diversity and difficulty", "", note, "", *_table(["", *map(_cell, sets)], rows)]


def _review(run: Path) -> list[str]:
    answers = read_answers(run)
    if not answers:
        return []
    result = agreement(answers.values())
    note = (
        "A person reviewed instances of this run (`targen review`: a stratified random sample by label "
        f"and relabeled or not), {len(answers)} so far, and gave each the label they judged right. "
        "Agreement with the final label estimates how many labels are right (1 minus it: the label "
        "noise); with the label asked for, what the labels were before self-correction. 95% Wilson intervals."
    )
    return ["## Human review", "", note, "", *(f"- {line}" for line in result.describe()), ""]
