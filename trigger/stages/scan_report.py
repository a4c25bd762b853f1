"""`trigger scan report DIR` (the Pareto table and PNG plots) and `trigger scan export DIR --trial ID`
(a trial's student as a model folder that `trigger synth` and the reference pipeline accept)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from trigger.config import SynthConfig, resolve_repo_path
from trigger.errors import TriggerError
from trigger.firmware.synth import part_resources
from trigger.report.markdown import count, decimals, table
from trigger.runtime import atomic_path
from trigger.scan.config import MANIFEST, ScanConfig, load_scan
from trigger.scan.plots import Marks, bits_sparsity_plot, pareto_plot
from trigger.scan.results import TrialRecord, export_csv, pareto_front, read_records, trial_dir

COLUMNS = ["trial", "metric", "LUT", "DSP", "FF", "latency ns", "II", "bit-exact", "parameters"]


def pareto_table(records: list[TrialRecord]) -> str:
    """The non-dominated trials inside the budget as a Markdown table, best metric first."""
    rows = [[f"#{r.number}", decimals(r.metric), count(r.LUT), count(r.DSP), count(r.FF), count(r.latency_ns),
             count(r.interval), decimals(r.csim_bit_exact), json.dumps(r.params, separators=(",", ":"))]
            for r in pareto_front(records)]
    return "\n".join(table(COLUMNS, rows))


def reference_record(scan: ScanConfig) -> TrialRecord | None:
    """The current reference student as a record (``summary.json`` of its model folder, written by
    the reference pipeline: its metric and firmware figures), drawn beside the trials; None when
    the scan config names none."""
    if scan.reference is None:
        return None
    path = resolve_repo_path(scan.reference.model_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text())
        # the figures the trials record (after logic synthesis); a summary written before they were
        # kept has only the headline (C-synthesis) figures
        sized = summary["sized"] if "sized" in summary else summary
        fields = {"metric_name": summary["metric"], "metric": summary["student"],
                  "teacher_metric": summary["teacher"], "latency_ns": summary["latency_ns"],
                  **{key: sized[key] for key in ("DSP", "LUT", "FF", "BRAM_18K")}}
    except (OSError, ValueError, KeyError) as exc:
        raise TriggerError(f"reference student summary {path} unreadable ({exc}); fix `reference.model_dir` "
                           "or rebuild it with `python -m trigger.reference`") from None
    return TrialRecord.build(number=-1, status="complete", params={}, **fields)


def _marks(synth: SynthConfig, records: list[TrialRecord], reference: TrialRecord | None) -> Marks:
    teacher = next((r.teacher_metric for r in records if r.teacher_metric is not None), None)
    name = next((r.metric_name for r in records if r.metric_name), "metric")
    return Marks(metric_name=name, latency_budget_ns=synth.latency_budget_ns,
                 part_totals=part_resources(synth.part), teacher_metric=teacher, reference=reference)


def _param_like(records: list[TrialRecord], fragment: str) -> str | None:
    keys = sorted({k for r in records for k in r.params if fragment in k})
    return keys[0] if keys else None


def scan_report(out_dir: str | Path) -> str:
    """Write ``DIR/plots/*.png`` and ``DIR/trials.csv``; return the text report (counts and the
    Pareto table)."""
    out_dir = Path(out_dir)
    manifest = load_scan(out_dir)
    scan = manifest.scan_config(source=str(out_dir / MANIFEST))
    records = read_records(out_dir)
    reference = reference_record(scan)
    plots = out_dir / "plots"
    plots.mkdir(exist_ok=True)
    marks = _marks(manifest.base.synth, records, reference)
    written = [pareto_plot(records, marks, plots / "pareto.png")]
    bits, sparsity = _param_like(records, "weight_bits"), _param_like(records, "sparsity")
    if bits and sparsity:
        written.append(bits_sparsity_plot(records, bits, sparsity, marks.metric_name, plots / "bits_sparsity.png"))
    export_csv(records, out_dir / "trials.csv")
    failed = [r for r in records if r.status == "failed"]
    inside = [r for r in records if r.status == "complete" and r.fits_budget]
    head = [f"scan {scan.name}: {len(records)} trials finished, {len(failed)} failed, {len(inside)} inside the "
            f"Level-1 budget ({marks.latency_budget_ns:g} ns)"]
    if reference is not None:
        head.append(f"reference student: {marks.metric_name} {decimals(reference.metric)}, LUT {count(reference.LUT)}, "
                    f"DSP {count(reference.DSP)}, {count(reference.latency_ns)} ns")
    head += ["", "Pareto front inside the budget (metric up; LUT + 55 x DSP and latency down):", "",
             pareto_table(records), "", "plots: " + ", ".join(str(p) for p in written)]
    return "\n".join(head)


def export_trial(out_dir: str | Path, number: int, dest: str | Path, *, force: bool = False) -> Path:
    """Copy a complete trial's model folder (model.h5, metrics.json, ...) to ``dest``, with the scan's
    teacher as ``teacher.h5`` where the folder no longer holds its copy (a scan folder from git keeps
    only the student: .gitignore)."""
    out_dir, dest = Path(out_dir), Path(dest)
    records = {r.number: r for r in read_records(out_dir)}
    record = records.get(number)
    if record is None:
        raise TriggerError(f"{out_dir} has no finished trial {number}; `trigger scan report {out_dir}` lists them")
    if record.status != "complete":
        raise TriggerError(f"trial {number} failed ({record.error}); export a complete trial")
    with atomic_path(dest, force=force) as tmp:
        shutil.copytree(trial_dir(out_dir, number) / "model", tmp)
        if not (tmp / "teacher.h5").is_file():
            scan = load_scan(out_dir).scan_config(source=str(out_dir / MANIFEST))
            shutil.copyfile(resolve_repo_path(scan.teacher), tmp / "teacher.h5")
    return dest
