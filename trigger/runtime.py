"""Process-wide set-up shared by every stage: seeding, logging, progress bars, atomic outputs."""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import random
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import numpy as np

from trigger.errors import Terminated, TriggerError

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


#: Seconds the HDF5 probe of a user's file may take; a damaged file can send the HDF5 library
#: into an endless loop (a bit flip in a B-tree was seen to do so).
HDF5_PROBE_TIMEOUT_S = 60
# Run in a child interpreter: reads every attribute, link and (up to 64 MB each; else the first and
# last rows) dataset the way h5py will, ignoring Python errors (the caller's own reading reports
# those in its words). Only a crash or a hang of the HDF5 C library matters here.
_HDF5_PROBE = r"""
import sys, h5py
def read(fn):
    try:
        return fn()
    except Exception:
        return None
def visit(name, obj):
    for key in read(lambda: list(obj.attrs)) or []:
        read(lambda: obj.attrs[key])
    if isinstance(obj, h5py.Dataset) and read(lambda: obj.size):
        if read(lambda: obj.nbytes <= 1 << 26):
            read(lambda: obj[()])
        else:
            read(lambda: obj[:1]), read(lambda: obj[-1:])
with h5py.File(sys.argv[1], "r") as f:
    visit("/", f)
    read(lambda: f.visititems(visit))
"""
_probed: dict[tuple, None] = {}


def probe_hdf5(path: str | os.PathLike, what: str, remedy: str) -> None:
    """Read the HDF5 file ``path`` once in a child interpreter first, so that a damaged file that
    crashes the HDF5 C library (a segmentation fault) or never finishes becomes one
    :class:`TriggerError` naming ``path``, ``what`` it should be and the ``remedy``, instead of
    killing or hanging this process. Python-level errors are left to the caller's own reading. A
    file already probed unchanged (same size, modification time and inode) is not probed again."""
    import subprocess

    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return  # the caller's own reading names a missing or unreadable file
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key in _probed:
        return
    cmd = [sys.executable, "-c", _HDF5_PROBE, str(path)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=HDF5_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TriggerError(f"cannot read {path} as {what}: the HDF5 library did not finish reading it in "
                           f"{HDF5_PROBE_TIMEOUT_S} s (a damaged file); {remedy}") from None
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else "a signal"
        raise TriggerError(f"cannot read {path} as {what}: the HDF5 library crashed on it ({name}; a damaged "
                           f"file); {remedy}")
    _probed[key] = None


#: errno values that mean "the disk (or its quota, or the device) failed a write", not a bug.
DISK_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EIO: "input/output error", errno.EFBIG: "file too large", errno.EROFS: "read-only file system"}
_ERRNO_IN_TEXT = re.compile(r"errno = (\d+)|\[Errno (\d+)\]")


def disk_errno(exc: BaseException) -> int | None:
    """The errno of a failed write in ``exc`` if it is one of :data:`DISK_ERRNOS`, else None.

    Looks at ``OSError.errno``, the per-file reasons of a ``shutil.Error`` (``copytree`` collects
    them, as hls4ml's project writer does) and the text of HDF5 errors (``errno = 28``), following
    ``__cause__``/``__context__`` so a wrapped error is found too."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return exc.errno
        texts = [str(exc)]
        if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
            texts = [str(item[-1]) for item in exc.args[0] if isinstance(item, tuple)] + texts
        for text in texts:
            for match in _ERRNO_IN_TEXT.finditer(text):
                number = int(match.group(1) or match.group(2))
                if number in DISK_ERRNOS:
                    return number
            if "No space left on device" in text:
                return errno.ENOSPC
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 if it is gone)."""
    try:
        if path.is_dir() and not path.is_symlink():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        return path.lstat().st_size
    except OSError:
        return 0


