"""Curator's side of experiments/bench_engine.py, run by the Python of its own virtual environment:
`--n` rows through two `curator.LLM` steps, write a sentence per topic and then judge each sentence (two
calls per slot, as in the bare DSPy loop), backend `openai` at `--api-base`, at most `--workers`
requests at once and no rate limit of curator's own. Prints one JSON line: slots done and hosts refused.

Offline and loopback only: curator's telemetry (PostHog) and hosted viewer are off, Hugging Face
libraries are offline, litellm uses its bundled price table, and tiktoken reads `cl100k_base` (curator
counts the tokens of every prompt with it) from the copy that litellm ships, instead of downloading it;
every other host is refused (loopback.py).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

from loopback import refuse_other_hosts, refused

CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
OFFLINE = {
    "TELEMETRY_ENABLED": "false",
    "CURATOR_VIEWER": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}


def go_offline() -> None:
    """The environment above, and tiktoken's cache at litellm's bundled encodings (a file named by the SHA-1
    of its download URL, as tiktoken caches it)."""
    os.environ.update(OFFLINE)
    os.environ.pop("BESPOKE_API_KEY", None)
    encodings = Path(importlib.util.find_spec("litellm").submodule_search_locations[0]) / "litellm_core_utils"
    encodings /= "tokenizers"
    if not (encodings / hashlib.sha1(CL100K_URL.encode()).hexdigest()).is_file():
        sys.exit(f"no cl100k_base encoding in {encodings}: tiktoken would download it")
    os.environ["TIKTOKEN_CACHE_DIR"] = os.environ["CUSTOM_TIKTOKEN_CACHE_DIR"] = str(encodings)


def steps(api_base: str, workers: int) -> tuple[object, object]:
    from bespokelabs import curator

    class Write(curator.LLM):
        def prompt(self, row: dict) -> str:
            return f"Write one sentence about {row['topic']}.\nRespond with a JSON object: `sentence`."

        def parse(self, row: dict, response: str) -> dict:
            return {"sentence": json.loads(response)["sentence"]}

    class Judge(curator.LLM):
        def prompt(self, row: dict) -> str:
            return f"Is this sentence fluent? {row['sentence']}\nRespond with a JSON object: `verdict`."

        def parse(self, row: dict, response: str) -> dict:
            return {**row, "verdict": json.loads(response)["verdict"]}

    params = {
        "base_url": api_base,
        "api_key": "bench",
        "max_concurrent_requests": workers,
        "max_requests_per_minute": 10**9,  # curator's defaults (200 a minute) would be the limit
        "max_tokens_per_minute": 10**12,
    }
    return tuple(step("bench", backend="openai", backend_params=params) for step in (Write, Judge))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--n", type=int, required=True, help="slots (two calls each)")
    parser.add_argument("--workers", type=int, required=True)
    args = parser.parse_args()
    refuse_other_hosts()
    go_offline()
    write, judge = steps(args.api_base, args.workers)
    verdicts = judge(write([{"topic": f"topic number {i}"} for i in range(args.n)]))
    print(json.dumps({"slots": len(verdicts.dataset), "refused": refused, "error": None}))


if __name__ == "__main__":
    main()
