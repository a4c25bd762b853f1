"""The Dask executor shared by `trigger data` and `trigger scan`: local worker processes on this
machine, or the workers of a running Dask scheduler (a batch farm, several machines).

``dask_client`` gives a ``distributed.Client``: with ``scheduler=None`` it starts a ``LocalCluster``
of ``workers`` processes (one thread each, no dashboard, listening on 127.0.0.1 only) and stops it
on the way out, killing its workers first if the run was interrupted; with an address
(``tcp://HOST:PORT``) it connects to that scheduler and leaves it running. ``completed`` submits
tasks and yields their results as they finish. ``dask_processes`` starts a ``dask scheduler`` and
``dask worker`` processes on 127.0.0.1: the ``--scheduler`` path on one machine (tests, benchmarks).
Dask's own log lines are silenced (our progress and errors say what matters); ``-v`` shows its
warnings.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from trigger.errors import TriggerError

#: How long to try to reach a --scheduler before giving up with one line.
CONNECT_TIMEOUT_S = 10


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, *,
                verbose: bool = False) -> Iterator[Any]:
    """A ``distributed.Client`` on a new local cluster of ``workers`` processes, or on the running
    scheduler at ``scheduler``; closed (and the local cluster stopped) when the block ends.

    Bad arguments and an unreachable scheduler are one :class:`TriggerError` line."""
    check_where(workers, scheduler)
    if scheduler is None and workers is None:
        raise TriggerError("--workers N or --scheduler ADDRESS is needed to start a Dask client")
    with _quiet_dask(verbose):
        if scheduler is not None:
            with _connect(scheduler) as client:
                yield client
        else:
            with _local_cluster(workers) as client:
                yield client


def check_where(workers: int | None, scheduler: str | None) -> None:
    """One-line errors for ``--workers`` (an integer >= 1 if given) and ``--scheduler`` given together."""
    if workers is not None and scheduler is not None:
        raise TriggerError("--workers and --scheduler exclude each other: --workers N starts N local "
                           "processes, --scheduler ADDRESS uses that scheduler's workers; pass one")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise TriggerError(f"--workers must be an integer >= 1, got {workers!r}")


@contextlib.contextmanager
def _quiet_dask(verbose: bool) -> Iterator[None]:
    """Dask logs INFO lines (and tracebacks of closed connections) on stderr: raise its level for
    the block, so that the one-line errors and progress of ``trigger`` stay readable."""
    importlib.import_module("distributed")  # configures its loggers on import; set the level after
    logger = logging.getLogger("distributed")
    previous = logger.level
    logger.setLevel(logging.WARNING if verbose else logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _connect(address: str) -> Iterator[Any]:
    """A client of the scheduler at ``address``; one line if it cannot be reached."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise TriggerError(
            f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s ({detail}); start one "
            "with `dask scheduler --host HOST --port PORT` and workers with `dask worker tcp://HOST:PORT`, "
            "or drop --scheduler to run on this machine") from None
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def _local_cluster(workers: int) -> Iterator[Any]:
    """A client of a new ``LocalCluster`` of ``workers`` one-thread processes on 127.0.0.1.

    The workers start with SIGINT ignored: Ctrl-C reaches the whole process group, and the parent
    alone stops the run (each worker would print a traceback). They exit by themselves if the parent
    dies (Dask watches its end of a pipe). A SIGTERM during the start is held until the cluster
    exists, so that it is always stopped; on an interruption the workers are killed before the
    cluster closes, so a SIGTERM stops everything in well under a second."""
    from distributed import Client, LocalCluster

    cluster = None
    try:
        with _signals_held_while_starting():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, worker_dashboard_address=None,
                                   silence_logs=logging.CRITICAL,
                                   # its HTTP server (health checks) on a free port of 127.0.0.1, not 8787
                                   scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
        with Client(cluster, set_as_default=False) as client:
            yield client
    except BaseException:
        if cluster is not None:
            kill_local_workers(cluster)
        raise
    finally:
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _signals_held_while_starting() -> Iterator[None]:
    """While worker processes are spawned: SIGINT ignored (they inherit that, and the parent alone
    handles Ctrl-C), and a SIGTERM recorded, then delivered to the previous handler on the way out
    (a cluster half-started when the signal came could not be stopped cleanly)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM, lambda signum, frame: held.append(signum))}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            signal.raise_signal(signal.SIGTERM)


def kill_local_workers(cluster: Any) -> None:
    """SIGKILL the worker processes of a ``LocalCluster`` (their tasks are not interruptible)."""
    for nanny in list(getattr(cluster, "workers", {}).values()):
        pid = getattr(getattr(getattr(nanny, "process", None), "process", None), "pid", None)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def completed(client: Any, fn: Callable[..., Any], tasks: Iterable[tuple[Any, tuple]], *, retries: int = 0,
              on_error: Callable[[Any, Exception], Any] | None = None) -> Iterator[tuple[Any, Any]]:
    """Submit ``fn(*args)`` for each ``(key, args)`` of ``tasks`` and yield ``(key, result)`` in the
    order tasks finish. ``retries``: how often Dask reruns a task that failed (raised or lost its
    worker). A failed task yields ``(key, on_error(key, exception))`` when ``on_error`` is given;
    otherwise a task that killed its workers (``KilledWorker``: out of memory, a crash in C) is one
    :class:`TriggerError` and an exception inside ``fn`` propagates as raised. Tasks not yet finished
    when the caller stops are cancelled."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    keys = {}
    for key, args in tasks:
        keys[client.submit(fn, *args, pure=False, retries=retries)] = key
    try:
        for future in as_completed(list(keys), loop=client.loop):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - handed to on_error, or raised as below
                if on_error is not None:
                    result = on_error(keys[future], exc)
                elif isinstance(exc, KilledWorker):
                    raise TriggerError(f"task {keys[future]} killed the worker processes that ran it ({exc}); "
                                       "out of memory? give the workers more memory or use smaller chunks") from None
                else:
                    raise
            yield keys[future], result
            future.release()
    finally:
        with contextlib.suppress(Exception):
            client.cancel([f for f in keys if not f.done()])


def serial(fn: Callable[..., Any], tasks: Iterable[tuple[Any, tuple]]) -> Iterator[tuple[Any, Any]]:
    """``completed`` without Dask: each task in this process, in order."""
    for key, args in tasks:
        yield key, fn(*args)


@contextlib.contextmanager
def task_runner(workers: int | None, scheduler: str | None, *,
                verbose: bool = False) -> Iterator[Callable[[Callable[..., Any], Iterable[tuple[Any, tuple]]],
                                                              Iterator[tuple[Any, Any]]]]:
    """A function ``run(fn, tasks)`` yielding ``(key, fn(*args))`` as tasks finish: in this process
    for one local worker (no cluster to start), else on :func:`dask_client`."""
    if scheduler is None and (workers is None or workers == 1):
        yield serial
        return
    with dask_client(workers, scheduler, verbose=verbose) as client:
        yield lambda fn, tasks: completed(client, fn, tasks)


def free_local_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def dask_processes(n_workers: int = 1, *, cwd: Path | None = None) -> Iterator[str]:
    """A ``dask scheduler`` and ``n_workers`` one-thread ``dask worker`` processes on 127.0.0.1 (their
    output discarded), started from this interpreter's environment; yields the scheduler's address.
    All are stopped by process id when the block ends: SIGTERM, then SIGKILL after 15 s."""
    port = free_local_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).with_name("dask"))
    quiet = {"cwd": cwd, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              **quiet)]
    try:
        for _ in range(n_workers):
            procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--no-dashboard", "--host", "127.0.0.1"], **quiet))
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
