"""Scan throughput: trials per hour with 1 and with 2 local Dask workers, and Dask's overhead per
trial against calling the trial function directly; with ``--remote``, also one scan against a
``dask scheduler`` and a ``dask worker`` started here as separate processes (127.0.0.1).

    python benchmarks/bench_scan.py --config configs/bench/scan_smoke.yaml --data /tmp/jets_1000.h5 [--remote]
    python benchmarks/bench_scan.py --config configs/scan/jet_mlp.yaml --data data/jets.h5 --trials 4

Each run scans into a fresh temporary folder (nothing is resumed). The overhead compares the scan's
wall time per trial (1 worker) with the trials' own wall time (measured inside the worker, the same
work as calling ``run_trial`` directly). Results go to docs/scan.md by hand, with the machine's load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from trigger.executor import dask_processes
from trigger.stages.scan import run_scan


REPO = Path(__file__).resolve().parents[1]


def scan_once(config: Path, data: Path, trials: int, workers: int | None,
              scheduler: str | None = None) -> tuple[float, list]:
    """Wall seconds of one fresh scan of ``trials`` trials, and its records."""
    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        t0 = time.perf_counter()
        result = run_scan(config, data=data, out=Path(tmp) / "scan", trials=trials, workers=workers,
                          scheduler=scheduler)
        return time.perf_counter() - t0, result.records


def report(label: str, wall: float, records: list) -> float:
    """Print one run's line; returns its trials per hour."""
    inside = sum(r.wall_s for r in records)
    rate = 3600 * len(records) / wall
    print(f"{label}: {len(records)} trials in {wall:.0f} s = {rate:.1f} trials/h; trials' own time {inside:.0f} s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--remote", action="store_true",
                        help="also scan against a dask scheduler and a dask worker started here as processes")
    args = parser.parse_args()
    rates = {}
    for workers in (1, 2):
        wall, records = scan_once(args.config, args.data, args.trials, workers)
        rates[workers] = report(f"{workers} local worker(s)", wall, records)
        if workers == 1:
            inside = sum(r.wall_s for r in records)
            overhead = (wall - inside) / len(records)
            print(f"  overhead per trial (scan wall - trial wall, 1 worker): {overhead:.1f} s "
                  f"= {100 * overhead / (inside / len(records)):.1f} % (cluster start, sampler, records)")
    print(f"scaling 1 -> 2 workers: x{rates[2] / rates[1]:.2f}")
    if args.remote:
        with dask_processes(n_workers=1, cwd=REPO) as address:
            wall, records = scan_once(args.config, args.data, args.trials, None, scheduler=address)
        remote = report("dask scheduler + 1 dask worker (separate processes)", wall, records)
        print(f"  against 1 local worker: x{remote / rates[1]:.2f} trials/h")


if __name__ == "__main__":
    main()
