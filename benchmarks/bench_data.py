"""Generation speed of the data stage: per CPU-second, 1 vs 2 workers, and the merge.

    .venv/bin/python benchmarks/bench_data.py [--jets 200] [--events 300] [--seed 7]
    .venv/bin/python benchmarks/bench_data.py --summary data/jets.h5 data/ad.h5   # physics table only
    .venv/bin/python benchmarks/bench_data.py --scaling 100 [--chunk-size 100]    # 1 vs 2 workers
    .venv/bin/python benchmarks/bench_data.py --merge 100000                      # merge of N jets

The default prints jets per CPU-second for each class (Pythia + clustering + grooming + substructure
+ views) and, for every anomaly-detection process, generated and accepted (after the single-lepton
filter) events per CPU-second, single process. CPU time is this process's (time.process_time), so
the figures do not depend on how busy the machine is; wall time is shown for reference.

``--scaling N`` runs ``trigger data jets --n-per-class N`` end to end (shards, merge) in this
process (1 worker) and on a local Dask cluster of 2 workers: jets per CPU-second of the whole run
(children included) and the wall-time speed-up. ``--merge N`` writes shards of N synthetic jets
(the shapes of P = S = 16, no Pythia) and times the merge alone in a fresh process: rows/s, MB/s
and its peak RSS. Results go to docs/data.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from trigger.data.ad import PROCESS_NAMES, _ad_task
from trigger.data.common import quiet_stdout, task_seed
from trigger.data.jets import CLASS_NAMES, _jet_task, generate_jets
from trigger.data.shards import Plan, chunk_units, manifest_of, merge, parts_path, write_shard


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


REPO = Path(__file__).resolve().parent.parent


def _children_cpu() -> float:
    """CPU seconds of this process and of its finished children (the Dask workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def scaling(n_per_class: int, chunk_size: int | None, seed: int) -> None:
    """`trigger data jets` end to end with 1 and 2 workers: jets per CPU-second and the speed-up.
    Each run is a fresh interpreter, so its CPU time counts its own Dask workers."""
    print(f"trigger data jets --n-per-class {n_per_class} (P=S=16, chunk size {chunk_size or 'default'}), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'workers':>7s} {'wall s':>7s} {'CPU s':>7s} {'jets/CPU-s':>10s} {'jets/s':>7s}")
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            code = (f"import benchmarks.bench_data as b; b._one_run({str(Path(tmp) / f'j{workers}.h5')!r}, "
                    f"{n_per_class}, {workers}, {chunk_size!r}, {seed})")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 cwd=REPO).stdout.split()
            wall, cpu = float(out[-2]), float(out[-1])
            walls[workers] = wall
            n = 5 * n_per_class
            print(f"{workers:7d} {wall:7.1f} {cpu:7.1f} {n / cpu:10.1f} {n / wall:7.1f}")
    print(f"speed-up 1 -> 2 workers (wall): {walls[1] / walls[2]:.2f}")


def _one_run(out: str, n_per_class: int, workers: int, chunk_size: int | None, seed: int) -> None:
    """One timed `generate_jets` (prints wall and CPU seconds, children included)."""
    wall, cpu = time.perf_counter(), _children_cpu()
    generate_jets(out, n_per_class=n_per_class, seed=seed, workers=workers, chunk_size=chunk_size)
    print(time.perf_counter() - wall, _children_cpu() - cpu)


def fake_jets(task: tuple[int, int, int]) -> tuple[int, dict[str, np.ndarray]]:
    """Rows with the shapes and sparsity of real jets (P = S = 16), from the task's seed: the merge
    costs the same as for Pythia jets without waiting for Pythia."""
    label, n, seed = task
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 16, 16, 1), dtype=np.float32)
    images.reshape(n, -1)[np.arange(n)[:, None], rng.integers(0, 256, (n, 30))] = rng.random((n, 30))
    floats = {name: rng.random(n).astype(np.float32) for name in ("jet_pt", "jet_eta", "jet_mass", "tau21", "tau32")}
    return n, {"hlf": rng.random((n, 16)).astype(np.float32), "constituents": rng.random((n, 16, 3)).astype(np.float32),
               "images": images, **floats, "labels": np.full(n, label, dtype=np.int64),
               "n_events": np.array([n], dtype=np.int64)}


def fake_plan(n_jets: int, seed: int) -> Plan:
    """A plan of ``n_jets`` synthetic jets in units of 200, five classes."""
    plan = Plan(command="bench merge", arguments={"--jets": n_jets}, seed=seed, unit_fn=fake_jets, units=[],
                unit_rows=[], unit_group=[], group_names=CLASS_NAMES, noun="jets", default_chunk_rows=200,
                attrs={"kind": "jets"})
    for index, start in enumerate(range(0, n_jets, 200)):
        size = min(200, n_jets - start)
        plan.units.append((index % 5, size, task_seed(seed, 3, index)))
        plan.unit_rows.append(size)
        plan.unit_group.append(CLASS_NAMES[index % 5])
    return plan


