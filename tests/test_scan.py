"""`trigger scan`: config validation, the Pareto front, and end-to-end scans on CI-sized data with two
local Dask workers, against a `dask scheduler` + `dask worker` started here, and killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli
from trigger.errors import TriggerError
from trigger.executor import dask_processes
from trigger.scan.config import load_scan_config, read_base
from trigger.scan.results import TrialRecord, pareto_front
from trigger.scan.space import batch_seed, grid

#: A small jets file (the scan checks its data file before any trial).
CHECK_SAMPLE = REPO / "models" / "jet_mlp" / "check_sample.h5"
SPACE = {"student.architecture.hidden": {"choices": [[8], [16, 8]]},
         "student.quantization.weight_bits": {"low": 3, "high": 8},
         "student.pruning.sparsity": {"low": 0.0, "high": 0.8, "step": 0.1},
         "synth.reuse": {"choices": [1, 2]}}


def scan_config(tmp_path: Path, teacher: Path | str = "models/jet_mlp/teacher.h5", **changes) -> Path:
    """A small jet-MLP scan config (2-epoch students, 100 csim events) written into ``tmp_path``."""
    raw = {"name": "ci", "model": "configs/jet_mlp.yaml", "synth": "configs/synth/vitis_latency.yaml",
           "teacher": str(teacher), "seed": 3, "csim_events": 100,
           "search": {"sampler": "nsga2", "trials": 4, "batch": 2},
           "fixed": {"student.train.epochs": 2, "student.train.batch_size": 64},
           "space": SPACE, **changes}
    path = tmp_path / "scan.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# --- fast: validation, the front, the sampler seeds ------------------------------------------------

def test_shipped_scan_configs_load():
    names = sorted(p.stem for p in (REPO / "configs" / "scan").glob("*.yaml"))
    assert names == ["ad_autoencoder", "jet_cnn", "jet_gnn", "jet_mlp"]
    for name in names:
        scan = load_scan_config(REPO / "configs" / "scan" / f"{name}.yaml")
        assert scan.space and scan.search.trials >= 60
    probes = sorted((REPO / "configs" / "scan" / "probes").glob("*.yaml"))  # one-point grids (docs/scan.md)
    for path in probes:
        scan = load_scan_config(path)
        assert scan.search.sampler == "grid" and scan.search.trials == 1


def test_benchmark_smoke_config_is_the_ci_scan(tmp_path):
    """benchmarks/bench_scan.py times configs/bench/scan_smoke.yaml: the CI scan's space and sizes."""
    bench = load_scan_config(REPO / "configs" / "bench" / "scan_smoke.yaml")
    assert bench.space == load_scan_config(scan_config(tmp_path)).space
    assert bench.search.trials == 4 and bench.csim_events == 100
    assert bench.fixed == {"student.train.epochs": 2, "student.train.batch_size": 64}


@pytest.mark.parametrize("space, says", [
    ({"student.architecture.widths": {"choices": [[8]]}}, "space key 'student.architecture.widths'"),
    ({"synth.reuse_factor": {"choices": [1]}}, "space key 'synth.reuse_factor'"),
    ({"student.quantization.weight_bits": {"low": 8, "high": 3}}, "empty range: low 8 > high 3"),
    ({"student.quantization.weight_bits": {"choices": []}}, "space.student.quantization.weight_bits.choices"),
    ({"student.quantization.weight_bits": {"low": 1, "high": 8}}, "space key 'student.quantization.weight_bits'"),
])
def test_bad_space_is_one_line_and_exit_2(tmp_path, space, says):
    config = scan_config(tmp_path, space=space)
    proc = run_cli("scan", config, "--data", tmp_path / "none.h5", "--out", tmp_path / "scan")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and says in lines[0], lines
    assert not (tmp_path / "scan").exists()


def test_grid_needs_choices_or_a_step(tmp_path):
    config = scan_config(tmp_path, search={"sampler": "grid", "trials": 2},
                         space={"student.distillation.temperature": {"low": 1.0, "high": 4.0}})
    with pytest.raises(TriggerError, match="grid sampler needs 'choices' or a 'step'"):
        load_scan_config(config)


