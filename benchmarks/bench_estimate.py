"""How long the latency/resource estimate takes per model (results go into docs/estimator.md).

    .venv/bin/python benchmarks/bench_estimate.py [--repeat 20] [--da]

Converts each benchmark model once with hls4ml (no compile; that time is printed for context,
it is not the estimator's), then times ``trigger.firmware.estimate.estimate_model`` ``--repeat``
times and prints the median and the total of the estimate. ``--da`` adds the jet MLP with
Strategy='distributed_arithmetic' (needs the '[da]' extra; its conversion runs da4ml).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--da", action="store_true", help="include the distributed-arithmetic jet MLP")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf  # noqa: F401

    from tests.test_estimate import convert, jet_mlp, set_random_weights, svhn_cnn
    from trigger.firmware.estimate import estimate_model
    from trigger.runtime import set_seed

    import hls4ml

    set_seed(1)
    rng = np.random.default_rng(1)
    work = Path(tempfile.mkdtemp(prefix="bench_estimate_"))
    cases = []

    def jet(quantized: bool, sparsity: float, reuse: int, strategy: str = "Latency", io_type: str = "io_parallel"):
        def build():
            model = jet_mlp(quantized)
            set_random_weights(model, sparsity, quantized, rng)
            return convert(model, reuse, work / f"jet{len(cases)}", strategy=strategy, io_type=io_type)
        return build

    cases.append(("jet MLP ap_fixed<16,6> RF1 io_parallel", jet(False, 0.0, 1)))
    cases.append(("jet MLP QKeras 6-bit 75% pruned RF1", jet(True, 0.75, 1)))
    cases.append(("jet MLP ap_fixed<16,6> RF4 io_stream", jet(False, 0.0, 4, io_type="io_stream")))
    cases.append(("jet MLP ap_fixed<16,6> Resource RF16", jet(False, 0.0, 16, strategy="Resource")))

    def svhn():
        model = svhn_cnn(rng)
        config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vivado",
                                                      default_precision="ap_fixed<16,6>")
        return hls4ml.converters.convert_from_keras_model(
            model, hls_config=config, backend="Vivado", output_dir=str(work / "svhn"),
            part="xcu250-figd2104-2L-e", clock_period=5, io_type="io_stream")

    cases.append(("SVHN CNN io_stream (3 conv, 3 dense)", svhn))

    if args.da:
        def da():
            model = jet_mlp(True)
            set_random_weights(model, 0.75, True, rng)
            config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vivado")
            for name, layer_config in config["LayerName"].items():
                if name.startswith("fc") or name == "output":
                    layer_config["Strategy"] = "distributed_arithmetic"
            return hls4ml.converters.convert_from_keras_model(
                model, hls_config=config, backend="Vivado", output_dir=str(work / "da"),
                part="xczu3eg-sbva484-1-e", clock_period=5, io_type="io_parallel")

        cases.append(("jet MLP QKeras 6-bit 75% pruned, distributed arithmetic", da))

    print(f"{'model':58s} {'convert s':>10s} {'estimate ms (median)':>21s}  latency / DSP / LUT")
    for name, build in cases:
        start = time.perf_counter()
        hls_model = build()
        convert_s = time.perf_counter() - start
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = estimate_model(hls_model).to_dict()
            times.append(time.perf_counter() - start)
        res = result["resources"]
        print(f"{name:58s} {convert_s:10.2f} {1000 * statistics.median(times):21.2f}  "
              f"{result['latency']['max_cycles']} cyc / {res['DSP']} / {res['LUT']}")


if __name__ == "__main__":
    main()
