"""How long the latency/resource estimate takes per model (results go into docs/estimator.md).

    .venv/bin/python benchmarks/bench_estimate.py [--repeat 20] [--da]

Builds each benchmark model once from its published record (tests/data/published/, ``build``
section; variants change the reuse factor, strategy or IO type) and converts it with hls4ml (no
compile; that time is printed for context, it is not the estimator's), then times
``trigger.firmware.estimate.estimate_model`` ``--repeat`` times and prints the median. ``--da``
adds the QKeras jet MLP with Strategy='distributed_arithmetic' (needs the '[da]' extra).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO / "tests" / "data" / "published"

#: (label, record, changes to its hls4ml build settings)
CASES = [
    ("jet MLP ap_fixed<16,6> RF1 io_parallel", "tutorial_jet_mlp_rf1", {}),
    ("jet MLP QKeras 6-bit 75% pruned RF1", "tutorial_jet_mlp_qkeras6_pruned_rf1", {}),
    ("jet MLP ap_fixed<16,6> RF4 io_stream", "tutorial_jet_mlp_rf1", {"reuse_factor": 4, "io_type": "io_stream"}),
    ("jet MLP ap_fixed<16,6> Resource RF16", "tutorial_jet_mlp_rf1", {"reuse_factor": 16, "strategy": "Resource"}),
    ("SVHN CNN io_stream (3 conv, 3 dense)", "tutorial_svhn_pruned_cnn", {}),
    ("hls4ml conv2d baseline (Resource, io_parallel)",
     "hls4ml_baseline_vivado_2020_1_conv2d_io_parallel_vivado_resource_same_channels_last", {}),
]


def build(record: str, changes: dict, out_dir: Path):
    """The record's design with ``changes`` to its hls4ml settings, converted."""
    from tools.estimator.designs import build_design
    from tools.estimator.published import load_design

    design = load_design(DATA / f"{record}.yaml")
    spec = design.build.model_copy(update={"hls4ml": design.build.hls4ml.model_copy(update=changes)})
    return build_design(design.model_copy(update={"build": spec}), out_dir), design.build.profile


def build_da(out_dir: Path):
    """The QKeras jet MLP with its Dense layers as da4ml adder graphs."""
    import hls4ml

    from tools.estimator.designs import keras_model, set_weights
    from tools.estimator.published import load_design

    spec = load_design(DATA / "tutorial_jet_mlp_qkeras6_pruned_rf1.yaml").build
    model = keras_model(spec)
    set_weights(model, spec.weights)
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vivado")
    for name, layer_config in config["LayerName"].items():
        if name.startswith("fc") or name == "output":
            layer_config["Strategy"] = "distributed_arithmetic"
    return hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, backend="Vivado", output_dir=str(out_dir), part="xczu3eg-sbva484-1-e",
        clock_period=5, io_type="io_parallel"), "modern"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--da", action="store_true", help="include the distributed-arithmetic jet MLP")
    args = parser.parse_args()

    from trigger.firmware.estimate import estimate_model

    work = Path(tempfile.mkdtemp(prefix="bench_estimate_"))
    builders = [(label, lambda r=record, c=changes, i=i: build(r, c, work / f"case{i}"))
                for i, (label, record, changes) in enumerate(CASES)]
    if args.da:
        builders.append(("jet MLP QKeras 6-bit 75% pruned, distributed arithmetic", lambda: build_da(work / "da")))
    print(f"{'model':58s} {'convert s':>10s} {'estimate ms (median)':>21s}  latency / DSP / LUT")
    for label, builder in builders:
        start = time.perf_counter()
        hls_model, profile = builder()
        convert_s = time.perf_counter() - start
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = estimate_model(hls_model, profile=profile).to_dict()
            times.append(time.perf_counter() - start)
        res = result["resources"]
        print(f"{label:58s} {convert_s:10.2f} {1000 * statistics.median(times):21.2f}  "
              f"{result['latency']['max_cycles']} cyc / {res['DSP']} / {res['LUT']}")


if __name__ == "__main__":
    main()