def test_grid_values_and_batch_seeds():
    scan = load_scan_config(REPO / "configs" / "scan" / "jet_mlp.yaml")
    assert grid(scan.space["student.pruning.sparsity"])[:3] == [0.0, 0.05, 0.1]
    assert grid(scan.space["student.architecture.hidden"])[0] == "[16, 16]"
    assert batch_seed(1, 0) == batch_seed(1, 0) != batch_seed(1, 1)


def _record(n, metric, lut, dsp=0, latency=50.0, fits=True, status="complete"):
    return TrialRecord.build(number=n, status=status, params={}, metric=metric, LUT=lut, DSP=dsp,
                             latency_ns=latency, fits_budget=fits)


def test_pareto_front_keeps_only_non_dominated_trials_in_budget():
    records = [_record(0, 0.70, 1000), _record(1, 0.65, 500), _record(2, 0.60, 800),  # 2: dominated by 1
               _record(3, 0.75, 100, fits=False), _record(4, 0.66, 400, dsp=20),    # 4: 400 + 55*20 = 1500
               _record(5, 0.62, 450, latency=30.0), _record(6, 0.99, 1, status="failed")]
    assert [r.number for r in pareto_front(records)] == [0, 1, 5]


def test_a_batch_told_after_a_resume_stores_its_budget_constraint(tmp_path):
    """NSGA-II ranks trials on the budget constraint its sampler stores when a trial is told. A
    resumed scan tells the interrupted batch to a freshly opened study, whose sampler is Optuna's
    default; the batch's own sampler must be set first, or the constraint is never stored."""
    from trigger.stages.scan import _ask_batch, _open_study, _tell_batch, prepare_scan

    config, data, out = scan_config(tmp_path), tmp_path / "jets.h5", tmp_path / "scan"
    data.write_bytes(CHECK_SAMPLE.read_bytes())  # prepare_scan reads the data file
    scan, manifest, _ = prepare_scan(config, data=data, out=out)
    records: dict = {}
    numbers = [number for number, _ in _ask_batch(_open_study(out, scan, manifest), scan, 2, records)]
    records.update({n: _record(n, 0.6, 1000, fits=fits) for n, fits in zip(numbers, (True, False))})
    resumed = _open_study(out, scan, manifest)  # the run was killed after the batch had finished
    _tell_batch(resumed, scan, numbers, records)
    assert [t.system_attrs.get("constraints") for t in resumed.get_trials()] == [[0.0], [1.0]]


def test_a_grid_scan_ends_when_its_grid_is_exhausted(tmp_path):
    """Optuna's GridSampler stops the study when its last point is told, which raises under
    ask-and-tell (optuna/optuna#5141): the scan tells its last batch without that error and never
    asks for more trials than the grid has points (Optuna would propose them again)."""
    from trigger.stages.scan import _ask_batch, _open_study, _tell_batch, prepare_scan, target_trials

    config = scan_config(tmp_path, search={"sampler": "grid", "trials": 5, "batch": 2},
                         space={"synth.strategy": {"choices": ["Latency", "Resource"]}})
    data, out = tmp_path / "jets.h5", tmp_path / "scan"
    data.write_bytes(CHECK_SAMPLE.read_bytes())  # prepare_scan reads the data file
    scan, manifest, _ = prepare_scan(config, data=data, out=out)
    assert target_trials(scan) == 2
    study = _open_study(out, scan, manifest)
    asked = _ask_batch(study, scan, target_trials(scan), {})
    assert sorted(values["synth.strategy"] for _, values in asked) == ["Latency", "Resource"]
    records = {n: _record(n, 0.6, 1000) for n, _ in asked}
    _tell_batch(study, scan, [n for n, _ in asked], records)
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "COMPLETE"]


