"""Exporting a run's instances through Hugging Face `datasets`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.errors import RunError

FORMATS = ("hub", "hf", "parquet", "jsonl")
HUB_DATA = "data/train.parquet"  # in a `hub` folder, beside README.md (the dataset card)


def export(
    run_dir: RunDirectory,
    to: str,
    out: Path | None = None,
    push_to_hub: str | None = None,
    card: Callable[[str], str] | None = None,
) -> Path | str:
    """Write the run's data.jsonl as a folder laid out like a Hub dataset repository (`hub`: the data
    as parquet and `card(data file)` as README.md, so that `datasets.load_dataset(folder)` reads it), a
    `datasets` folder (`hf`), a parquet file or a JSONL file; or push it to the Hub as `push_to_hub`
    (needs a token in the environment). Returns where it went."""
    import datasets

    if not run_dir.data.exists():
        raise RunError(f"{run_dir.path} has no data.jsonl; run `targen generate ... -o {run_dir.path}` first")
    run_dir.records()  # drops a torn last line a crash may have left
    dataset = datasets.Dataset.from_json(str(run_dir.data))
    if push_to_hub:
        dataset.push_to_hub(push_to_hub)
        return push_to_hub
    if to not in FORMATS:
        raise RunError(f"--to must be one of {', '.join(FORMATS)}, got {to!r}")
    default = {"hub": "hub", "hf": "hf", "parquet": "data.parquet", "jsonl": "export.jsonl"}[to]
    target = out or run_dir.path / default
    if to == "hub":
        (target / HUB_DATA).parent.mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(str(target / HUB_DATA))
        if card is not None:
            (target / "README.md").write_text(card(HUB_DATA), encoding="utf-8")
    elif to == "hf":
        dataset.save_to_disk(str(target))
    elif to == "parquet":
        dataset.to_parquet(str(target))
    else:
        dataset.to_json(str(target), lines=True, force_ascii=False)
    return target
