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
