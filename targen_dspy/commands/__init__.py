"""The `targen` subcommands. Each module has HELP, `add_arguments(parser)` and `run(args)`; adding a
command is a new module plus one entry in COMMANDS."""

from targen_dspy.commands import (
    analyze,
    compile,
    estimate,
    export,
    generate,
    new_task,
    review,
    status,
    tasks,
    validate,
)

COMMANDS = {
    "tasks": tasks,
    "new-task": new_task,
    "validate": validate,
    "generate": generate,
    "compile": compile,
    "export": export,
    "analyze": analyze,
    "review": review,
    "status": status,
    "estimate": estimate,
}