def human_bytes(n: float) -> str:
    """``n`` bytes as a short human string (``1.5 MB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes (for this user) on the file system holding ``path`` or its nearest existing parent."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def disk_error_message(final: Path, number: int, written: int, free: int | None) -> str:
    """One line for a write of ``final`` that failed with ``number`` (an errno of DISK_ERRNOS),
    after ``written`` bytes, with ``free`` bytes found free on its disk when it failed."""
    found = "unknown" if free is None else human_bytes(free)
    wrote = f"it had written {human_bytes(written)}, " if written else ""
    return (f"cannot write {final}: {DISK_ERRNOS[number]} ({wrote}{found} free on {final.parent} when it "
            "failed); the partial output was removed; free some space or choose another --out, then rerun")


def check_free_space(path: str | os.PathLike, needed: int, what: str) -> None:
    """Refuse early (one line) if the file system of ``path`` has less than ``needed`` bytes free."""
    free = free_bytes(Path(path).parent)
    if free is not None and free < needed:
        raise TriggerError(f"not enough free space for {path}: {what} need about {human_bytes(needed)}, "
                           f"{human_bytes(free)} free on {Path(path).parent}; free some space or choose "
                           "another --out")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success move it to ``final``.

    Works for files and directories. On any error (or a signal, see ``trigger.cli``) the temporary
    is removed and ``final`` is left as it was, so no half-written output ever appears under the
    final name. Without ``force`` the move never replaces anything: if ``final`` appeared while this
    run wrote (a concurrent run), this run loses with one :class:`TriggerError` and the other run's
    output stays. With ``force`` the last writer wins, atomically. A full disk, a quota or an I/O
    error anywhere inside is one :class:`TriggerError` naming ``final`` and the free space.
    """
    final = check_output_free(final, force)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a parent folder should be, no permission, a full disk
        raise TriggerError(f"cannot create the folder {final.parent} for {final} ({exc.strerror or exc}); "
                           "choose another --out") from None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:  # no free inode, a read-only file system, no permission
        number = disk_errno(exc)
        if number is not None:
            raise TriggerError(disk_error_message(final, number, 0, free_bytes(final.parent))) from None
        raise TriggerError(f"cannot create a file in {final.parent} ({exc.strerror or exc}); "
                           "choose another --out") from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the caller creates a file or a directory under this name
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to the temporary output {tmp}")
        publish(tmp, final, force=force)
    except BaseException as exc:
        number = None if isinstance(exc, TriggerError) else disk_errno(exc)
        written, free = (_size(tmp), free_bytes(final.parent)) if number is not None else (0, None)
        for path in (tmp, *tmp.parent.glob(f"{glob.escape(tmp.stem)}.*")):  # and what a writer derived
            remove_path(path)                                                  # from it (Keras: .h5)
        if number is not None:
            raise TriggerError(disk_error_message(final, number, written, free)) from None
        raise


@contextlib.contextmanager
def hdf5_in_memory(path: str | os.PathLike) -> Iterator[Any]:
    """An ``h5py.File`` built in memory and written to ``path`` with plain writes when the block ends.

    The HDF5 library writing straight to a full disk leaves its objects half-closed: a page of
    HDF5 errors and, at exit, a segmentation fault. Written this way, a full disk is one clean
    ``OSError`` (ENOSPC) from ``write`` that :func:`atomic_path` turns into one line."""
    import h5py

    f = h5py.File(f"{path}.core", "w", driver="core", backing_store=False)
    try:
        yield f
        f.flush()
        image = f.id.get_file_image()
    finally:
        f.close()
    with open(path, "wb") as out:
        out.write(image)
        out.flush()
        os.fsync(out.fileno())


