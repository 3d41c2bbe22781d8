"""The project's exceptions. Every message says what is wrong and how to fix it, in one line."""


class TargenError(Exception):
    """Base class: a problem the user can fix; the CLI prints it as one line and exits with code 2."""


class SpecError(TargenError):
    """A task spec is missing, malformed or inconsistent."""


class ModelError(TargenError):
    """A model string, key, server or local model file is unusable."""


class RunError(TargenError):
    """A run directory or its options are inconsistent."""
