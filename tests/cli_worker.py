"""A long-lived ``trigger`` CLI for tests that run many commands (tests/test_fuzz_inputs.py).

``python -m tests.cli_worker`` reads one JSON request per line on stdin, runs
``trigger.cli.main(argv)`` in this process and answers one JSON line: the exit code and everything
written to file descriptors 1 and 2 during the call (Python and C alike). TensorFlow is imported
once, by the first command that needs it, instead of once per command; a command that crashes or
hangs the process is seen by the parent as a dead or silent worker, which it restarts.

A request may name a ``stop``: stage functions replaced for that call by one that raises a
:class:`trigger.errors.TriggerError` starting with :data:`STOP_MARK`, so that a command whose
inputs all passed its checks ends there instead of training or compiling (a property test then
counts it as accepted). The heavy step is skipped, not the reading of the files.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator

STOP_MARK = "fuzz-stop: the inputs passed every check before"


def _stop(name: str):
    from trigger.errors import TriggerError

    def stop(*args, **kwargs):
        raise TriggerError(f"{STOP_MARK} {name}")

    return stop


def _no_conversion(keras_model, config, tmp):
    """synth without hls4ml: the Keras model itself, so that ``--data`` is still read and checked."""
    return SimpleNamespace(keras_model=keras_model, input_precision=None, hls_model=None, inexact={})


#: The stage functions each ``stop`` replaces: after them comes training, conversion or compiling.
STOPS = {
    "train": [("trigger.stages.train", "_train_teacher", None)],
    "train_teacher": [("trigger.stages.train", "_train_student", None)],  # --teacher: loaded, evaluated
    "compress": [("trigger.stages.compress", "compress_model", None)],
    "synth": [("trigger.stages.synth", "_convert_and_simulate", None)],
    "synth_config": [("trigger.stages.synth", "load_model", None)],  # config and calibration read; no TF
    "synth_data": [("trigger.stages.synth", "convert_model", _no_conversion),
                   ("trigger.stages.synth", "run_csim", None)],  # after csim_inputs read --data
    "rtl": [("trigger.stages.rtl", "_run", None)],
    "scan": [("trigger.stages.scan", "_open_study", None)],
}


@contextmanager
def patched(stop: str | None) -> Iterator[None]:
    """The stage functions of ``stop`` replaced for the duration of one call."""
    saved = []
    for module_name, attr, replacement in STOPS.get(stop, []) if stop else []:
        module = importlib.import_module(module_name)
        saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, replacement or _stop(f"{module_name}.{attr}"))
    try:
        yield
    finally:
        for module, attr, original in saved:
            setattr(module, attr, original)


@contextmanager
def captured() -> Iterator[list[str]]:
    """File descriptors 1 and 2 into one temporary file; the list gets its text at the end."""
    text: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = [os.dup(1), os.dup(2)]
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            text.append(tmp.read().decode("utf-8", "replace"))


def serve() -> None:
    """Answer requests until stdin closes."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing but answers on the channel, whatever a library prints
    import trigger.cli
    import trigger.runtime

    # a damaged file that hangs the HDF5 library is refused after this many seconds, not 60
    trigger.runtime.HDF5_PROBE_TIMEOUT_S = int(os.environ.get("TRIGGER_FUZZ_PROBE_TIMEOUT", "10"))
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if "save_keras" in request:  # a .keras copy of a .h5 model, for the tests' inputs
            from trigger.models.io import load_model

            src, dst = request["save_keras"]
            load_model(src).save(dst)
            answers.write(json.dumps({"code": 0, "output": ""}) + "\n")
            continue
        with captured() as text, patched(request.get("stop")):
            try:
                code = trigger.cli.main(request["argv"])
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
        answers.write(json.dumps({"code": code, "output": text[0]}) + "\n")


if __name__ == "__main__":
    serve()
