"""Pieces shared by the jet and anomaly-detection generators: Pythia set-up, deterministic
per-task seeds, silencing of Pythia/FastJet stdout chatter, the multiprocessing runner and the
atomic HDF5 writer."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from trigger.errors import TriggerError
from trigger.runtime import (atomic_path, check_free_space, check_output_free, hdf5_in_memory, log,
                             progress)

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


def run_tasks(fn: Callable[[Any], tuple[int, Any]], tasks: list, workers: int, desc: str,
              unit: str, total: int) -> list:
    """Run ``fn`` on every task, in ``workers`` processes, and return results in task order.

    ``fn`` returns ``(n_items, result)``; ``n_items`` advances the progress bar. Workers are
    spawned (not forked), so a parent that has already imported TensorFlow or holds threads is
    safe, and each task is seeded from its own position so results do not depend on scheduling.
    """
    if workers < 1:
        raise TriggerError(f"--workers must be at least 1, got {workers}")
    results = []
    bar = progress(total=total, desc=desc, unit=unit)
    try:
        if workers == 1 or len(tasks) == 1:
            with quiet_stdout():
                for task in tasks:
                    n_items, result = fn(task)
                    results.append(result)
                    bar.update(n_items)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(os.getpid(),)) as pool:
                for n_items, result in pool.imap(fn, tasks):
                    results.append(result)
                    bar.update(n_items)
    finally:
        bar.close()
    return results


def _init_worker(parent: int) -> None:
    """Set up a worker process: it dies with its parent and leaves signals to it.

    Ctrl-C reaches the whole process group; the parent alone handles it (and terminates the pool),
    so workers ignore SIGINT instead of each printing a traceback. On Linux the kernel sends the
    worker SIGTERM when the parent dies, even by SIGKILL, so no worker keeps generating for nobody.
    Worker processes never need C++ stdout (Pythia, FastJet banner)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def validate_count(name: str, value: int, minimum: int = 1) -> None:
    """One-line error for a size argument that is too small."""
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise TriggerError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_space_for(out: str | os.PathLike, n_rows: int, bytes_per_row: float, unit: str) -> None:
    """Refuse before generating if the disk of ``out`` cannot hold ``n_rows`` rows (``unit``, e.g.
    'jets') of about ``bytes_per_row`` each: minutes of generation must not end on a full disk."""
    check_free_space(out, int(n_rows * bytes_per_row) + 65536, f"{n_rows} {unit}")


def write_hdf5(out: str | os.PathLike, datasets: dict[str, np.ndarray], attrs: dict[str, Any],
               force: bool) -> Path:
    """Write ``datasets`` and ``attrs`` to ``out`` atomically (temporary file, then rename).

    Dicts and lists of non-strings in ``attrs`` are stored as JSON strings; lists of strings as
    HDF5 string arrays.
    """
    import h5py

    n_rows = len(next(iter(datasets.values()))) if datasets else 0
    try:
        with atomic_path(out, force=force) as tmp, hdf5_in_memory(tmp) as f:
            for name, array in datasets.items():
                compression = "gzip" if array.ndim > 1 and array.size > 4096 else None
                f.create_dataset(name, data=array, compression=compression)
            for key, value in attrs.items():
                if isinstance(value, dict) or (isinstance(value, (list, tuple))
                                               and not all(isinstance(v, str) for v in value)):
                    f.attrs[key] = json.dumps(value, sort_keys=True)
                elif isinstance(value, (list, tuple)):
                    f.attrs[key] = np.array(value, dtype=h5py.string_dtype())
                else:
                    f.attrs[key] = value
    except TriggerError as exc:  # a full disk, or a concurrent run that finished first
        raise TriggerError(f"{exc} (the {n_rows} generated rows were not saved; rerunning with the same "
                           "arguments and --seed regenerates them exactly)") from None
    log.info("wrote %s (%s)", out, ", ".join(f"{k} {tuple(v.shape)}" for k, v in datasets.items()))
    return Path(out)


__all__ = ["FORMAT_VERSION", "task_seed", "package_versions", "quiet_stdout", "make_pythia",
           "chunk_sizes", "run_tasks", "validate_count", "write_hdf5", "check_output_free",
           "check_space_for"]
