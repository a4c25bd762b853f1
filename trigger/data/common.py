"""Pieces shared by the jet and anomaly-detection generators: Pythia set-up, deterministic
per-unit seeds, silencing of Pythia/FastJet stdout chatter, argument and free-space checks and the
HDF5 attribute writer. Chunks, shards and the merge are in :mod:`trigger.data.shards`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from importlib import metadata
from typing import Any, Iterator, Sequence

import numpy as np

from trigger.errors import TriggerError
from trigger.executor import check_where
from trigger.runtime import check_free_space, check_output_free

FORMAT_VERSION = 1
# Pythia accepts seeds 1..900 000 000.
_PYTHIA_SEED_MAX = 900_000_000
_VERSION_PACKAGES = ("trigger", "pythia8mc", "fastjet", "awkward", "vector", "numpy", "h5py")


def task_seed(seed: int, *path: int) -> int:
    """A Pythia seed (1..9e8) derived from the user seed and a task's position, e.g. (class, chunk).

    Each generation task gets its own stream, so the output depends only on the seed and the
    task list, never on which process ran a task or in which order.
    """
    state = np.random.SeedSequence([int(seed) % 2**63, *map(int, path)]).generate_state(1, np.uint64)[0]
    return int(state % _PYTHIA_SEED_MAX) + 1


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine the generated numbers."""
    versions = {}
    for name in _VERSION_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: Pythia and the FastJet banner write to C++ stdout.

    Python-level ``sys.stdout`` is flushed first so nothing of ours is lost.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def make_pythia(settings: Sequence[str], seed: int):
    """An initialised, silent ``pythia8mc.Pythia`` with ``settings`` and the given random seed."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in [*settings, "Print:quiet = on", "Next:numberCount = 0", "Random:setSeed = on",
                 f"Random:seed = {int(seed)}"]:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise with {list(settings)}")
    return pythia


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """Split ``total`` into pieces of at most ``chunk`` (the last one smaller)."""
    return [min(chunk, total - start) for start in range(0, total, chunk)]


def validate_count(name: str, value: int, minimum: int = 1) -> None:
    """One-line error for a size argument that is too small."""
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise TriggerError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_execution(workers: int | None, scheduler: str | None, chunk_size: int | None) -> None:
    """One-line errors for --workers, --scheduler and --chunk-size (None: not given; no --workers and
    no --scheduler means one worker, in this process)."""
    check_where(workers, scheduler)
    if chunk_size is not None:
        validate_count("--chunk-size", chunk_size)


def check_space_for(out: str | os.PathLike, n_rows: int, bytes_per_row: float, unit: str) -> None:
    """Refuse before generating if the disk of ``out`` cannot hold ``n_rows`` rows (``unit``, e.g.
    'jets') of about ``bytes_per_row`` each: minutes of generation must not end on a full disk."""
    check_free_space(out, int(n_rows * bytes_per_row) + 65536, f"{n_rows} {unit}")


def write_attrs(f: Any, attrs: dict[str, Any]) -> None:
    """Store ``attrs`` on the open HDF5 file ``f``: dicts and lists of non-strings as JSON strings,
    lists of strings as HDF5 string arrays, anything else as it is."""
    import h5py

    for key, value in attrs.items():
        if isinstance(value, dict) or (isinstance(value, (list, tuple)) and not all(isinstance(v, str) for v in value)):
            f.attrs[key] = json.dumps(value, sort_keys=True)
        elif isinstance(value, (list, tuple)):
            f.attrs[key] = np.array(value, dtype=h5py.string_dtype())
        else:
            f.attrs[key] = value


__all__ = ["FORMAT_VERSION", "task_seed", "package_versions", "quiet_stdout", "make_pythia",
           "chunk_sizes", "validate_count", "check_execution", "write_attrs", "check_output_free", "check_space_for"]
