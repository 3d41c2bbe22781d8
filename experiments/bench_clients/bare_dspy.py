"""The bare DSPy loop of experiments/bench_engine.py: `--workers` threads take slot numbers from a shared
counter and make two `dspy.Predict` calls per slot, write a sentence and then judge it. DSPy as it comes
(`dspy.LM` with its default engine, `auto`, which sends these calls through DSPy's own HTTP client without
importing litellm; memory and disk cache; history) with the JSON adapter, as in TarGEN; no retries of
its own, no writing. Prints one JSON line: slots done, hosts refused (see loopback.py), the first error.

`--tuned`: the same loop with the DSPy settings TarGEN runs with, so that what is left between the two is
TarGEN's own work: DSPy's per-call look-ups memoized (`backends/hot_paths.py`), the JSON adapter's
per-signature texts built once, the run cache (one disk store, no memory tier) and `RUN_SETTINGS` (no
history, no trace, no input type check)."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from loopback import refuse_other_hosts, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--n", type=int, required=True, help="slots (two calls each)")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--tuned", action="store_true", help="DSPy set up as TarGEN sets it up")
    args = parser.parse_args()
    refuse_other_hosts()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else litellm fetches prices at import
    import dspy

    lm = dspy.LM("openai/bench", api_base=args.api_base, api_key="bench")
    dspy.configure(lm=lm, adapter=dspy.JSONAdapter())
    write, judge = dspy.Predict("topic -> sentence"), dspy.Predict("sentence -> verdict")
    with tuned() if args.tuned else contextlib.nullcontext():
        done, errors = run_slots(write, judge, args.n, args.workers)
    print(json.dumps({"slots": len(done), "refused": refused, "error": repr(errors[0]) if errors else None}))
    if errors:
        sys.exit(f"bare loop failed: {errors[0]!r}")


@contextlib.contextmanager
def tuned() -> Iterator[None]:
    """DSPy as a TarGEN run sets it up (targen_dspy.engine.runner.run and commands.generate); configured
    for the process, not a `dspy.context`, which the loop's threads would not inherit."""
    import dspy

    from targen_dspy.backends.hot_paths import RUN_SETTINGS, memoized_dspy_lookups
    from targen_dspy.backends.json_adapter import SignatureCachedJSONAdapter
    from targen_dspy.engine.cache import run_cache

    dspy.configure(adapter=SignatureCachedJSONAdapter(), **RUN_SETTINGS)
    with run_cache(), memoized_dspy_lookups():
        yield


def run_slots(write: Any, judge: Any, n: int, workers: int) -> tuple[list[str], list[Exception]]:
    """`workers` threads taking slot numbers until `n`: the verdicts, and the errors that ended a thread."""
    slots, done, errors = itertools.count(), [], []

    def loop() -> None:
        try:
            while (i := next(slots)) < n:
                sentence = write(topic=f"topic number {i}").sentence
                done.append(judge(sentence=sentence).verdict)
        except Exception as exc:  # reported below: a failed loop must not look fast
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done, errors


if __name__ == "__main__":
    main()
