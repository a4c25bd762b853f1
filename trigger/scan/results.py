"""What a scan keeps: one typed record per trial (``trials/<id>/trial.json``), the CSV export, the
Pareto front of the trials inside the Level-1 budget."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from trigger.contracts import TrialRecord  # noqa: F401  (re-exported: the record is a contract)
from trigger.errors import TriggerError
from trigger.runtime import atomic_path

TRIALS_DIR = "trials"
RECORD_NAME = "trial.json"


def trial_dir(scan_dir: Path, number: int) -> Path:
    """``DIR/trials/<id>`` of one trial (zero-padded so that listings sort by number)."""
    return scan_dir / TRIALS_DIR / f"{number:04d}"


def write_record(scan_dir: Path, record: TrialRecord) -> Path:
    """``trial.json`` of a finished trial, written atomically (its presence means "finished")."""
    folder = trial_dir(scan_dir, record.number)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORD_NAME
    with atomic_path(path, force=True) as tmp:
        tmp.write_text(record.to_json(indent=2))
    return path


def read_record(scan_dir: Path, number: int) -> TrialRecord | None:
    """The record of trial ``number``, or None when it has not finished."""
    path = trial_dir(scan_dir, number) / RECORD_NAME
    return TrialRecord.read(path) if path.is_file() else None


def read_records(scan_dir: Path) -> list[TrialRecord]:
    """Every finished trial's record, by number."""
    folder = scan_dir / TRIALS_DIR
    if not folder.is_dir():
        raise TriggerError(f"{scan_dir} is not a scan folder (no {TRIALS_DIR}/); pass the --out of `trigger scan`")
    records = [TrialRecord.read(p) for p in sorted(folder.glob(f"*/{RECORD_NAME}"))]
    return sorted(records, key=lambda r: r.number)


CSV_COLUMNS = ["number", "status", "metric_name", "metric", "csim_bit_exact", "latency_cycles", "latency_ns",
               "interval", "DSP", "LUT", "FF", "BRAM_18K", "cost", "figures_source", "fits_budget", "budget_verdict", "wall_s",
               "worker", "seed", "error"]


def export_csv(records: list[TrialRecord], path: Path) -> Path:
    """All records as one CSV row each (fixed columns, then one column per parameter)."""
    params = sorted({key for r in records for key in r.params})
    with atomic_path(path, force=True) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS + params)
        writer.writeheader()
        for r in records:
            row = {c: getattr(r, c) for c in CSV_COLUMNS}
            row.update({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.params.items()})
            writer.writerow(row)
    return path


def _objectives(record: TrialRecord) -> tuple[float, float, float]:
    """(-metric, cost, latency): all minimised."""
    return (-float(record.metric), float(record.cost), float(record.latency_ns or 0.0))


def pareto_front(records: list[TrialRecord]) -> list[TrialRecord]:
    """The complete trials inside the budget that no other such trial beats on every objective
    (metric up, LUT + 55 x DSP down, latency down), best metric first."""
    feasible = [r for r in records if r.status == "complete" and r.fits_budget and r.metric is not None
                and r.cost is not None]
    points = {r.number: _objectives(r) for r in feasible}

    def dominated(a: TrialRecord) -> bool:
        pa = points[a.number]
        return any(all(x <= y for x, y in zip(points[b.number], pa)) and points[b.number] != pa
                   for b in feasible if b.number != a.number)

    return sorted((r for r in feasible if not dominated(r)), key=lambda r: (-r.metric, r.cost))


def best_in_budget(records: list[TrialRecord]) -> TrialRecord | None:
    """The most accurate complete trial inside the budget (ties: the cheaper)."""
    front = pareto_front(records)
    return front[0] if front else None