def bench_merge(n_jets: int, seed: int) -> None:
    """Shards of ``n_jets`` synthetic jets, then the merge alone in a fresh process."""
    from trigger.data.shards import _digest, run_chunk

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "merged.h5"
        plan = fake_plan(n_jets, seed)
        chunks = chunk_units(plan.unit_rows, 1000)
        digest = _digest(manifest_of(plan, 1000, len(chunks)))
        parts = parts_path(out)
        parts.mkdir()
        for index, chunk in enumerate(chunks):
            write_shard(parts, index, run_chunk(fake_jets, [plan.units[u] for u in chunk]), digest)
        shard_bytes = sum(p.stat().st_size for p in parts.iterdir())
        code = f"import benchmarks.bench_data as b; b._one_merge({str(out)!r}, {n_jets}, {seed})"
        wall, rss_before, rss_peak = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                    check=True, cwd=REPO).stdout.split()[-3:]
        print(f"merge of {n_jets} jets ({len(chunks)} shards, {shard_bytes / 1e6:.0f} MB) into "
              f"{out.stat().st_size / 1e6:.0f} MB: {float(wall):.1f} s wall, {n_jets / float(wall):.0f} jets/s, "
              f"{shard_bytes / 1e6 / float(wall):.0f} MB/s of shards; peak RSS {float(rss_peak) / 1024:.0f} MB "
              f"({float(rss_before) / 1024:.0f} MB before the merge); load average {os.getloadavg()[0]:.1f}")


def _one_merge(out: str, n_jets: int, seed: int) -> None:
    """The merge of :func:`bench_merge`'s shards (prints wall s, RSS before, peak RSS in kB)."""
    plan = fake_plan(n_jets, seed)
    chunks = chunk_units(plan.unit_rows, 1000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall = time.perf_counter()
    merge(Path(out), parts_path(out), plan, chunks, force=False)
    print(time.perf_counter() - wall, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=200, help="jets per class (default 200)")
    parser.add_argument("--events", type=int, default=300, help="accepted events per AD process (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--summary", nargs="+", metavar="FILE", help="only print the physics table of FILEs")
    parser.add_argument("--scaling", type=int, metavar="N", help="only: 1 vs 2 workers on N jets per class")
    parser.add_argument("--chunk-size", type=int, default=None, help="with --scaling: jets per chunk")
    parser.add_argument("--merge", type=int, metavar="N", help="only: the merge of N synthetic jets")
    args = parser.parse_args()
    if args.summary:
        for path in args.summary:
            summarise(path)
    elif args.scaling:
        scaling(args.scaling, args.chunk_size, args.seed)
    elif args.merge:
        bench_merge(args.merge, args.seed)
    else:
        per_class(args.jets, args.events, args.seed)


def per_class(n_jets: int, n_events: int, seed: int) -> None:
    """Jets and AD events per CPU-second of each class or process, in this process."""
    print(f"jets: {n_jets} per class, P=16, S=16 (includes Pythia initialisation)")
    print(f"{'class':8s} {'jets/CPU-s':>10s} {'events/jet':>10s} {'CPU s':>7s} {'wall s':>7s}")
    total_jets, total_cpu = 0, 0.0
    for index, name in enumerate(CLASS_NAMES):
        with quiet_stdout():
            n, result, cpu, wall = _timed(_jet_task, (index, n_jets, task_seed(seed, 1, index, 0), 16, 16))
        total_jets, total_cpu = total_jets + n, total_cpu + cpu
        print(f"{name:8s} {n / cpu:10.1f} {result['n_events'][0] / n:10.2f} {cpu:7.1f} {wall:7.1f}")
    print(f"{'all':8s} {total_jets / total_cpu:10.1f}")

    print(f"\nAD events: {n_events} accepted per process (includes Pythia initialisation)")
    print(f"{'process':12s} {'generated/CPU-s':>15s} {'accepted/CPU-s':>14s} {'filter eff':>10s} {'CPU s':>7s}")
    for index, name in enumerate(PROCESS_NAMES):
        with quiet_stdout():
            n, result, cpu, wall = _timed(_ad_task, (index, n_events, task_seed(seed, 2, index, 0)))
        generated = int(result["n_events"][0])
        print(f"{name:12s} {generated / cpu:15.1f} {n / cpu:14.1f} {n / generated:10.3f} {cpu:7.1f}")


if __name__ == "__main__":
    main()
