"""Process-wide set-up shared by every stage: seeding, logging, progress bars, atomic outputs."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

import numpy as np

from trigger.errors import TriggerError

log = logging.getLogger("trigger")
T = TypeVar("T")


def set_seed(seed: int) -> None:
    """Seed python, numpy and, if it is already imported, TensorFlow from one integer.

    Stages that use TensorFlow call this again after importing it, so that stages that never
    touch TF (data generation, reports) do not pay seconds for importing it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.keras.utils.set_random_seed(seed)
        # retracing and compiled-metrics notices are TF internals, not the user's problem
        tf.get_logger().setLevel(logging.ERROR)


def setup_logging(verbose: int = 0) -> None:
    """Log ``trigger`` messages to stderr: INFO by default, DEBUG with ``-v``."""
    level = logging.DEBUG if verbose > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[trigger] %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


class _LogLines:
    """A file for tqdm that turns its redraws into ``trigger`` log lines (for logs, not terminals)."""

    def write(self, text: str) -> int:
        line = text.strip("\r\n ")
        if line:
            log.info("%s", line)
        return len(text)

    def flush(self) -> None:
        pass


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it") -> "Iterator[T]":
    """Progress of a long loop (generation, epochs, compiles) on stderr.

    On a terminal (or with ``TRIGGER_PROGRESS=1``): a live bar. Otherwise (CI, ``make data > log``):
    one log line at most every 60 s, and none for loops shorter than that, so logs stay readable
    yet a long run still shows it is alive. ``TRIGGER_PROGRESS=0`` silences it.
    """
    from tqdm.auto import tqdm

    mode = os.environ.get("TRIGGER_PROGRESS")
    if mode == "1" or (mode is None and sys.stderr.isatty()):
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                    mininterval=0.5)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=mode == "0", file=_LogLines(),
                mininterval=60, maxinterval=600, delay=60,
                bar_format="{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed} elapsed, {remaining} left]")


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy arrays/scalars as python values, paths as strings and non-finite floats as
    None (JSON null): the one conversion every JSON output of ``trigger`` goes through."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def check_output_free(path: str | os.PathLike, force: bool, *, folder: bool | None = None) -> Path:
    """Refuse to overwrite an existing output unless ``force``; return the path.

    ``folder`` (True: the output is a folder, False: a file) also refuses, even with ``force``, an
    existing output of the other kind, so that ``--force`` never deletes a folder the user gave as
    an output file (or the reverse)."""
    path = Path(path)
    blocked = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if blocked is not None:
        raise TriggerError(f"{path} cannot be written: {blocked} is a file, not a folder; choose another --out")
    if folder is not None and path.exists() and path.is_dir() != folder:
        have, want = ("a folder", "a file") if path.is_dir() else ("a file", "a folder")
        raise TriggerError(f"{path} is {have} but this output is {want}; choose another --out")
    if path.exists() and not force:
        raise TriggerError(f"{path} already exists; pass --force to overwrite it or choose another --out")
    return path


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str, remedy: str) -> Iterator[None]:
    """Errors of the operating system or of decoding while reading a user's file (a truncated HDF5,
    a binary file where text belongs, a permission) become one :class:`TriggerError` naming the file,
    ``what`` it should be and the ``remedy``."""
    try:
        yield
    except (OSError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise TriggerError(f"cannot read {path} as {what} ({detail}); {remedy}") from None


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success rename it onto ``final``.

    Works for files and directories. On any error the temporary is removed and ``final`` is left as
    it was, so no half-written output ever appears under the final name.
    """
    final = check_output_free(final, force)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a parent folder should be, no permission
        raise TriggerError(f"cannot create the folder {final.parent} for {final} ({exc.strerror or exc}); "
                           "choose another --out") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the caller creates a file or a directory under this name
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to the temporary output {tmp}")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
