"""Chunked, resumable generation: shards under ``OUT.parts/``, then one streamed merge into ``OUT``.

A data set is a fixed list of *units* (at most 200 jets or 500 events of one class or process), each
with its own Pythia seed derived from the global seed and the unit's position. A *chunk* groups
consecutive units (at most ``--chunk-size`` rows, by default a full unit's: small units share a
chunk, and a unit never splits); each finished chunk is written atomically as
``OUT.parts/chunk-NNNNN.h5``, next to ``manifest.json`` (command, arguments, chunk size, format and
package versions). A rerun of the same command reuses the finished shards; another command on the
same ``OUT.parts`` is refused. The merge shuffles the rows with the global seed, exactly as one
process holding everything would, but writes ``OUT`` in blocks gathered from the shards, so memory
stays flat. The numbers therefore depend only on the arguments and seed: not on the chunk size, the
number of workers, the order in which chunks finish, or interruptions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from trigger.data.common import FORMAT_VERSION, package_versions, quiet_stdout, write_attrs
from trigger.errors import TriggerError
from trigger.executor import task_runner
from trigger.runtime import atomic_path, check_output_free, hdf5_in_memory, log, progress, remove_path

#: Rows of the output written at once (one block is the merge's memory).
MERGE_BLOCK_BYTES = 64 * 2**20
#: Target size of one HDF5 chunk of the merged file.
HDF5_CHUNK_BYTES = 2**20


@dataclass
class Plan:
    """Everything that defines a data set's numbers, and how to make each unit of it."""

    command: str                       # 'trigger data jets'
    arguments: dict[str, Any]          # the flags that define the numbers, e.g. {'--seed': 42}
    seed: int                          # shuffles the merged rows
    unit_fn: Callable[[tuple], tuple[int, dict[str, np.ndarray]]]  # module-level: runs on workers
    units: list[tuple]                 # the task of each unit
    unit_rows: list[int]               # rows each unit gives
    unit_group: list[str]              # class or process of each unit (for events_generated)
    group_names: list[str]
    noun: str                          # 'jets' | 'events'
    default_chunk_rows: int            # rows per chunk without --chunk-size: a full unit's
    attrs: dict[str, Any] = field(default_factory=dict)  # file attributes, events_generated added
    #: more attributes computed from events_generated (class or process -> events), e.g. efficiencies
    derived_attrs: Callable[[dict[str, int]], dict[str, Any]] | None = None

    @property
    def total_rows(self) -> int:
        return int(sum(self.unit_rows))


def parts_path(out: str | os.PathLike) -> Path:
    """The folder of the shards of ``out``."""
    return Path(f"{out}.parts")


def chunk_units(unit_rows: list[int], chunk_size: int) -> list[list[int]]:
    """Consecutive units grouped into chunks of at most ``chunk_size`` rows (a chunk holds at least
    one unit, so a unit larger than ``chunk_size`` is a chunk of its own)."""
    chunks: list[list[int]] = []
    rows = 0
    for index, n in enumerate(unit_rows):
        if not chunks or rows + n > chunk_size:
            chunks.append([])
            rows = 0
        chunks[-1].append(index)
        rows += n
    return chunks


def run_chunk(unit_fn: Callable[[tuple], tuple[int, dict[str, np.ndarray]]],
              units: list[tuple]) -> dict[str, np.ndarray]:
    """Generate the units of one chunk (on a worker) and join their rows; ``unit_events`` holds
    the events each unit generated. Pythia's and FastJet's C++ stdout goes to /dev/null."""
    pieces = []
    with quiet_stdout():
        for unit in units:
            try:
                pieces.append(unit_fn(unit)[1])
            except ImportError as exc:  # Ctrl-C or SIGTERM while a C++ extension (pythia8mc) loads
                interrupt = exc.__cause__ or exc.__context__
                if isinstance(interrupt, KeyboardInterrupt):
                    raise interrupt from None
                raise
    events = np.array([int(piece.pop("n_events")[0]) for piece in pieces], dtype=np.int64)
    arrays = {key: np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}
    arrays["unit_events"] = events
    return arrays


