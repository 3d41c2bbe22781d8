"""`targen status`: how far a run is: its slots done and pending, and a batch run's jobs and their states
(as last seen by the run, read from its directory: no network)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "show a run's progress: slots done and pending, batch jobs and their states"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory")


def run(args: argparse.Namespace) -> None:
    from targen_dspy.engine.batch_journal import BatchJournal
    from targen_dspy.engine.meter import price
    from targen_dspy.engine.rundir import RunDirectory
    from targen_dspy.engine.runner import done_slots
    from targen_dspy.errors import RunError

    run_dir = RunDirectory(args.run, read_only=True)
    manifest = run_dir.read_json(run_dir.manifest) or {}
    settings = manifest.get("settings")
    planned = settings.get("n") if isinstance(settings, dict) else None
    if not isinstance(planned, int):
        raise RunError(f"{args.run} is not a TarGEN run directory (no manifest.json with settings.n)")
    done = done_slots(run_dir)
    failed = {row.get("id") for row in run_dir.iter_jsonl(run_dir.failed)} - done
    batch = settings.get("batch", False)
    print(
        f"{args.run}: {manifest.get('task')}, {len(done)} of {planned} slots done, "
        f"{max(0, planned - len(done))} pending ({len(failed)} of them failed so far)"
        + (" [batch run]" if batch else "")
    )
    journal = BatchJournal(run_dir).read()
    jobs = list(journal.jobs.values())
    if not jobs:
        return
    print(f"batch jobs: {len(jobs)}, {len(journal.live())} live")
    for job in jobs:
        counts = ", ".join(f"{k} {v}" for k, v in job.counts.items() if k != "total")
        state = job.status + (", fetched" if job.fetched else "")
        print(
            f"  {job.batch or job.file:<24} {job.stage:<10} {state:<22} {len(job.custom_ids)} "
            + ("request" if len(job.custom_ids) == 1 else "requests")
            + (f" ({counts})" if counts else "")
            + (f", {len(job.slots)} slots" if job.slots else "")
        )
    tokens = journal.usage.tokens
    cost = price(tokens, batch=True)
    prompt = sum(t["prompt"] for t in tokens.values())
    completion = sum(t["completion"] for t in tokens.values())
    print(
        f"fetched: {journal.usage.answers} answers, {prompt}+{completion} tokens, "
        + ("unknown cost" if cost is None else f"${cost:.4f} at batch prices")
    )
