"""Faults a user on a shared machine or a batch farm meets (issue 18), injected for real: concurrent
writers to one output (processes), a full file system (a size-limited tmpfs), SIGTERM / SIGINT / a
killed parent mid-run, a truncated file between stages. Each case asserts one line on stderr, the
exit code (2; 143 / 130 for signals) and what survives. docs/reliability.md is the table of these.

The tmpfs cases mount one (root only, as in CI); where mounting is refused they are skipped, and the
in-process ENOSPC cases of tests/test_runtime.py still cover the code path. The missing-toolchain
cases (no g++, no vendor tool) are in tests/test_toolchain.py.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from tests.conftest import REPO, run_cli

STUDENT = REPO / "models" / "jet_mlp" / "model.h5"
JETS = REPO / "models" / "jet_mlp" / "check_sample.h5"
MODEL_CONFIG = REPO / "configs" / "jet_mlp.yaml"


def one_line(returncode: int, stderr: str, code: int = 2) -> str:
    """The one line of a failed run: exit ``code``, no traceback, nothing on stderr but the stage's
    own ``[trigger]`` log lines."""
    assert returncode == code, (returncode, stderr[-3000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("[trigger] ")]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith("trigger: "), lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporaries (``.NAME.*``) left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trigger", *map(str, args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@contextlib.contextmanager
def small_fs(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (skips the test where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip()[:100]}); see test_runtime.py")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# --- concurrent writers -----------------------------------------------------------------------

WRITER = """
import pathlib, sys, time
from trigger.errors import TriggerError
from trigger.runtime import atomic_path
final, me, kind, force, go = sys.argv[1:]
try:
    with atomic_path(final, force=force == "1") as tmp:
        if kind == "dir":
            tmp.mkdir()
            for i in range(50):
                (tmp / f"f{i}").write_text(me)
        else:
            tmp.write_text(me * 1000)
        pathlib.Path(f"{go}.{me}").touch()  # finished writing: wait until every writer has
        while not pathlib.Path(go).exists():
            time.sleep(0.005)
except TriggerError as exc:
    print(f"trigger: error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def _race(tmp_path: Path, kind: str, force: bool, n: int = 4) -> tuple[Path, list]:
    """``n`` processes write the same output; all finish writing, then all publish at once."""
    final, go = tmp_path / "out", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(final), str(i), kind, str(int(force)), str(go)],
                              cwd=REPO, text=True, stderr=subprocess.PIPE) for i in range(n)]
    deadline = time.time() + 60
    while not all(Path(f"{go}.{i}").exists() for i in range(n)) and time.time() < deadline:
        time.sleep(0.01)
    go.touch()
    return final, [(p.wait(timeout=60), p.stderr.read()) for p in procs]


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_concurrent_writers_exactly_one_wins(tmp_path, kind):
    """Without --force: one writer wins, every other gets one line and exit 2, nothing is replaced."""
    final, results = _race(tmp_path, kind, force=False)
    assert sorted(code for code, _ in results) == [0, 2, 2, 2], results
    for code, err in results:
        if code:
            assert "appeared while this run was writing it" in one_line(code, err)
    winner = str(next(i for i, (code, _) in enumerate(results) if code == 0))
    content = {p.read_text() for p in final.iterdir()} if kind == "dir" else {final.read_text()}
    assert content == {winner if kind == "dir" else winner * 1000}
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_concurrent_writers_with_force_last_wins_whole(tmp_path, kind):
    """With --force: every writer succeeds, the output is one writer's whole output, none mixed."""
    final, results = _race(tmp_path, kind, force=True)
    assert [code for code, _ in results] == [0] * 4, results
    content = {p.read_text() for p in final.iterdir()} if kind == "dir" else {final.read_text()}
    assert len(content) == 1 and (len(list(final.iterdir())) == 50 if kind == "dir" else True)
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_concurrent_data_runs_one_wins(tmp_path):
    """Two real `trigger data` runs to one --out: one writes it, the other is one line, exit 2."""
    out = tmp_path / "jets.h5"
    procs = [cli("data", "jets", "--n-per-class", 20, "--out", out) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    line = next(one_line(code, err) for code, err in results if code)
    assert str(out) in line and ("appeared while" in line or "already exists" in line), line
    with h5py.File(out) as f:
        assert len(f["labels"]) == 100
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_concurrent_synths_one_wins(tmp_path):
    """The issue's case: two `trigger synth` of one model to one --out, started together, both
    exited 0 and the second silently replaced the first's project. Now one wins, whole."""
    out = tmp_path / "proj"
    procs = [cli("synth", STUDENT, "--out", out) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    line = next(one_line(code, err) for code, err in results if code)
    assert str(out) in line and ("appeared while" in line or "already exists" in line), line
    assert {"report.json", "report.md"} <= {p.name for p in out.iterdir()}
    assert leftovers(tmp_path) == []


# --- a full file system -----------------------------------------------------------------------

def test_train_refuses_early_on_a_full_disk(tmp_path):
    """A training run checks the space its folder needs before it trains, not when it writes."""
    with small_fs(tmp_path / "fs", "1m") as fs:
        res = run_cli("train", MODEL_CONFIG, "--data", JETS, "--out", fs / "run", timeout=120)
        line = one_line(res.returncode, res.stderr)
        assert "not enough free space" in line and "training run" in line, line
        assert list(fs.iterdir()) == []


def test_data_refuses_early_on_a_full_disk(tmp_path):
    """The free space is checked before minutes of generation, not after."""
    with small_fs(tmp_path / "fs", "64k") as fs:
        start = time.time()
        res = run_cli("data", "jets", "--n-per-class", 300, "--out", fs / "jets.h5", timeout=120)
        line = one_line(res.returncode, res.stderr)
        assert "not enough free space" in line and "1500 jets need about" in line and "free on" in line
        assert time.time() - start < 30
        assert list(fs.iterdir()) == []


@pytest.mark.slow
def test_data_final_write_on_a_full_disk(tmp_path, monkeypatch, capsys):
    """The estimate passed but the write did not fit: one line saying the rows were not saved,
    nothing left on the disk (before: a segmentation fault and pages of HDF5 errors)."""
    from trigger import cli as trigger_cli
    from trigger.data import jets

    monkeypatch.setattr(jets, "check_space_for", lambda *a: None)
    with small_fs(tmp_path / "fs", "16k") as fs:
        code = trigger_cli.main(["data", "jets", "--n-per-class", "20", "--out", str(fs / "jets.h5")])
        line = one_line(code, capsys.readouterr().err)
        assert "no space left on device" in line and "free on" in line and "100 generated rows were not saved" in line
        assert list(fs.iterdir()) == []


@pytest.mark.slow
def test_synth_onto_a_full_disk(tmp_path):
    """hls4ml's copy of its templates fails (a shutil.Error listing ENOSPC per file): one line."""
    with small_fs(tmp_path / "fs", "1m") as fs:
        res = run_cli("synth", STUDENT, "--out", fs / "proj", timeout=300)
        line = one_line(res.returncode, res.stderr)
        assert f"cannot write {fs / 'proj'}: no space left on device" in line and "free on" in line
        assert list(fs.iterdir()) == []


# --- signals ----------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_data(out: Path, workers: int) -> tuple[subprocess.Popen, list[int]]:
    """A long `trigger data` run, once its worker processes (if any) are generating."""
    proc = cli("data", "jets", "--n-per-class", 2000, "--workers", workers, "--out", out)
    deadline = time.time() + 60
    while time.time() < deadline and len(_children(proc.pid)) < (workers + 1 if workers > 1 else 0):
        time.sleep(0.2)
    time.sleep(2)
    assert proc.poll() is None, proc.stderr.read()
    return proc, _children(proc.pid)


@pytest.mark.parametrize("signum,code,workers", [(signal.SIGTERM, 143, 2), (signal.SIGINT, 130, 1)],
                         ids=["SIGTERM-workers", "SIGINT"])
def test_signal_mid_data_stops_within_seconds(tmp_path, signum, code, workers):
    out = tmp_path / "jets.h5"
    proc, children = _start_data(out, workers)
    proc.send_signal(signum)
    start = time.time()
    _, err = proc.communicate(timeout=30)
    assert time.time() - start < 5
    assert one_line(proc.returncode, err, code) == (
        f"trigger: {'terminated by SIGTERM' if signum == signal.SIGTERM else 'interrupted by SIGINT'}; "
        "unfinished outputs were removed")
    assert not out.exists() and leftovers(tmp_path) == []
    time.sleep(1)
    assert not [pid for pid in children if _alive(pid)]


def test_workers_stop_when_the_parent_is_killed(tmp_path):
    """SIGKILL gives the parent no chance to clean up; its workers still stop (PR_SET_PDEATHSIG)."""
    proc, children = _start_data(tmp_path / "jets.h5", 2)
    assert len(children) >= 2
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline and [pid for pid in children if _alive(pid)]:
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)]
    assert not (tmp_path / "jets.h5").exists()