def manifest_of(plan: Plan, chunk_size: int | None, n_chunks: int) -> dict[str, Any]:
    """What the shards of ``OUT.parts`` were made with; a resume must match it exactly."""
    return {"command": plan.command, "arguments": plan.arguments, "chunk_size": chunk_size,
            "n_chunks": n_chunks, "format_version": FORMAT_VERSION, "package_versions": package_versions()}


def _digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def _command_line(manifest: dict[str, Any]) -> str:
    flags = [f"{k} {v}" for k, v in manifest["arguments"].items()]
    if manifest["chunk_size"] is not None:
        flags.append(f"--chunk-size {manifest['chunk_size']}")
    return " ".join([manifest["command"], *flags])


def _mismatch(found: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """What differs between two manifests, in words; None if they agree."""
    if found == wanted:
        return None
    if found.get("command") != wanted["command"] or found.get("arguments") != wanted["arguments"] \
            or found.get("chunk_size") != wanted["chunk_size"]:
        return f"`{_command_line(found)}`" if "arguments" in found else "an unreadable manifest"
    versions = {k: (v, wanted["package_versions"].get(k)) for k, v in found.get("package_versions", {}).items()
                if v != wanted["package_versions"].get(k)}
    if versions:
        return "other package versions (" + ", ".join(f"{k} {a} there, {b} here" for k, (a, b) in versions.items()) + ")"
    return "another format version or chunk count"


def check_manifest(parts: Path, manifest: dict[str, Any], command_here: str) -> None:
    """Write ``manifest.json`` into a new ``parts`` folder, or refuse (one line) a folder whose shards
    were made by another command or with other package versions."""
    path = parts / "manifest.json"
    if not path.exists():
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        found = {}
    difference = _mismatch(found, manifest)
    if difference is not None:
        raise TriggerError(f"{parts} holds the unfinished chunks of {difference}, not of `{command_here}`; "
                           f"rerun that command to finish them, or remove {parts} to start this one")


@contextlib.contextmanager
def parts_locked(parts: Path, out: Path, force: bool) -> Iterator[None]:
    """Own ``parts`` for the block: an exclusive ``flock`` on ``parts/lock``. A second run of the
    same command waits for the first; when that one has finished (and removed ``parts``) the second
    sees ``out`` exist and refuses as usual (or, with ``force``, starts again)."""
    import fcntl

    while True:
        check_output_free(out, force)
        try:
            parts.mkdir(parents=True, exist_ok=True)
            fd = os.open(parts / "lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:  # a file named OUT.parts, no permission, a full disk
            raise TriggerError(f"cannot keep this run's chunks in {parts} ({exc.strerror or exc}); "
                               "remove what is there or choose another --out") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another run that is writing %s", parts)
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, parts / "lock"):
                yield
                return
        finally:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` is still the file open as ``fd`` (not removed by the run we waited for)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except OSError:
        return False


def shard_path(parts: Path, index: int) -> Path:
    return parts / f"chunk-{index:05d}.h5"


def finished_shards(parts: Path, digest: str, chunks: list[list[int]], unit_rows: list[int]) -> set[int]:
    """The chunks whose shard exists and belongs to this manifest (a damaged or foreign one is
    removed and made again). Temporaries of an interrupted run are removed."""
    import h5py

    for stale in parts.glob(".chunk-*"):
        remove_path(stale)
    done = set()
    for index, chunk in enumerate(chunks):
        path = shard_path(parts, index)
        if not path.exists():
            continue
        try:
            with h5py.File(path, "r") as f:
                ok = (f.attrs.get("manifest") == digest and int(f.attrs.get("chunk", -1)) == index
                      and len(f["unit_events"]) == len(chunk) and len(f["labels"]) == sum(unit_rows[u] for u in chunk))
        except (OSError, KeyError, ValueError):
            ok = False
        if ok:
            done.add(index)
        else:
            log.info("shard %s does not match its manifest; making it again", path)
            remove_path(path)
    return done


def write_shard(parts: Path, index: int, arrays: dict[str, np.ndarray], digest: str) -> None:
    """Write one chunk's rows to its shard, atomically (uncompressed: the merge reads it often)."""
    with atomic_path(shard_path(parts, index)) as tmp, hdf5_in_memory(tmp) as f:
        for name, values in arrays.items():
            f.create_dataset(name, data=values)
        f.attrs["manifest"] = digest
        f.attrs["chunk"] = index


def generate(out: str | os.PathLike, plan: Plan, *, workers: int | None, scheduler: str | None,
             chunk_size: int | None, force: bool) -> Path:
    """Make the data set of ``plan`` in ``out``: missing shards on the executor, then the merge.

    On an interruption or failure the finished shards stay in ``OUT.parts`` for a rerun (a folder
    without any is removed). ``OUT.parts`` is removed once ``out`` is written."""
    out = Path(out)
    parts = parts_path(out)
    chunks = chunk_units(plan.unit_rows, chunk_size or plan.default_chunk_rows)
    manifest = manifest_of(plan, chunk_size, len(chunks))
    digest = _digest(manifest)
    with parts_locked(parts, out, force):
        check_manifest(parts, manifest, _command_line(manifest))  # another command's folder: untouched
        try:
            done = finished_shards(parts, digest, chunks, plan.unit_rows)
            _make_shards(parts, plan, chunks, done, digest, workers=workers, scheduler=scheduler)
            path = merge(out, parts, plan, chunks, force=force)
        except BaseException:
            _keep_or_remove(parts)
            raise
        remove_path(parts)
    return path


def _keep_or_remove(parts: Path) -> None:
    """After a failure: say what is kept for a rerun, or remove a folder with no finished shard."""
    kept = sorted(parts.glob("chunk-*.h5"))
    if kept:
        log.info("kept %d finished chunks in %s; rerun the same command to resume from them", len(kept), parts)
    else:
        remove_path(parts)


def _make_shards(parts: Path, plan: Plan, chunks: list[list[int]], done: set[int], digest: str, *,
                 workers: int | None, scheduler: str | None) -> None:
    """Generate every chunk not in ``done`` on the executor, writing each shard as it arrives."""
    missing = [k for k in range(len(chunks)) if k not in done]
    reused = sum(plan.unit_rows[u] for k in done for u in chunks[k])
    if done:
        log.info("resuming: %d of %d chunks (%d %s) already in %s", len(done), len(chunks), reused, plan.noun, parts)
    if not missing:
        return
    tasks = [(k, (plan.unit_fn, [plan.units[u] for u in chunks[k]])) for k in missing]
    if workers is not None:
        workers = min(workers, len(missing))  # no idle processes to start (one: in this process)
    bar = progress(total=plan.total_rows, desc=plan.noun, unit=plan.noun[:-1])
    if reused:  # the bar starts at the rows already made; its rate counts this run's only
        bar.n = bar.last_print_n = reused
        if not getattr(bar, "delay", 0):  # a live bar redraws now; log lines keep their minute
            bar.refresh()
    try:
        with task_runner(workers, scheduler, verbose=log.isEnabledFor(logging.DEBUG)) as results:
            for index, arrays in results(run_chunk, tasks):
                rows = len(arrays["labels"])
                try:
                    write_shard(parts, index, arrays, digest)
                except TriggerError as exc:  # a full disk
                    raise TriggerError(
                        f"{exc} (chunk {index}: its {rows} generated rows were not saved; finished chunks are kept "
                        f"in {parts} and rerunning the same command resumes from them)") from None
                bar.update(rows)
    finally:
        bar.close()


def merge(out: Path, parts: Path, plan: Plan, chunks: list[list[int]], *, force: bool) -> Path:
    """Write ``out`` from the shards: rows shuffled with the plan's seed (the order one process
    holding all rows would give), in blocks of about MERGE_BLOCK_BYTES, never all rows at once.

    The file's size (uncompressed, an upper bound) is reserved on disk before HDF5 writes into it,
    so a full disk is one clean error here, not HDF5 failing half-way."""
    import h5py

    shards = [shard_path(parts, k) for k in range(len(chunks))]
    bounds = np.concatenate([[0], np.cumsum([sum(plan.unit_rows[u] for u in chunk) for chunk in chunks])])
    n = int(bounds[-1])
    order = np.random.default_rng(plan.seed).permutation(n)
    specs = _dataset_specs(shards[0])
    row_bytes = sum(np.dtype(dtype).itemsize * int(np.prod(shape)) for dtype, shape in specs.values())
    chunk_rows = max(1, min(n, HDF5_CHUNK_BYTES // max(row_bytes, 1)))
    block = chunk_rows * max(1, MERGE_BLOCK_BYTES // (chunk_rows * row_bytes))
    try:
        with atomic_path(out, force=force) as tmp:
            _reserve(tmp, int(n * row_bytes * 1.02) + 2**20)
            with h5py.File(tmp, "r+") as f:
                for name, (dtype, shape) in specs.items():
                    f.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=(chunk_rows, *shape),
                                     compression="gzip" if shape else None)
                for start in range(0, n, block):
                    _write_block(f, shards, bounds, order[start:start + block], start, specs)
                generated = _events_generated(plan, chunks, shards)
                derived = plan.derived_attrs(generated) if plan.derived_attrs else {}
                write_attrs(f, {**plan.attrs, "events_generated": generated, **derived})
    except TriggerError as exc:
        raise TriggerError(f"{exc} (the {n} generated rows are kept in {parts}; rerunning the same command "
                           "only merges them)") from None
    log.info("wrote %s (%d %s; %s)", out, n, plan.noun, ", ".join(f"{k} {v[1]}" for k, v in specs.items()))
    return out


def _dataset_specs(shard: Path) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """(dtype, shape of one row) of each per-row dataset of a shard."""
    import h5py

    with h5py.File(shard, "r") as f:
        return {name: (f[name].dtype, tuple(f[name].shape[1:])) for name in f if name != "unit_events"}


def _reserve(path: Path, size: int) -> None:
    """An empty HDF5 file at ``path`` with ``size`` bytes allocated on disk (HDF5 truncates it to
    what it used on close); ENOSPC here, before any row is written, if the disk cannot hold it."""
    import h5py

    h5py.File(path, "w").close()
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (95, 22):  # EOPNOTSUPP, EINVAL: a file system without fallocate
            raise
    finally:
        os.close(fd)


def _write_block(f: Any, shards: list[Path], bounds: np.ndarray, source: np.ndarray, start: int,
                 specs: dict[str, tuple[np.dtype, tuple[int, ...]]]) -> None:
    """Rows ``start ..`` of the output: row i is row ``source[i]`` of the shards joined end to end."""
    import h5py

    by_source = np.argsort(source, kind="stable")
    sorted_source = source[by_source]
    cuts = np.searchsorted(sorted_source, bounds)
    block = {name: np.empty((len(source), *shape), dtype=dtype) for name, (dtype, shape) in specs.items()}
    for k, shard in enumerate(shards):
        lo, hi = cuts[k], cuts[k + 1]
        if lo == hi:
            continue
        positions, rows = by_source[lo:hi], sorted_source[lo:hi] - bounds[k]
        with h5py.File(shard, "r") as s:
            for name, values in block.items():
                values[positions] = s[name][...][rows]
    for name, values in block.items():
        f[name][start:start + len(source)] = values


def _events_generated(plan: Plan, chunks: list[list[int]], shards: list[Path]) -> dict[str, int]:
    """Events Pythia generated per class or process, summed over the units of every shard."""
    import h5py

    events = {name: 0 for name in plan.group_names}
    for chunk, shard in zip(chunks, shards):
        with h5py.File(shard, "r") as f:
            for unit, n in zip(chunk, f["unit_events"][...].tolist()):
                events[plan.unit_group[unit]] += int(n)
    return events