def remove_path(path: Path) -> None:
    """Remove a file, symlink or folder tree if it exists; never raises."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError:
        pass


# --- renames that never replace (Linux renameat2), and the fallbacks -----------------------------

_RENAME_NOREPLACE, _RENAME_EXCHANGE, _AT_FDCWD = 1, 2, -100
_renameat2: Any = False  # False: not looked up yet; None: not available


def _renameat2_call(src: Path, dst: Path, flags: int) -> int:
    """``renameat2(src, dst, flags)``: 0 on success, else the errno (ENOSYS if there is none)."""
    global _renameat2
    if _renameat2 is False:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            _renameat2 = libc.renameat2
            _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                   ctypes.c_uint]
        except (OSError, AttributeError):
            _renameat2 = None
    if _renameat2 is None:
        return errno.ENOSYS
    import ctypes

    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return 0
    return ctypes.get_errno()


_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def rename_no_replace(src: Path, dst: Path) -> bool:
    """Move ``src`` to ``dst`` unless ``dst`` exists (then False, ``src`` untouched), atomically.

    ``renameat2(RENAME_NOREPLACE)`` where the kernel and file system have it; else a hard link
    (files) or a lock file beside ``dst`` (folders, against other ``trigger`` runs)."""
    err = _renameat2_call(src, dst, _RENAME_NOREPLACE)
    if err == 0:
        return True
    if err == errno.EEXIST:
        return False
    if err not in _UNSUPPORTED:
        raise OSError(err, os.strerror(err), str(dst))
    if not src.is_dir():
        try:
            os.link(src, dst)
        except FileExistsError:
            return False
        src.unlink()
        return True
    with _lock_beside(dst):
        if dst.exists() or dst.is_symlink():
            return False
        os.rename(src, dst)
        return True


@contextlib.contextmanager
def _lock_beside(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``.<name>.lock`` beside ``path``; the file stays (removing it
    would race with a run waiting on it). Only used where ``renameat2`` is missing."""
    import fcntl

    lock = path.parent / f".{path.name}.lock"
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path, *, force: bool) -> None:
    """Move the finished temporary ``tmp`` to ``final``.

    Without ``force``: never replaces; if ``final`` exists (another run finished first) a
    :class:`TriggerError` (the caller removes ``tmp``). With ``force``: a file replaces ``final``
    with one rename; a folder is swapped in with ``renameat2(RENAME_EXCHANGE)`` (or renamed aside
    then in where that is missing) and the old one removed, so readers see the old or the new."""
    if not force:
        if not rename_no_replace(tmp, final):
            raise TriggerError(f"{final} appeared while this run was writing it (another run with the "
                               "same --out?); that output was kept and this run's was discarded; pass "
                               "--force to overwrite it or choose another --out")
        return
    if not tmp.is_dir():
        os.replace(tmp, final)
        return
    for _ in range(100):  # only loops while other --force runs keep swapping the same folder in
        if rename_no_replace(tmp, final):
            return
        err = _renameat2_call(tmp, final, _RENAME_EXCHANGE)
        if err == 0:
            remove_path(tmp)  # now the old output
            return
        if err not in _UNSUPPORTED and err != errno.ENOENT:
            raise OSError(err, os.strerror(err), str(final))
        if err in _UNSUPPORTED:
            aside = tmp.with_name(tmp.name + ".old")
            try:
                os.rename(final, aside)
            except FileNotFoundError:
                continue
            remove_path(aside)
    raise TriggerError(f"{final} kept being replaced by other runs; this run's output was discarded")


@contextlib.contextmanager
def signals_stop_the_run() -> Iterator[None]:
    """While inside: SIGTERM raises :class:`Terminated` and SIGINT ``KeyboardInterrupt`` in the main
    thread, so a stage stops within moments and :func:`atomic_path` removes its temporaries; a second
    signal is ignored while that clean-up runs. The previous handlers come back on exit (nothing is
    installed off the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stopped_by_signal(prog: str, exc: KeyboardInterrupt) -> int:
    """Print the one line of a run stopped by SIGTERM or SIGINT; return its exit code (128 + signal)."""
    if isinstance(exc, Terminated):
        print(f"{prog}: terminated by SIGTERM; unfinished outputs were removed", file=sys.stderr)
        return 128 + signal.SIGTERM
    print(f"{prog}: interrupted by SIGINT; unfinished outputs were removed", file=sys.stderr)
    return 128 + signal.SIGINT


def run_main(prog: str, body: Callable[[], int | None], *, verbose: bool = False,
             last_resort: Callable[[Exception], str] | None = None) -> int:
    """The one entry-point wrapper (``trigger``, ``python -m trigger.demo``, ``python -m
    trigger.reference``, a scan trial's process): run ``body`` with :func:`signals_stop_the_run`;
    a :class:`TriggerError` is one ``<prog>: error: ...`` line and its exit code, a signal one line
    and 128 + its number. Any other exception gets the line ``last_resort`` makes of it (exit 2),
    or propagates with its traceback when there is none. ``verbose`` prints tracebacks too."""
    import traceback

    with signals_stop_the_run():
        try:
            return body() or 0
        except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM as Terminated
            return stopped_by_signal(prog, exc)
        except TriggerError as exc:
            if verbose:
                traceback.print_exc()
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except Exception as exc:  # noqa: BLE001  (the last resort: one line, never a silent bug)
            if last_resort is None:
                raise
            if verbose:
                traceback.print_exc()
            print(f"{prog}: error: {last_resort(exc)}", file=sys.stderr)
            return TriggerError.exit_code
