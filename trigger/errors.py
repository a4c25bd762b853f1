"""Errors that are the user's to fix.

A :class:`TriggerError` is printed by the CLI as one line on stderr with exit code 2, never as a
traceback. Anything else that escapes is an internal bug and keeps its traceback.
"""

from __future__ import annotations


class TriggerError(Exception):
    """A user mistake (bad input file, bad config key, unsupported layer, missing tool).

    The message must be one line that names the problem and how to fix it.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ToolNotFoundError(TriggerError):
    """A vendor tool (Vivado HLS, Vitis HLS) that a requested step needs is not on PATH."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by the CLI's SIGTERM handler (a batch system's kill, ``timeout``).

    A :class:`KeyboardInterrupt` so that it passes every ``except Exception`` and runs the clean-up
    of :func:`trigger.runtime.atomic_path` like Ctrl-C does; the CLI exits 143 on it."""
