"""The `targen` command: parses arguments, runs a subcommand, and turns every user-fixable error into
one line on stderr with exit code 2. Only the commands read files and the environment, and print."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from targen_dspy.commands import COMMANDS
from targen_dspy.errors import ModelError, TargenError, redact

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        self.exit(EXIT_USAGE, f"targen: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="targen", description="Seedless, label-constrained synthetic data with DSPy.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log DSPy and model warnings")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, command in COMMANDS.items():
        command.add_arguments(subparsers.add_parser(name, help=command.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(name)s: %(message)s")
    from targen_dspy.backends.price_tables import bundled_price_tables

    try:
        with bundled_price_tables():  # for this command only: nothing is set at import
            COMMANDS[args.command].run(args)
    except TargenError as exc:
        print(redact(f"targen: {exc}"), file=sys.stderr)  # messages may quote a server's error text
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "targen: interrupted; finished instances are on disk, rerun the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `targen tasks | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # after BrokenPipeError, one of its kind
        if exc.filename is None:  # not a path the user gave or can fix: a bug, show it whole
            raise
        print(f"targen: cannot use {exc.filename}: {exc.strerror}; check the path", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if not _is_model_error(exc):
            raise
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(redact(f"targen: {ModelError.__name__}: {first_line}"), file=sys.stderr)
        return EXIT_USAGE
    return 0


def _is_model_error(exc: Exception) -> bool:
    """Whether `exc` is DSPy's LMError (a model or provider failure). Looked up, not imported: a command
    that never imported DSPy (`targen tasks`, `--help`) cannot have raised one, and need not load it."""
    lm_error = getattr(sys.modules.get("dspy.utils.exceptions"), "LMError", None)
    return lm_error is not None and isinstance(exc, lm_error)


if __name__ == "__main__":
    sys.exit(main())
