"""Chunked, resumable data generation on the Dask executor (issue 16): the result does not depend on
the chunk size, the number of workers, the executor or interruptions; a different command on the
same OUT.parts is refused in one line.

The fast tests drive :func:`trigger.data.shards.generate` with a synthetic unit (random numbers from
the unit's seed) so the machinery is checked in seconds; the slow ones run the real `trigger data`
command (Pythia) as a user would: killed with SIGTERM and SIGKILL and resumed, and through a
`dask scheduler` and a `dask worker` started here on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from trigger.data import generate_jets, read_attrs
from trigger.data.common import task_seed
from trigger.data.shards import Plan, chunk_units, generate, manifest_of, parts_path
from trigger.errors import TriggerError
from trigger.executor import dask_processes, free_local_port

JETS_ARGS = ("--n-per-class", "12", "--particles", "8", "--image-size", "8", "--seed", "7")


# --- a synthetic unit: the shard machinery without Pythia ------------------------------------------

def fake_unit(task: tuple[int, int, int]) -> tuple[int, dict[str, np.ndarray]]:
    """Rows of one unit from its own seed only (as a Pythia unit is); runs on Dask workers too."""
    group, n, seed, *width = task
    rng = np.random.default_rng(seed)
    return n, {"x": rng.normal(size=(n, width[0] if width else 3, 2)).astype(np.float32), "labels": np.full(n, group, dtype=np.int64),
               "n_events": np.array([int(rng.integers(n, 3 * n))], dtype=np.int64)}


def failing_unit(task: tuple[int, int, int]) -> tuple[int, dict[str, np.ndarray]]:
    """``fake_unit``, but the second unit (2 rows) fails: a crash half-way through a run."""
    if task[1] == 2:
        raise RuntimeError("the second unit failed")
    return fake_unit(task)


def first_unit_forbidden(task: tuple[int, int, int]) -> tuple[int, dict[str, np.ndarray]]:
    """``fake_unit``, but making the first unit again fails: a resume must reuse its shard."""
    if task[1] == 1:
        raise AssertionError("the first unit was made again")
    return fake_unit(task)


def fake_plan(seed: int = 3, unit_fn=fake_unit, n_units: int = 7, width: int = 3) -> Plan:
    """Seven units of 1..7 rows (of ``width`` x 2 floats) in three groups, seeded like the real
    generators."""
    plan = Plan(command="test data", arguments={"--seed": seed}, seed=seed, unit_fn=unit_fn, units=[],
                unit_rows=[], unit_group=[], group_names=["a", "b", "c"], noun="rows", default_chunk_rows=5,
                attrs={"kind": "test"})
    for index in range(n_units):
        group = index % 3
        plan.units.append((group, index + 1, task_seed(seed, 9, group, index), width))
        plan.unit_rows.append(index + 1)
        plan.unit_group.append("abc"[group])
    return plan


def arrays(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {name: f[name][...] for name in f}


def assert_same_file(a: Path, b: Path) -> None:
    """Datasets byte for byte (dtype, shape, values) and attributes equal."""
    first, second = arrays(a), arrays(b)
    assert set(first) == set(second)
    for name in first:
        assert first[name].dtype == second[name].dtype and first[name].tobytes() == second[name].tobytes(), name
    assert read_attrs(a) == read_attrs(b)


def test_chunks_are_whole_consecutive_units():
    rows = [200, 200, 50, 200, 200, 10]
    assert chunk_units(rows, 400) == [[0, 1], [2, 3], [4, 5]]
    assert chunk_units(rows, 249) == [[0], [1], [2], [3], [4, 5]]
    assert chunk_units(rows, 1) == [[0], [1], [2], [3], [4], [5]]
    assert chunk_units(rows, 10**9) == [list(range(6))]
    assert chunk_units([20] * 5, 200) == [[0, 1, 2, 3, 4]]  # small units share the default chunk


@pytest.mark.parametrize("chunk_size, workers", [(1, 1), (4, 1), (None, 1), (10**6, 1), (3, 2)])
def test_result_does_not_depend_on_chunks_or_workers(tmp_path, chunk_size, workers):
    """One chunk for everything (unchunked) and every chunking, in this process or on a local
    Dask cluster, give the same file; the rows are shuffled with the seed and the events summed."""
    reference = generate(tmp_path / "one.h5", fake_plan(), workers=1, scheduler=None, chunk_size=10**6, force=False)
    out = generate(tmp_path / "x.h5", fake_plan(), workers=workers, scheduler=None, chunk_size=chunk_size,
                   force=False)
    assert_same_file(reference, out)
    assert not parts_path(out).exists()
    data, attrs = arrays(out), read_attrs(out)
    assert len(data["labels"]) == 28 and np.bincount(data["labels"]).tolist() == [1 + 4 + 7, 2 + 5, 3 + 6]
    assert (np.diff(data["labels"]) != 0).sum() > 5  # shuffled, not in unit order
    assert set(attrs["events_generated"]) == {"a", "b", "c"} and attrs["kind"] == "test"


def test_a_failed_run_keeps_its_shards_and_the_rerun_finishes_identically(tmp_path, caplog):
    """A unit fails half-way: the finished chunks stay in OUT.parts (nothing at OUT); the rerun
    reuses them, makes only the rest, and gives the file a clean run gives."""
    out = tmp_path / "x.h5"
    with pytest.raises(RuntimeError, match="second unit failed"):
        generate(out, fake_plan(unit_fn=failing_unit), workers=1, scheduler=None, chunk_size=1, force=False)
    kept = sorted(p.name for p in parts_path(out).glob("chunk-*.h5"))
    assert kept == ["chunk-00000.h5"] and not out.exists()  # the first unit done, the second failed
    with caplog.at_level("INFO", logger="trigger"):
        generate(out, fake_plan(unit_fn=first_unit_forbidden), workers=1, scheduler=None, chunk_size=1, force=False)
    assert "resuming: 1 of 7 chunks" in caplog.text
    assert_same_file(generate(tmp_path / "clean.h5", fake_plan(), workers=1, scheduler=None, chunk_size=None,
                              force=False), out)
    assert not parts_path(out).exists()


def test_progress_counts_rows_over_chunks_from_the_resumed_ones(tmp_path, monkeypatch, capsys):
    """A live bar (as on a terminal) counts rows as chunks finish, with a rate and the time left, and
    a resumed run starts it at the rows already made."""
    out = tmp_path / "x.h5"
    with pytest.raises(RuntimeError):
        generate(out, fake_plan(unit_fn=failing_unit), workers=1, scheduler=None, chunk_size=1, force=False)
    capsys.readouterr()
    monkeypatch.setenv("TRIGGER_PROGRESS", "1")
    generate(out, fake_plan(), workers=1, scheduler=None, chunk_size=1, force=False)
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert "rows:   4%" in bar and " 1/28 [" in bar and "28/28 [" in bar, bar  # 1 row was kept
    assert "row/s]" in bar or "s/row]" in bar, bar


def test_a_damaged_shard_is_made_again(tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(RuntimeError):
        generate(out, fake_plan(unit_fn=failing_unit), workers=1, scheduler=None, chunk_size=1, force=False)
    (parts_path(out) / "chunk-00000.h5").write_bytes(b"not hdf5")
    (parts_path(out) / ".chunk-00003.h5.abc.tmp").write_bytes(b"a temporary of a killed run")
    generate(out, fake_plan(), workers=1, scheduler=None, chunk_size=1, force=False)
    assert_same_file(generate(tmp_path / "clean.h5", fake_plan(), workers=1, scheduler=None, chunk_size=None,
                              force=False), out)


def test_a_disk_too_full_for_the_merge_keeps_the_shards(tmp_path):
    """The merge reserves the file's size before HDF5 writes: on a disk too small for it, one line
    (no HDF5 error pages), nothing at OUT, the shards kept; with space made, the rerun only merges."""
    from tests.test_faults import small_fs

    with small_fs(tmp_path / "fs", "1m") as fs:
        out = fs / "x.h5"
        plan = fake_plan(width=2000)  # 16 kB a row: 450 kB of shards, the reservation needs 1.5 MB
        with pytest.raises(TriggerError) as failure:
            generate(out, plan, workers=1, scheduler=None, chunk_size=None, force=False)
        line = str(failure.value)
        assert f"cannot write {out}: no space left on device" in line and "28 generated rows are kept" in line, line
        assert "\n" not in line and not out.exists()
        assert sorted(p.name for p in parts_path(out).iterdir()) == [
            *(f"chunk-{k:05d}.h5" for k in range(6)), "lock", "manifest.json"]  # chunks of at most 5 rows
        subprocess.run(["mount", "-o", "remount,size=4m", str(fs)], check=True)
        generate(out, fake_plan(width=2000, unit_fn=first_unit_forbidden), workers=1, scheduler=None, chunk_size=None,
                 force=False)
        assert_same_file(generate(tmp_path / "clean.h5", fake_plan(width=2000), workers=1, scheduler=None,
                                  chunk_size=None, force=False), out)
        assert sorted(p.name for p in fs.iterdir()) == ["x.h5"]


def test_other_settings_on_the_same_parts_are_refused(tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(RuntimeError):
        generate(out, fake_plan(unit_fn=failing_unit), workers=1, scheduler=None, chunk_size=1, force=False)
    for plan, chunk_size in ((fake_plan(seed=4), 1), (fake_plan(), 2)):
        with pytest.raises(TriggerError, match="holds the unfinished chunks of `test data --seed 3 --chunk-size 1`"):
            generate(out, plan, workers=1, scheduler=None, chunk_size=chunk_size, force=False)
    assert [p.name for p in parts_path(out).glob("chunk-*.h5")] == ["chunk-00000.h5"]  # untouched


def test_mismatching_resume_is_one_line_exit_2(tmp_path):
    """`trigger data jets` on an OUT.parts left by another command: one line, exit 2, before any event
    is generated; the other command's shards are left alone."""
    out = tmp_path / "jets.h5"
    parts = parts_path(out)
    parts.mkdir()
    other = manifest_of(fake_plan(), None, 7)
    other.update(command="trigger data jets", arguments={"--n-per-class": 300, "--particles": 16,
                                                         "--image-size": 16, "--seed": 42})
    (parts / "manifest.json").write_text(json.dumps(other))
    (parts / "chunk-00000.h5").write_bytes(b"someone's shard")
    start = time.time()
    res = run_cli("data", "jets", "--n-per-class", "20", "--out", out, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("[trigger] ")]
    assert len(lines) == 1 and lines[0] == (
        f"trigger: error: {parts} holds the unfinished chunks of `trigger data jets --n-per-class 300 --particles 16 "
        "--image-size 16 --seed 42`, not of `trigger data jets --n-per-class 20 --particles 16 --image-size 16 "
        f"--seed 42`; rerun that command to finish them, or remove {parts} to start this one"), res.stderr
    assert time.time() - start < 30 and not out.exists() and "kept" not in res.stderr
    assert (parts / "chunk-00000.h5").read_bytes() == b"someone's shard"