@pytest.mark.slow
def test_sigterm_mid_synth_removes_the_project_being_written(tmp_path):
    """SIGTERM while the HLS project exists under its temporary name: nothing survives."""
    out = tmp_path / "proj"
    proc = cli("synth", STUDENT, "--out", out)
    deadline = time.time() + 120
    while time.time() < deadline and not leftovers(tmp_path) and proc.poll() is None:
        time.sleep(0.1)
    assert leftovers(tmp_path), "the project never appeared under its temporary name"
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    start = time.time()
    _, err = proc.communicate(timeout=60)
    assert time.time() - start < 10
    assert one_line(proc.returncode, err, 143).startswith("trigger: terminated by SIGTERM")
    time.sleep(1)
    assert not out.exists() and leftovers(tmp_path) == []


# --- a truncated file between stages (the other corrupt inputs: tests/test_bad_inputs.py) -------

@pytest.mark.slow
@pytest.mark.parametrize("stage", ["train", "synth"])
def test_truncated_data_file_between_stages(tmp_path, stage):
    """A data file cut short (a copy interrupted by a full disk): one line naming it, nothing written."""
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(JETS.read_bytes()[: JETS.stat().st_size // 2])
    out = tmp_path / "out"
    args = (MODEL_CONFIG, "--data", truncated) if stage == "train" else (STUDENT, "--data", truncated)
    res = run_cli(stage, *args, "--out", out, timeout=300)
    line = one_line(res.returncode, res.stderr)
    assert str(truncated) in line, line
    assert not out.exists() and leftovers(tmp_path) == []


def test_sigterm_stops_the_demo_in_one_line(tmp_path):
    """`make demo` (and `make reference`, the same code) does not go through `trigger`'s CLI: it stops
    the same way. (The reference runner is not started here: it writes into the repository's models/.)"""
    out = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "trigger.demo", "--out", str(out), "--n-per-class", "2000"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # past start-up, into data generation
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[trigger] ")]
    assert proc.returncode == 143 and "Traceback" not in err, (proc.returncode, err[-3000:])
    assert lines == ["demo: terminated by SIGTERM; unfinished outputs were removed"], err[-3000:]
    assert not (out / "jets.h5").exists() and leftovers(out) == []
