"""Wall time of `trigger synth` per model family, and what each bit-exact recipe item is needed for.

    .venv/bin/python benchmarks/bench_synth.py                 # wall time of the CLI, 4 families x io
    .venv/bin/python benchmarks/bench_synth.py --ablation      # bit-exact fraction with each item left out

Timing runs the real command line (`python -m trigger synth MODEL --out ...`) in a fresh interpreter,
so it includes the TensorFlow import, conversion, the g++ compile of the C simulation, the csim of
--events random events on the input grid and the report. The models are the small examples of
`trigger.firmware.examples` (MLP 16-32-16-5, CNN 8x8 with 4 filters, interaction network with 8
particles, VAE encoder 57-32-16-3 with score) plus a 16x16 CNN and a 16-particle GNN at the sizes
of the zoo configs. Results go to stdout as a markdown table (recorded in docs/firmware.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CASES = {  # name -> (family, builder kwargs)
    "mlp": ("mlp", {}),
    "cnn 8x8": ("cnn", {}),
    "cnn 16x16": ("cnn", {"size": 16}),
    "gnn 8 particles": ("gnn", {}),
    "gnn 16 particles": ("gnn", {"n_nodes": 16}),
    "vae encoder": ("vae", {}),
}
ABLATION_CASES = dict(CASES, **{"mlp auto_po2": ("mlp", {"kernel_alpha": "auto_po2"})})
ABLATIONS = [  # (case, recipe item, inputs): what breaks without the item
    ("mlp", "input", "off-grid"),
    ("gnn 8 particles", "weights", "grid"),
    ("vae encoder", "carry", "grid"),
    ("gnn 16 particles", "pooling", "grid"),
    ("mlp auto_po2", "po2", "grid"),
]


def _save(case: str, folder: Path) -> Path:
    from trigger.firmware import examples
    from trigger.models.io import save_model

    family, kwargs = CASES[case]
    path = folder / f"{case.replace(' ', '_')}.h5"
    save_model(examples.BUILDERS[family](**kwargs), path, meta=dict(examples.META[family], role="student"),
               force=True)
    return path


def bench_timing(io_types: list[str], events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tmp / "bench.yaml"
        config.write_text(f"max_csim_events: {events}\n")
        print(f"| model | io | wall time (s) | compile (s) | csim bit-exact | values compared |")
        print("|---|---|---|---|---|---|")
        for case in CASES:
            model = _save(case, tmp)
            for io in io_types:
                out = tmp / f"out_{model.stem}_{io}"
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "trigger", "synth", str(model), "--config", str(config),
                                       "--io", io, "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                                      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    print(f"| {case} | {io} | failed: {proc.stderr.strip().splitlines()[-1][:120]} | | | |")
                    continue
                report = json.loads((out / "report.json").read_text())
                csim = report["csim"]
                print(f"| {case} | io_{io} | {wall:.1f} | {report['timing'].get('compile_s', 0):.1f} | "
                      f"{csim['bit_exact_fraction']:.4f} | {csim['n_values']} |", flush=True)


def bench_ablation(events: int) -> None:
    import numpy as np

    from trigger.config import SynthConfig
    from trigger.firmware import examples
    from trigger.firmware.convert import convert_model, grid_inputs
    from trigger.firmware.csim import run_csim

    print("| model | recipe item left out | inputs | bit-exact without | with | first differing layer |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for case, item, inputs in ABLATIONS:
            family, kwargs = ABLATION_CASES[case]
            model = examples.BUILDERS[family](**kwargs)
            fractions = {}
            first = None
            x = None
            for skip in ((), (item,)):  # the full recipe first: its input type defines the grid
                conversion = convert_model(model, SynthConfig(), Path(tmp) / f"{family}_{'_'.join(skip) or 'full'}",
                                           skip=skip)
                if x is None:
                    shape = tuple(model.input_shape[1:])
                    x = grid_inputs(conversion.input_precision, shape, events, seed=1) if inputs == "grid" else \
                        np.random.default_rng(1).normal(0, 8, size=(events,) + shape).astype(np.float32)
                csim = run_csim(conversion.hls_model, conversion.keras_model, x)
                fractions[skip] = csim["bit_exact_fraction"]
                if skip:
                    first = csim["first_differing_layer"]
            where = f"{first['layer']} ({first['fraction_equal']:.3f} equal)" if first else "-"
            print(f"| {case} | {item} | {inputs} | {fractions[(item,)]:.4f} | {fractions[()]:.4f} | {where} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablation", action="store_true", help="measure each recipe item instead of timing")
    parser.add_argument("--io", nargs="+", default=["parallel", "stream"], choices=["parallel", "stream"])
    parser.add_argument("--events", type=int, default=2000, help="C-simulation events (default 2000)")
    args = parser.parse_args()
    if args.ablation:
        bench_ablation(args.events)
    else:
        bench_timing(args.io, args.events)


if __name__ == "__main__":
    main()
