"""`targen review`: a local page to read a run and annotate a stratified sample of it; `--summary`
prints the reviewer's agreement with the run's labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from targen_dspy.commands.spec_options import add_trust_argument

HELP = "read a run in a local web page and annotate a sample (agreement with the run's labels)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory")
    parser.add_argument(
        "--task", help="catalogue name or spec .yaml the run was made from (default: the manifest's task)"
    )
    add_trust_argument(parser)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--sample", type=float, default=0.2, help="share of each label x relabeled stratum to review"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (the same on every reload)")
    parser.add_argument("--summary", action="store_true", help="print the agreement so far and exit")


def run(args: argparse.Namespace) -> None:
    from targen_dspy.review.agreement import agreement
    from targen_dspy.review.answers import REVIEW
    from targen_dspy.review.run import open_review

    app = open_review(args.run, args.task, args.trust_spec_code, args.sample, args.seed)
    if args.summary:
        app.close()
        answers = app.log.answers
        print(f"{len(answers)} answers in {args.run / REVIEW} (sample of {len(app.sample())} instances)")
        for line in agreement(answers.values()).describe():
            print(line)
        return
    from targen_dspy.review.server import make_server

    server = make_server(app, args.port)
    host, port = server.server_address[:2]
    print(f"reviewing {args.run} at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # how a user stops it: every answer is on disk already
        pass
    finally:
        server.server_close()
        app.close()
