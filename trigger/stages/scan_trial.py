"""One trial of `trigger scan`, as a Dask worker runs it: train the student distilled from the scan's
teacher (quantization-aware pruning), `trigger synth`'s conversion, C simulation and estimate (and
the vendor build where the tool is on the worker's PATH), then a :class:`TrialRecord`.

A trial that fails (a diverged training, a conversion the converter refuses, any error) becomes a
``failed`` record carrying the one-line error; it never stops the scan.

Each trial runs in a fresh Python process of its own (``python -m trigger.stages.scan_trial``),
started by the worker: a long-lived worker would keep every trial's TensorFlow graphs and the C
simulation libraries it loads (measured: 11.5 GB resident after 8 CNN trials, and a worker lost),
while a process per trial returns all of it, reports its peak memory, and turns a crash (a
segmentation fault, the kernel's out-of-memory kill) into a failed record instead of a lost worker.
Its output goes to ``trials/<id>/trial.log``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trigger.config import resolve_repo_path
from trigger.contracts import FirmwareReport
from trigger.firmware.synth import sized_resources
from trigger.firmware.vendor import find_tool
from trigger.errors import TriggerError
from trigger.runtime import atomic_path, jsonable, run_main, setup_logging
from trigger.scan.config import BaseConfigs, ScanConfig, trial_configs
from trigger.scan.results import TrialRecord, trial_dir

#: how a trial whose student collapsed (one output for every event) fails: a result of its
#: parameters, which the scan's fail-fast rule does not count
COLLAPSED = "the student gives every test event the same output"


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs for one trial (paths absolute). It reaches the trial's process as
    JSON data (:meth:`to_json` / :meth:`from_json`), never as a pickle: reading it runs no code.
    ``trust``: the scan's model files may carry code (``--trust-model``)."""

    scan: ScanConfig
    base: BaseConfigs
    scan_dir: Path
    number: int
    values: dict[str, Any]
    data: Path
    seed: int
    trust: bool = False

    def to_json(self) -> str:
        """The spec as JSON (configs as their validated JSON form, paths as strings)."""
        return json.dumps({"scan": self.scan.model_dump(mode="json"), "base": self.base.model_dump(mode="json"),
                           "scan_dir": str(self.scan_dir), "number": self.number, "values": jsonable(self.values),
                           "data": str(self.data), "seed": self.seed, "trust": self.trust})

    @classmethod
    def from_json(cls, text: str) -> "TrialSpec":
        """The spec written by :meth:`to_json`, its configs validated again."""
        raw = json.loads(text)
        return cls(scan=ScanConfig.model_validate(raw["scan"]), base=BaseConfigs.model_validate(raw["base"]),
                   scan_dir=Path(raw["scan_dir"]), number=int(raw["number"]), values=dict(raw["values"]),
                   data=Path(raw["data"]), seed=int(raw["seed"]), trust=bool(raw["trust"]))


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # not inside a Dask worker (a direct call)
        return f"{socket.gethostname()}:{os.getpid()}"


def run_trial(spec: TrialSpec) -> TrialRecord:
    """Train, convert, simulate and estimate one student in a process of its own; never raises for a
    failing trial."""
    t0 = time.perf_counter()
    common = {"number": spec.number, "params": spec.values, "seed": spec.seed, "worker": _worker_name()}
    fields, peak_mb = _in_own_process(spec)
    return TrialRecord.build(**common, **fields, peak_rss_mb=peak_mb, wall_s=round(time.perf_counter() - t0, 2))


