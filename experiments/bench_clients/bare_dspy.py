"""The bare DSPy loop of experiments/bench_engine.py: `--workers` threads take slot numbers from a shared
counter and make two `dspy.Predict` calls per slot, write a sentence and then judge it. DSPy as it comes
(`dspy.LM` with its default engine, `auto`, which sends these calls through DSPy's own HTTP client without
importing litellm; memory and disk cache; history) with the JSON adapter, as in TarGEN; no retries of
its own, no writing. Prints one JSON line: slots done, hosts refused (see loopback.py), the first error."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading

from loopback import refuse_other_hosts, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--n", type=int, required=True, help="slots (two calls each)")
    parser.add_argument("--workers", type=int, required=True)
    args = parser.parse_args()
    refuse_other_hosts()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else litellm fetches prices at import
    import dspy

    lm = dspy.LM("openai/bench", api_base=args.api_base, api_key="bench")
    dspy.configure(lm=lm, adapter=dspy.JSONAdapter())
    write, judge = dspy.Predict("topic -> sentence"), dspy.Predict("sentence -> verdict")
    slots, done, errors = itertools.count(), [], []

    def loop() -> None:
        try:
            while (i := next(slots)) < args.n:
                sentence = write(topic=f"topic number {i}").sentence
                done.append(judge(sentence=sentence).verdict)
        except Exception as exc:  # reported below: a failed loop must not look fast
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"slots": len(done), "refused": refused, "error": repr(errors[0]) if errors else None}))
    if errors:
        sys.exit(f"bare loop failed: {errors[0]!r}")


if __name__ == "__main__":
    main()