def test_a_foreign_parts_folder_without_shards_is_not_removed(tmp_path):
    out = tmp_path / "x.h5"
    parts_path(out).mkdir()
    (parts_path(out) / "manifest.json").write_text(json.dumps(manifest_of(fake_plan(seed=4), None, 6)))
    with pytest.raises(TriggerError, match="holds the unfinished chunks of `test data --seed 4`"):
        generate(out, fake_plan(), workers=1, scheduler=None, chunk_size=None, force=False)
    assert (parts_path(out) / "manifest.json").is_file()


def test_a_file_where_the_parts_folder_goes_is_one_line(tmp_path):
    out = tmp_path / "x.h5"
    parts_path(out).write_text("not a folder")
    with pytest.raises(TriggerError, match=f"cannot keep this run's chunks in {parts_path(out)}"):
        generate(out, fake_plan(), workers=1, scheduler=None, chunk_size=None, force=False)
    assert parts_path(out).read_text() == "not a folder" and not out.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "exclude each other"),
    ({"workers": 0}, "--workers"),
    ({"chunk_size": 0}, "--chunk-size"),
])
def test_bad_execution_arguments_are_one_line(tmp_path, kwargs, message):
    with pytest.raises(TriggerError, match=message):
        generate_jets(tmp_path / "x.h5", n_per_class=2, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # no Pythia, but it waits out the 10 s connection timeout
def test_an_unreachable_scheduler_is_one_line(tmp_path):
    port = free_local_port()
    res = run_cli("data", "ad", "--n-background", "10", "--n-signal", "2", "--scheduler", f"tcp://127.0.0.1:{port}",
                  "--out", tmp_path / "ad.h5", timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("[trigger] ")]
    assert len(lines) == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in lines[0], lines
    assert not (tmp_path / "ad.h5").exists() and not parts_path(tmp_path / "ad.h5").exists()


# --- the real command ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference_jets(tmp_path_factory) -> Path:
    """12 jets per class in this process, in one chunk: what every other way must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "jets.h5"
    return generate_jets(out, n_per_class=12, n_particles=8, image_size=8, seed=7, chunk_size=10**6)


def _wait_for_shards(parts: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and len(list(parts.glob("chunk-*.h5"))) < n:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    assert len(list(parts.glob("chunk-*.h5"))) >= n


@pytest.mark.slow
def test_killed_twice_then_resumed_gives_the_identical_file(tmp_path, reference_jets):
    """SIGTERM after the first shard (exit 143, the shards kept), SIGKILL after the next (no clean-up
    at all), then the same command finishes: the file is the one a single uninterrupted run makes."""
    out = tmp_path / "jets.h5"
    parts = parts_path(out)
    command = [sys.executable, "-m", "trigger", "data", "jets", *JETS_ARGS, "--chunk-size", "1", "--out", str(out)]
    proc = subprocess.Popen(command, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_shards(parts, 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "trigger: terminated by SIGTERM" in err and f"finished chunks in {parts}" in err, err
    first = len(list(parts.glob("chunk-*.h5")))
    # 5 chunks in all (one unit of 12 jets per class at --chunk-size 1): the stop came mid-way
    assert 1 <= first < 5, f"{first} of 5 shards when SIGTERM arrived"
    assert not out.exists()

    proc = subprocess.Popen(command, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_shards(parts, first + 1, proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert not out.exists() and len(list(parts.glob("chunk-*.h5"))) > first

    res = run_cli(*command[3:], timeout=300)
    assert res.returncode == 0, res.stderr
    assert "resuming:" in res.stderr
    assert_same_file(reference_jets, out)
    assert not parts.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_two_local_workers_small_chunks_give_the_same_file(tmp_path, reference_jets):
    res = run_cli("data", "jets", *JETS_ARGS, "--workers", "2", "--chunk-size", "1", "--out", tmp_path / "j.h5")
    assert res.returncode == 0, res.stderr
    assert_same_file(reference_jets, tmp_path / "j.h5")


@pytest.mark.slow
def test_generation_through_a_dask_scheduler_and_worker_processes(tmp_path, reference_jets):
    with dask_processes(n_workers=2, cwd=REPO) as address:
        res = run_cli("data", "jets", *JETS_ARGS, "--scheduler", address, "--chunk-size", "1",
                      "--out", tmp_path / "j.h5", timeout=300)
    assert res.returncode == 0, res.stderr
    assert_same_file(reference_jets, tmp_path / "j.h5")
    assert not parts_path(tmp_path / "j.h5").exists()
