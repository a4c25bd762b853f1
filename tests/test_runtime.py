"""Seeding and atomic outputs shared by every stage."""

import random

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
