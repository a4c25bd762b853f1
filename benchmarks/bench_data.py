"""Generation speed of the data stage, per CPU-second, single process.

    .venv/bin/python benchmarks/bench_data.py [--jets 200] [--events 300] [--seed 7]
    .venv/bin/python benchmarks/bench_data.py --summary data/jets.h5 data/ad.h5   # physics table only

Prints jets per CPU-second for each class (Pythia + clustering + grooming + substructure + views)
and, for every anomaly-detection process, generated and accepted (after the single-lepton filter)
events per CPU-second. CPU time is this process's (time.process_time), so the figures do not
depend on how busy the machine is; wall time is shown for reference. Results go to docs/data.md.
"""

from __future__ import annotations

import argparse
import time

import h5py
import numpy as np

from trigger.data.ad import PROCESS_NAMES, _ad_task
from trigger.data.common import quiet_stdout, task_seed
from trigger.data.jets import CLASS_NAMES, _jet_task


def _timed(fn, task):
    cpu, wall = time.process_time(), time.perf_counter()
    n, result = fn(task)
    return n, result, time.process_time() - cpu, time.perf_counter() - wall


def summarise(path: str) -> None:
    """Per-class medians of the quantities the physics tests check, for an existing file."""
    with h5py.File(path, "r") as f:
        kind = f.attrs["kind"]
        labels = f["labels"][...]
        print(f"\n{path} ({kind}, {len(labels)} rows)")
        if kind == "jets":
            names = [str(n) for n in f.attrs["class_names"]]
            hlf_names = [str(n) for n in f.attrs["hlf_names"]]
            hlf = f["hlf"][...]
            mass, mult = hlf[:, hlf_names.index("mass_mmdt")], hlf[:, hlf_names.index("multiplicity")]
            tau21, tau32, pt = f["tau21"][...], f["tau32"][...], f["jet_pt"][...]
            print(f"{'class':6s} {'m_mMDT':>7s} {'tau21':>6s} {'tau32':>6s} {'mult':>5s} {'pT':>6s}  (medians)")
            for k, name in enumerate(names):
                m = labels == k
                print(f"{name:6s} {np.median(mass[m]):7.1f} {np.median(tau21[m]):6.3f} {np.median(tau32[m]):6.3f} "
                      f"{np.median(mult[m]):5.0f} {np.median(pt[m]):6.0f}")
        else:
            x, process = f["features"][...], f["background_process"][...]
            groups = [(str(n), (labels == 0) & (process == k)) for k, n in enumerate(f.attrs["background_names"])]
            groups += [(str(n), labels == k) for k, n in enumerate(f.attrs["signal_names"], start=1)]
            n_lep = (x[:, 3:15:3] > 0).sum(1) + (x[:, 15:27:3] > 0).sum(1)
            n_jet, ht, met = (x[:, 27::3] > 0).sum(1), x[:, 27::3].sum(1), x[:, 0]
            passes = f["passes_lepton_filter"][...]
            print(f"{'process':12s} {'events':>6s} {'<n_lep>':>7s} {'<n_jet>':>7s} {'HT med':>7s} {'MET med':>7s} {'pass':>5s}")
            for name, m in groups:
                if m.any():
                    print(f"{name:12s} {m.sum():6d} {n_lep[m].mean():7.2f} {n_jet[m].mean():7.2f} "
                          f"{np.median(ht[m]):7.1f} {np.median(met[m]):7.1f} {passes[m].mean():5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=200, help="jets per class (default 200)")
    parser.add_argument("--events", type=int, default=300, help="accepted events per AD process (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--summary", nargs="+", metavar="FILE", help="only print the physics table of FILEs")
    args = parser.parse_args()
    if args.summary:
        for path in args.summary:
            summarise(path)
        return

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