def test_the_reference_is_drawn_with_the_figures_the_trials_record(tmp_path):
    """The trials record resources after logic synthesis; the reference student's mark uses the same
    figures from its summary.json (``sized``), and the headline ones only from an older summary."""
    from trigger.stages.scan_report import reference_record

    summary = {"metric": "accuracy", "student": 0.58, "teacher": 0.61, "latency_ns": 55.0,
               "DSP": 0, "LUT": 665_426, "FF": 101_510, "BRAM_18K": 0}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    scan = load_scan_config(scan_config(tmp_path, reference={"model_dir": str(tmp_path)}))
    assert reference_record(scan).LUT == 665_426
    sized = {"DSP": 0, "LUT": 342_628, "FF": 92_232, "BRAM_18K": 0, "source": "estimate, after logic synthesis"}
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "sized": sized}))
    assert (reference_record(scan).LUT, reference_record(scan).FF) == (342_628, 92_232)


def test_plots_mark_the_front_and_the_best_at_each_resource(tmp_path):
    from trigger.scan.plots import Marks, best_at_most, bits_sparsity_plot, pareto_plot

    assert best_at_most([(500, 0.65), (100, 0.60), (800, 0.62), (1000, 0.70)]) == [
        (100, 0.60), (500, 0.65), (800, 0.65), (1000, 0.70)]
    records = [_record(0, 0.70, 1000), _record(1, 0.65, 500), _record(3, 0.75, 100, fits=False),
               _record(4, 0.66, 400, dsp=20), _record(6, 0.99, 1, status="failed")]
    for r in records:
        r.params.update({"student.quantization.weight_bits": 6, "student.pruning.sparsity": 0.5})
    marks = Marks("accuracy", latency_budget_ns=100.0, part_totals={"LUT": 1_728_000, "DSP": 12_288},
                  teacher_metric=0.72)
    for path in (pareto_plot(records, marks, tmp_path / "pareto.png"),
                 bits_sparsity_plot(records, "student.quantization.weight_bits", "student.pruning.sparsity",
                                    "accuracy", tmp_path / "bits.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_trial_runs_in_its_own_process_and_a_failure_is_one_line(tmp_path):
    """The trial's process reports its error and peak memory; a process killed by a signal becomes a
    failed record naming the signal (the worker survives)."""
    from trigger.stages.scan_trial import TrialSpec, _died, run_trial

    scan = load_scan_config(scan_config(tmp_path))
    spec = TrialSpec(scan, read_base(scan), tmp_path / "out", 3, {"student.pruning.sparsity": 0.5},
                     tmp_path / "missing.h5", 7)
    killed_attempt = tmp_path / "out" / "trials" / "0003"  # what a SIGKILLed attempt left half-written
    (killed_attempt / ".firmware.x1.tmp" / "hls").mkdir(parents=True)
    (killed_attempt / "model").mkdir()
    (killed_attempt / "model" / ".metrics.json.x2.tmp").write_text("{")
    record = run_trial(spec)
    assert not list(killed_attempt.rglob("*.tmp"))
    assert record.status == "failed" and "missing.h5" in record.error and "\n" not in record.error
    assert record.peak_rss_mb > 10 and record.number == 3 and record.seed == 7
    assert (tmp_path / "out" / "trials" / "0003" / "trial.log").is_file()
    assert not list((tmp_path / "out" / "trials" / "0003").glob(".spec*"))
    line = _died(-9, 11800.0, Path("trials/0003/trial.log"))
    assert line.startswith("the trial's process was killed by SIGKILL (most likely the out-of-memory killer)")
    assert "11800 MB" in line and "\n" not in line


def test_a_student_that_collapsed_is_a_failed_trial_without_firmware(tmp_path, monkeypatch):
    """A student with the same output for every event (3-bit weights all rounded to zero) is recorded
    as failed with one line, so that its tiny firmware never joins the Pareto front."""
    import importlib

    from trigger.stages.scan_trial import TrialSpec, trial_fields
    from trigger.stages.train import TrainResult

    metrics = {"task": "classification", "student": {"accuracy": 0.2}, "teacher": {"accuracy": 0.66}}
    stage = importlib.import_module  # the modules (trigger.stages exports functions of the same names)
    monkeypatch.setattr(stage("trigger.stages.train"), "train", lambda *a, **k: TrainResult(tmp_path, metrics, True))
    monkeypatch.setattr(stage("trigger.stages.synth"), "synthesize", lambda *a, **k: pytest.fail("firmware built"))
    scan = load_scan_config(scan_config(tmp_path))
    spec = TrialSpec(scan, read_base(scan), tmp_path / "out", 0, {"student.quantization.weight_bits": 3},
                     tmp_path / "jets.h5", 1)
    fields = trial_fields(spec)
    assert fields["status"] == "failed" and "\n" not in fields["error"], fields
    assert fields["error"].startswith("the student gives every test event the same output (accuracy 0.2)")


def test_a_resumed_scan_keeps_the_base_configs_it_started_with(tmp_path, caplog, monkeypatch):
    """The base model config changes between two runs (a promoted student rewrites it): the resumed
    scan builds its trials from the copy in scan.json and says so; a manifest from before the copy
    was recorded (schema 1) is given today's configs once."""
    from trigger.runtime import log
    from trigger.scan.config import load_scan
    from trigger.stages.scan import _open_study, prepare_scan

    model = tmp_path / "jet_mlp.yaml"
    model.write_text((REPO / "configs" / "jet_mlp.yaml").read_text())
    config, data, out = scan_config(tmp_path, model=str(model)), tmp_path / "jets.h5", tmp_path / "scan"
    data.write_bytes(CHECK_SAMPLE.read_bytes())  # prepare_scan reads the data file
    scan, started, _ = prepare_scan(config, data=data, out=out)
    _open_study(out, scan, started)
    raw = yaml.safe_load(model.read_text())
    raw["train"]["epochs"] = 99
    model.write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(log, "propagate", True)
    with caplog.at_level("WARNING", logger="trigger"):
        _, resumed, _ = prepare_scan(config, data=data, out=out)
    assert resumed.base == started.base == load_scan(out).base and resumed.base.model.train.epochs == 30
    assert f"{model} changed since this scan started" in caplog.text

    legacy = json.loads((out / "scan.json").read_text())
    del legacy["base"], legacy["schema_version"]
    (out / "scan.json").write_text(json.dumps(legacy))
    scan, upgraded, _ = prepare_scan(config, data=data, out=out)
    assert upgraded.base.model.train.epochs == 99
    _open_study(out, scan, upgraded)
    assert json.loads((out / "scan.json").read_text())["base"]["model"]["train"]["epochs"] == 99


# --- slow: end to end ----------------------------------------------------------------------------

def _params(scan_dir: Path) -> list[dict]:
    records = sorted((json.loads(p.read_text()) for p in scan_dir.glob("trials/*/trial.json")),
                     key=lambda r: r["number"])
    return [r["params"] for r in records]


def _stored_constraints(scan_dir: Path) -> list:
    """The budget constraint the sampler stored in the study for each told trial (None: not stored)."""
    import optuna

    study = optuna.load_study(study_name="ci", storage=f"sqlite:///{scan_dir / 'study.db'}")
    return [t.system_attrs.get("constraints") for t in study.get_trials()]


@pytest.fixture(scope="module")
def local_scan(runs, jets_file, tmp_path_factory):
    """A 4-trial scan with 2 local Dask workers (the shared fixture of the end-to-end tests)."""
    tmp = tmp_path_factory.mktemp("scan")
    config = scan_config(tmp, teacher=runs("jet_mlp").out / "teacher.h5")
    proc = run_cli("scan", config, "--data", jets_file, "--out", tmp / "out", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, tmp / "out", proc


@pytest.mark.slow
def test_scan_end_to_end_with_two_local_workers(local_scan, tmp_path):
    config, out, proc = local_scan
    assert "4 trials in" in proc.stdout
    records = [json.loads(p.read_text()) for p in sorted(out.glob("trials/*/trial.json"))]
    assert [r["number"] for r in records] == [0, 1, 2, 3]
    assert len({r["worker"] for r in records}) == 2  # both workers ran trials
    for r in records:
        assert r["status"] == "complete", r["error"]
        assert r["csim_bit_exact"] == 1.0 and r["LUT"] > 0 and r["latency_ns"] > 0 and r["metric"] > 0.2
        assert r["bops"] > 0  # the student's bit operations, from its IR
        assert r["student"] == f"trials/{r['number']:04d}/model/model.h5"  # relative: the folder may move
        assert (out / r["student"]).is_file() and (out / r["report"]).is_file()
        assert (out / "trials" / f"{r['number']:04d}" / "firmware" / "report.json").is_file()
    assert len((out / "trials.csv").read_text().splitlines()) == 5
    report = run_cli("scan", "report", out)
    assert report.returncode == 0, report.stderr
    assert "Pareto front inside the budget" in report.stdout and "| #" in report.stdout
    assert (out / "plots" / "pareto.png").stat().st_size > 10_000
    assert (out / "plots" / "bits_sparsity.png").is_file()
    front = report.stdout.split("| #")[1].split(" |")[0]
    exported = run_cli("scan", "export", out, "--trial", front, "--out", tmp_path / "student")
    assert exported.returncode == 0, exported.stderr
    assert {"model.h5", "teacher.h5", "metrics.json"} <= {p.name for p in (tmp_path / "student").iterdir()}


@pytest.mark.slow
def test_scan_resumes_without_repeating_and_proposes_the_same_trials(local_scan, jets_file, tmp_path):
    config, first, _ = local_scan
    again = tmp_path / "again"
    cmd = [sys.executable, "-m", "trigger", "scan", str(config), "--data", str(jets_file), "--out", str(again),
           "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while not list(again.glob("trials/*/trial.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGTERM)  # one trial finished, the next one in flight
    assert proc.wait(timeout=60) == 143
    done = {p: p.stat().st_mtime_ns for p in again.glob("trials/*/trial.json")}
    assert len(done) == 1
    resumed = run_cli("scan", config, "--data", jets_file, "--out", again, "--workers", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())  # the finished trial was not repeated
    assert _params(again) == _params(first)  # same config and seed: the same proposals
    # the batch told after the resume, too, carries its budget constraint (NSGA-II ranks on it)
    assert _stored_constraints(again) == _stored_constraints(first) and None not in _stored_constraints(first)


@pytest.mark.slow
def test_scan_on_a_scheduler_and_worker_started_here(local_scan, jets_file, tmp_path):
    config, first, _ = local_scan
    with dask_processes(n_workers=1, cwd=REPO) as address:
        proc = run_cli("scan", config, "--data", jets_file, "--out", tmp_path / "remote", "--trials", "2",
                       "--scheduler", address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "remote").glob("trials/*/trial.json"))]
    assert [r["status"] for r in records] == ["complete", "complete"]
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in records)
    assert _params(tmp_path / "remote") == _params(first)[:2]


@pytest.mark.slow
def test_a_trial_runs_the_vendor_build_where_the_tool_is_on_the_path(runs, jets_file, tmp_path):
    """A stand-in `vitis_hls` on the workers' PATH, which leaves the fixture reports of
    tests/data/vendor/mlp_vitis/ in the project (no vendor tool exists here): the trial runs the
    build, and its record carries the vendor's figures, resources after logic synthesis."""
    from trigger.firmware.vendor import find_tool

    if find_tool("Vitis"):
        pytest.skip("Vitis HLS is installed here; the stand-in would not be the tool found first")
    fixture = REPO / "tests" / "data" / "vendor" / "mlp_vitis"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "vitis_hls"
    stand_in.write_text(f"#!/bin/sh\ncp -r '{fixture}/myproject_prj' '{fixture}/vivado_synth.rpt' .\n")
    stand_in.chmod(0o755)
    config = scan_config(tmp_path, teacher=runs("jet_mlp").out / "teacher.h5",
                         search={"sampler": "random", "trials": 1, "batch": 1})
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "trigger", "scan", str(config), "--data", str(jets_file),
                           "--out", str(tmp_path / "out")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "trials" / "0000" / "trial.json").read_text())
    assert record["status"] == "complete", record["error"]
    assert record["figures_source"] == "vendor, after logic synthesis"
    assert (record["LUT"], record["DSP"], record["FF"], record["latency_cycles"]) == (2712, 40, 1206, 7)


