"""The `targen` subcommands. Each module has HELP, `add_arguments(parser)` and `run(args)`; adding a
command is a new module plus one entry in COMMANDS."""

from targen_dspy.commands import analyze, compile, export, generate, tasks

COMMANDS = {"tasks": tasks, "generate": generate, "compile": compile, "export": export, "analyze": analyze}
