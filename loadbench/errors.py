"""One exception hierarchy; each error knows its exit code and prints as one line.

The CLI is the only place that turns these into exit codes (DESIGN section 3).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a threshold or regression failed
EXIT_BAD_INPUT = 2
EXIT_TARGET = 3
EXIT_INVALID_RUN = 4
EXIT_INTERNAL = 70  # a bug in loadbench (BSD EX_SOFTWARE), never a verdict on the target
EXIT_INTERRUPTED = 130


class LoadbenchError(Exception):
    """Base class: a one-line, user-facing message and an exit code."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str) -> None:
        # user input (a YAML key, a run name) may hold line breaks; the message stays one line
        message = message.replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInput(LoadbenchError):
    """Scenario files, CLI flags or values that cannot be used."""

    exit_code = EXIT_BAD_INPUT


class ScenarioError(BadInput):
    """A scenario file that does not parse or validate."""


class ResultFileError(BadInput):
    """A result file that cannot be read, is truncated or has another schema version."""


class OutputError(BadInput):
    """An output path that cannot be written (checked before a run, and when writing)."""


class TargetError(LoadbenchError):
    """The target could not be started or reached."""

    exit_code = EXIT_TARGET


class InvalidRun(LoadbenchError):
    """The run measured the generator, not the server (only raised with --strict)."""

    exit_code = EXIT_INVALID_RUN


class Interrupted(LoadbenchError):
    """The user stopped the run; partial results were saved."""

    exit_code = EXIT_INTERRUPTED
