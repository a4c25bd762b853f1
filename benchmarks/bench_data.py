"""Generation speed of the data stage, per CPU-second, single process.

    .venv/bin/python benchmarks/bench_data.py [--jets 200] [--events 300] [--seed 7]

Prints jets per CPU-second for each class (Pythia + clustering + grooming + substructure + views)
and, for every anomaly-detection process, generated and accepted (after the single-lepton filter)
events per CPU-second. CPU time is this process's (time.process_time), so the figures do not
depend on how busy the machine is; wall time is shown for reference. Results go to docs/data.md.
"""

from __future__ import annotations

import argparse
import time

from trigger.data.ad import PROCESS_NAMES, _ad_task
from trigger.data.common import quiet_stdout, task_seed
from trigger.data.jets import CLASS_NAMES, _jet_task


def _timed(fn, task):
    cpu, wall = time.process_time(), time.perf_counter()
    n, result = fn(task)
    return n, result, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=200, help="jets per class (default 200)")
    parser.add_argument("--events", type=int, default=300, help="accepted events per AD process (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(f"jets: {args.jets} per class, P=16, S=16 (includes Pythia initialisation)")
    print(f"{'class':8s} {'jets/CPU-s':>10s} {'events/jet':>10s} {'CPU s':>7s} {'wall s':>7s}")
    total_jets, total_cpu = 0, 0.0
    for index, name in enumerate(CLASS_NAMES):
        with quiet_stdout():
            n, result, cpu, wall = _timed(_jet_task, (index, args.jets, task_seed(args.seed, 1, index, 0), 16, 16))
        total_jets, total_cpu = total_jets + n, total_cpu + cpu
        print(f"{name:8s} {n / cpu:10.1f} {result['n_events'][0] / n:10.2f} {cpu:7.1f} {wall:7.1f}")
    print(f"{'all':8s} {total_jets / total_cpu:10.1f}")

    print(f"\nAD events: {args.events} accepted per process (includes Pythia initialisation)")
    print(f"{'process':12s} {'generated/CPU-s':>15s} {'accepted/CPU-s':>14s} {'filter eff':>10s} {'CPU s':>7s}")
    for index, name in enumerate(PROCESS_NAMES):
        with quiet_stdout():
            n, result, cpu, wall = _timed(_ad_task, (index, args.events, task_seed(args.seed, 2, index, 0)))
        generated = int(result["n_events"][0])
        print(f"{name:12s} {generated / cpu:15.1f} {n / cpu:14.1f} {n / generated:10.3f} {cpu:7.1f}")


if __name__ == "__main__":
    main()
