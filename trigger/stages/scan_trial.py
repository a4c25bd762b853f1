"""One trial of `trigger scan`, as a Dask worker runs it: train the student distilled from the scan's
teacher (quantization-aware pruning), `trigger synth`'s conversion, C simulation and estimate (and
the vendor build where the tool is on the worker's PATH), then a :class:`TrialRecord`.

A trial that fails (a diverged training, a conversion the converter refuses, any error) becomes a
``failed`` record carrying the one-line error; it never stops the scan.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trigger.config import resolve_repo_path
from trigger.contracts import FirmwareReport
from trigger.errors import TriggerError
from trigger.scan.config import ScanConfig, trial_configs
from trigger.scan.results import TrialRecord, trial_dir


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs for one trial (picklable; paths absolute)."""

    scan: ScanConfig
    scan_dir: Path
    number: int
    values: dict[str, Any]
    data: Path
    seed: int


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # not inside a Dask worker (a direct call)
        return f"{socket.gethostname()}:{os.getpid()}"


def run_trial(spec: TrialSpec) -> TrialRecord:
    """Train, convert, simulate and estimate one student; never raises for a failing trial."""
    t0 = time.perf_counter()
    common = {"number": spec.number, "params": spec.values, "seed": spec.seed, "worker": _worker_name()}
    try:
        fields = _train_and_synthesize(spec)
    except TriggerError as exc:
        fields = {"status": "failed", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any error of one trial is that trial's result
        fields = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return TrialRecord.build(**common, **fields, wall_s=round(time.perf_counter() - t0, 2))


def _train_and_synthesize(spec: TrialSpec) -> dict[str, Any]:
    from trigger.stages.synth import synthesize
    from trigger.stages.train import train

    model_cfg, synth_cfg = trial_configs(spec.scan, spec.values, source=f"scan trial {spec.number}")
    folder = trial_dir(spec.scan_dir, spec.number)
    run = train(model_cfg, data=spec.data, out=folder / "model", force=True,
                teacher=resolve_repo_path(spec.scan.teacher))
    student = folder / "model" / "model.h5"
    firmware = synthesize(student, config=synth_cfg, data=spec.data, teacher=folder / "model" / "teacher.h5",
                          out=folder / "firmware", force=True, seed=spec.seed, calibration=spec.scan.calibration)
    return {"status": "complete", **metric_fields(run.metrics),
            **firmware_fields(firmware.report), "student": str(student),
            "report": str(folder / "firmware" / "report.json")}


def metric_fields(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scan's metric from a training's metrics.json: accuracy for a tagger, mean AUC for the
    anomaly trigger (the teacher's beside it)."""
    name = "accuracy" if metrics["task"] == "classification" else "mean_auc"
    return {"metric_name": name, "metric": metrics["student"][name], "teacher_metric": metrics["teacher"][name]}


def firmware_fields(report: FirmwareReport) -> dict[str, Any]:
    """Latency, resources, budget verdict and C-simulation exactness from a firmware report. The
    resources are the ones users size a design on: the estimate's post-synthesis (``synth``) target
    when the figures are an estimate, else the headline (vendor) figures."""
    lat, budget, csim = report.latency, report.budget, report.csim
    res, source = report.resources, report.resources.source
    if source == "estimate" and report.targets is not None and report.targets.synth is not None:
        res, source = report.targets.synth.resources, "estimate, after logic synthesis"
    exact = None
    if csim is not None:
        exact = csim.output.bit_exact_fraction if csim.output is not None else csim.bit_exact_fraction
    return {"latency_cycles": lat.max_cycles, "latency_ns": lat.ns, "interval": lat.interval,
            "DSP": res.DSP, "LUT": res.LUT, "FF": res.FF, "BRAM_18K": res.BRAM_18K, "figures_source": source,
            "fits_budget": budget.fits if budget is not None else None,
            "budget_verdict": budget.verdict if budget is not None else None,
            "budget_note": budget.note if budget is not None else None, "csim_bit_exact": exact}