def _as_git_keeps_it(scan_dir: Path, dest: Path) -> Path:
    """A copy of ``scan_dir`` with only the files the repository's .gitignore keeps of a scan folder
    (what a fresh clone holds of a committed scan)."""
    import shutil

    root = dest / "clone"
    shutil.copytree(scan_dir, root / "scans" / "kept")
    shutil.copyfile(REPO / ".gitignore", root / ".gitignore")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "scans"],
                            check=True, capture_output=True, text=True).stdout.split()
    kept = {root / name for name in listed}
    for path in sorted((root / "scans").rglob("*"), reverse=True):
        if path.is_file() and path not in kept:
            path.unlink()
    return root / "scans" / "kept"


@pytest.mark.slow
def test_a_scan_folder_as_git_keeps_it_resumes_reports_and_exports(local_scan, jets_file, tmp_path):
    config, first, _ = local_scan
    kept = _as_git_keeps_it(first, tmp_path)
    names = {p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()}
    assert {"scan.json", "study.db", "trials.csv", "trials/0000/trial.json", "trials/0000/model/model.h5",
            "trials/0000/firmware/report.json"} <= names
    assert "trials/0000/model/teacher.h5" not in names and not any(n.endswith(".cpp") for n in names)
    done = {p: p.read_bytes() for p in kept.glob("trials/*/trial.json")}
    resumed = run_cli("scan", config, "--data", jets_file, "--out", kept, "--workers", "1", "--trials", "5")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert all(p.read_bytes() == b for p, b in done.items())  # nothing repeated
    fifth = json.loads((kept / "trials" / "0004" / "trial.json").read_text())
    assert fifth["status"] == "complete", fifth["error"]
    exported = run_cli("scan", "export", kept, "--trial", "0", "--out", tmp_path / "student")
    assert exported.returncode == 0, exported.stderr
    teacher = yaml.safe_load(Path(config).read_text())["teacher"]
    assert (tmp_path / "student" / "teacher.h5").read_bytes() == Path(teacher).read_bytes()