def _in_own_process(spec: TrialSpec) -> tuple[dict[str, Any], float | None]:
    """Run :func:`trial_fields` in ``python -m trigger.stages.scan_trial``; its fields and peak
    resident memory in MB."""
    folder = trial_dir(spec.scan_dir, spec.number)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_partial_outputs(folder)
    spec_file, result_file = folder / ".spec.json", folder / ".fields.json"
    result_file.unlink(missing_ok=True)
    with atomic_path(spec_file, force=True) as tmp:
        tmp.write_text(spec.to_json())
    with open(folder / "trial.log", "wb") as log_file:
        child = subprocess.Popen([sys.executable, "-m", "trigger.stages.scan_trial", str(spec_file),
                                  str(result_file), str(os.getpid())], stdout=log_file,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = round(usage.ru_maxrss / 1024.0, 1)  # Linux: kilobytes
    spec_file.unlink(missing_ok=True)
    if child.returncode == 0 and result_file.is_file():
        fields = json.loads(result_file.read_text())
        result_file.unlink()
        return fields, peak_mb
    return {"status": "failed", "error": _died(child.returncode, peak_mb, folder / "trial.log")}, peak_mb


def _remove_partial_outputs(folder: Path) -> None:
    """Remove what an earlier attempt of this trial left half-written (the temporaries of
    :func:`trigger.runtime.atomic_path`: a process killed with SIGKILL, by the out-of-memory killer or
    with its stopped scan, cannot clean up after itself). The folder is this trial's alone."""
    for stale in sorted(folder.rglob(".*.tmp")):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _died(code: int, peak_mb: float, log: Path) -> str:
    """One line for a trial process that ended without its result."""
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (most likely the out-of-memory killer)" if name == "SIGKILL" else ""
        return f"the trial's process was killed by {name}{hint} at {peak_mb:.0f} MB resident; see {log}"
    return f"the trial's process exited with status {code} and no result; see {log}"


def trial_fields(spec: TrialSpec) -> dict[str, Any]:
    """The record's fields of one trial: the result, or ``failed`` with the one-line error."""
    try:
        return _train_and_synthesize(spec)
    except TriggerError as exc:
        return {"status": "failed", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any error of one trial is that trial's result
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}


def _die_with_parent(parent: int) -> None:
    """Linux: this process is killed when the worker that started it (pid ``parent``) dies (a
    stopped scan leaves no trial running)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the trial ends on its own
        return
    if os.getppid() != parent:  # the worker died before the line above (this process was re-parented)
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    """``python -m trigger.stages.scan_trial SPEC RESULT PARENT_PID``: one trial, its fields written
    to RESULT."""
    spec_file, result_file, parent = (argv or sys.argv[1:])[:3]
    _die_with_parent(int(parent))
    setup_logging()  # the stages' progress lines, into trial.log

    def run() -> None:
        fields = trial_fields(TrialSpec.from_json(Path(spec_file).read_text()))
        with atomic_path(Path(result_file), force=True) as tmp:
            tmp.write_text(json.dumps(jsonable(fields)))

    # a failed write of the result is one line in trial.log; a stopped scan's SIGTERM cleans up
    return run_main("scan trial", run)


def _train_and_synthesize(spec: TrialSpec) -> dict[str, Any]:
    from trigger.stages.synth import synthesize
    from trigger.stages.train import train

    model_cfg, synth_cfg = trial_configs(spec.scan, spec.base, spec.values, source=f"scan trial {spec.number}")
    folder = trial_dir(spec.scan_dir, spec.number)
    run = train(model_cfg, data=spec.data, out=folder / "model", force=True,
                teacher=resolve_repo_path(spec.scan.teacher), trust=spec.trust)
    if run.student_constant:  # its tiny firmware would sit on the front with no physics in it
        metric = metric_fields(run.metrics)
        raise TriggerError(f"{COLLAPSED} ({metric['metric_name']} "
                           f"{metric['metric']:.4g}): its training collapsed; no firmware built")
    student = folder / "model" / "model.h5"
    vendor_build = find_tool(synth_cfg.backend) is not None  # this worker's PATH decides
    firmware = synthesize(student, config=synth_cfg, data=spec.data, teacher=folder / "model" / "teacher.h5",
                          out=folder / "firmware", force=True, seed=spec.seed, calibration=spec.scan.calibration,
                          build=vendor_build, trust=spec.trust)
    return {"status": "complete", **metric_fields(run.metrics), "bops": run.metrics["bops"]["student"],
            **firmware_fields(firmware.report),  # paths relative to the scan folder, which may move (git)
            "student": student.relative_to(spec.scan_dir).as_posix(),
            "report": (folder / "firmware" / "report.json").relative_to(spec.scan_dir).as_posix()}


def metric_fields(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scan's metric from a training's metrics.json: accuracy for a tagger, mean AUC for the
    anomaly trigger (the teacher's beside it)."""
    name = "accuracy" if metrics["task"] == "classification" else "mean_auc"
    return {"metric_name": name, "metric": metrics["student"][name], "teacher_metric": metrics["teacher"][name]}


def firmware_fields(report: FirmwareReport) -> dict[str, Any]:
    """Latency, resources, budget verdict and C-simulation exactness from a firmware report; the
    resources are the ones a design is sized on (:func:`trigger.firmware.synth.sized_resources`)."""
    lat, budget, csim = report.latency, report.budget, report.csim
    res, source = sized_resources(report)
    exact = None
    if csim is not None:
        exact = csim.output.bit_exact_fraction if csim.output is not None else csim.bit_exact_fraction
    return {"latency_cycles": lat.max_cycles, "latency_ns": lat.ns, "interval": lat.interval,
            "DSP": res.DSP, "LUT": res.LUT, "FF": res.FF, "BRAM_18K": res.BRAM_18K, "figures_source": source,
            "fits_budget": budget.fits if budget is not None else None,
            "budget_verdict": budget.verdict if budget is not None else None,
            "budget_note": budget.note if budget is not None else None, "csim_bit_exact": exact}


if __name__ == "__main__":
    raise SystemExit(main())
