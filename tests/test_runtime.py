"""Seeding and atomic outputs shared by every stage."""

import random
import signal

import numpy as np
import pytest

from trigger.errors import TriggerError
from trigger.runtime import atomic_path, set_seed


def test_seed_reproduces_python_numpy_tensorflow():
    import tensorflow as tf

    def draw():
        return random.random(), np.random.rand(3).tolist(), tf.random.uniform((3,)).numpy().tolist()

    set_seed(7)
    a = draw()
    set_seed(7)
    b = draw()
    set_seed(8)
    c = draw()
    assert a == b
    assert a != c


def test_atomic_file_is_renamed_on_success(tmp_path):
    final = tmp_path / "out.txt"
    with atomic_path(final) as tmp:
        tmp.write_text("ok")
        assert not final.exists()
    assert final.read_text() == "ok"
    assert list(tmp_path.iterdir()) == [final]


def test_atomic_failure_leaves_existing_output_intact(tmp_path):
    final = tmp_path / "out.txt"
    final.write_text("old")
    with pytest.raises(ZeroDivisionError):
        with atomic_path(final, force=True) as tmp:
            tmp.write_text("half")
            1 / 0
    assert final.read_text() == "old"
    assert list(tmp_path.iterdir()) == [final]


def test_existing_output_refused_without_force(tmp_path):
    final = tmp_path / "out.txt"
    final.write_text("old")
    with pytest.raises(TriggerError, match="--force"):
        with atomic_path(final) as tmp:
            tmp.write_text("new")
    assert final.read_text() == "old"


def test_atomic_directory_replaces_with_force(tmp_path):
    final = tmp_path / "proj"
    final.mkdir()
    (final / "old").write_text("x")
    with atomic_path(final, force=True) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("y")
    assert sorted(p.name for p in final.iterdir()) == ["new"]


def test_progress_off_terminal_logs_lines_not_bars(monkeypatch, caplog):
    """Off a terminal a long loop logs plain lines (here forced with a zero delay and interval)."""
    import logging

    from trigger import runtime

    monkeypatch.delenv("TRIGGER_PROGRESS", raising=False)
    bar = runtime.progress(total=4, desc="jets", unit="jet")
    bar.delay, bar.mininterval, bar.miniters = 0, 0, 1
    propagate = runtime.log.propagate
    runtime.log.propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="trigger"):
            for _ in range(4):
                bar.update(1)
            bar.close()
    finally:
        runtime.log.propagate = propagate
    lines = [r.getMessage() for r in caplog.records]
    assert any(l.startswith("jets: 4/4 jet") for l in lines), lines
    assert not any("\r" in l or "|" in l for l in lines)


# --- no-replace publishing, disk errors (issue 18; the process-level cases are in test_faults.py) ---

@pytest.mark.parametrize("kind", ["file", "dir"])
@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "fallback"])
def test_output_that_appears_meanwhile_is_never_replaced(tmp_path, monkeypatch, kind, renameat2):
    """Another run finishing first: this run loses with one line, its temporary removed."""
    from trigger import runtime

    if not renameat2:
        monkeypatch.setattr(runtime, "_renameat2_call", lambda *a: runtime.errno.ENOSYS)
    final = tmp_path / "out"
    with pytest.raises(TriggerError, match="appeared while this run was writing it"):
        with atomic_path(final) as tmp:
            if kind == "dir":
                tmp.mkdir()
                (tmp / "mine").write_text("mine")
                final.mkdir()
                (final / "theirs").write_text("theirs")
            else:
                tmp.write_text("mine")
                final.write_text("theirs")
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["out"]
    assert (final / "theirs").exists() if kind == "dir" else final.read_text() == "theirs"
    assert not list(tmp_path.glob(".out.*.tmp*"))


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "fallback"])
def test_force_swaps_a_folder_in_and_leaves_nothing_aside(tmp_path, monkeypatch, renameat2):
    from trigger import runtime

    if not renameat2:
        monkeypatch.setattr(runtime, "_renameat2_call", lambda *a: runtime.errno.ENOSYS)
    final = tmp_path / "proj"
    with atomic_path(final, force=True) as tmp:
        tmp.mkdir()
        (tmp / "old").write_text("x")
        final.mkdir()  # appeared meanwhile: --force still wins
        (final / "theirs").write_text("y")
    assert sorted(p.name for p in final.iterdir()) == ["old"]
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["proj"]


def test_full_disk_inside_is_one_line_naming_path_and_free_space(tmp_path):
    """An ENOSPC anywhere inside, also wrapped in the list of a shutil.Error (hls4ml's copytree),
    becomes one TriggerError; the temporary and the files derived from its name are removed."""
    import errno
    import shutil

    final = tmp_path / "proj"
    wrapped = shutil.Error([("a.cpp", str(final / "a.cpp"), "[Errno 28] No space left on device: 'a.cpp'")])
    for exc in (OSError(errno.ENOSPC, "No space left on device"), wrapped,
                RuntimeError("Can't decrement id ref count (file write failed: errno = 28, ...)")):
        with pytest.raises(TriggerError, match=r"cannot write .*proj: no space left on device \(.* free on"):
            with atomic_path(final) as tmp:
                tmp.mkdir()
                (tmp / "a.cpp").write_text("x" * 1000)
                tmp.with_suffix(".h5").write_text("derived")
                raise exc
        assert list(tmp_path.iterdir()) == []


def test_quota_and_io_errors_are_named(tmp_path):
    import errno

    for number, text in ((errno.EDQUOT, "disk quota exceeded"), (errno.EIO, "input/output error")):
        with pytest.raises(TriggerError, match=text):
            with atomic_path(tmp_path / "out.txt") as tmp:
                tmp.write_text("x")
                raise OSError(number, "boom")
    with pytest.raises(ValueError):  # other errors keep their type (the CLI's last resort names them)
        with atomic_path(tmp_path / "out.txt") as tmp:
            raise ValueError("a bug")
    assert list(tmp_path.iterdir()) == []


def test_check_free_space_refuses_early(tmp_path):
    from trigger.runtime import check_free_space

    check_free_space(tmp_path / "x.h5", 1, "1 jet")
    with pytest.raises(TriggerError, match=r"not enough free space for .*x.h5: 10 jets need about .* free on"):
        check_free_space(tmp_path / "x.h5", 10**18, "10 jets")


def test_run_main_is_the_one_entry_point_wrapper(capsys):
    from trigger.runtime import run_main

    def refuse() -> int:
        raise TriggerError("no such file")

    assert run_main("demo", lambda: 0) == 0 and run_main("demo", lambda: None) == 0
    assert run_main("demo", refuse) == TriggerError.exit_code
    assert capsys.readouterr().err == "demo: error: no such file\n"
    with pytest.raises(ZeroDivisionError):  # no last resort: a bug keeps its traceback
        run_main("reference", lambda: 1 / 0)
    assert run_main("trigger", lambda: 1 / 0, last_resort=lambda exc: f"bug: {type(exc).__name__}") == 2
    assert capsys.readouterr().err == "trigger: error: bug: ZeroDivisionError\n"

    def interrupted() -> int:
        raise KeyboardInterrupt()

    assert run_main("scan trial", interrupted) == 128 + signal.SIGINT
    assert "scan trial: interrupted by SIGINT" in capsys.readouterr().err
