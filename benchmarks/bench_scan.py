"""Scan throughput: trials per hour with 1 and with 2 local Dask workers, and Dask's overhead per
trial against calling the trial function directly.

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

from trigger.stages.scan import run_scan


def scan_once(config: Path, data: Path, trials: int, workers: int) -> tuple[float, list]:
    """Wall seconds of one fresh scan of ``trials`` trials, and its records."""
    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        t0 = time.perf_counter()
        result = run_scan(config, data=data, out=Path(tmp) / "scan", trials=trials, workers=workers)
        return time.perf_counter() - t0, result.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args()
    rates = {}
    for workers in (1, 2):
        wall, records = scan_once(args.config, args.data, args.trials, workers)
        rates[workers] = 3600 * len(records) / wall
        inside = sum(r.wall_s for r in records)
        print(f"{workers} worker(s): {len(records)} trials in {wall:.0f} s = {rates[workers]:.1f} trials/h; "
              f"trials' own time {inside:.0f} s")
        if workers == 1:
            overhead = (wall - inside) / len(records)
            print(f"  overhead per trial (scan wall - trial wall, 1 worker): {overhead:.1f} s "
                  f"= {100 * overhead / (inside / len(records)):.1f} % (cluster start, sampler, records)")
    print(f"scaling 1 -> 2 workers: x{rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