def test_the_first_trials_failing_alike_stop_the_scan_in_one_line():
    """Three finished trials, none complete, one error (trial folders aside): the scan's stop line
    quotes it; a complete trial, two different errors, fewer trials or collapsed students do not stop it."""
    from trigger.stages.scan import systematic_failure
    from trigger.stages.scan_trial import COLLAPSED

    def failed(n: int, error: str) -> TrialRecord:
        return TrialRecord.build(number=n, status="failed", params={}, error=error)

    same = {n: failed(n, f"OSError: cannot write /s/trials/{n:04d}/model: disk full") for n in range(3)}
    line = systematic_failure(same)
    assert line is not None and "\n" not in line
    assert line.startswith("the first 3 trials all failed with the same error, none completed: "
                           "OSError: cannot write /s/trials/*/model: disk full;")
    assert systematic_failure(dict(list(same.items())[:2])) is None
    assert systematic_failure({**same, 3: failed(3, "ValueError: other")}) is None
    complete = TrialRecord.build(number=3, status="complete", params={}, metric_name="accuracy", metric=0.6)
    assert systematic_failure({**same, 3: complete}) is None
    assert systematic_failure({n: failed(n, f"{COLLAPSED} (accuracy 0.2)") for n in range(4)}) is None


def test_a_teacher_of_another_family_is_refused_before_any_trial(tmp_path):
    """The jet CNN's teacher (16x16 images) given to a jet-MLP scan (the 16 features): one line
    naming both shapes, before any trial or folder exists."""
    from trigger.stages.scan import prepare_scan

    config = scan_config(tmp_path, teacher="models/jet_cnn/teacher.h5")
    data = tmp_path / "jets.h5"
    data.write_bytes(CHECK_SAMPLE.read_bytes())
    with pytest.raises(TriggerError) as info:
        prepare_scan(config, data=data, out=tmp_path / "out")
    assert "reads inputs of shape (16, 16, 1), but the students' view 'hlf'" in str(info.value)
    assert "is (16,)" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()
