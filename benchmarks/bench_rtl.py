"""`trigger rtl` on the reference students: time per step, yosys against da4ml and our estimate, and
the cost of exact rounding.

    .venv/bin/python benchmarks/bench_rtl.py                           # the four references
    .venv/bin/python benchmarks/bench_rtl.py --rounding jet_mlp          # + half-even vs half-up

Each model runs the real command line (`python -m trigger rtl models/<name>/model.h5 --out ...`) in a
fresh interpreter on its committed check sample, yosys included; the steps' times come from its
report.json. "Our estimate" is the analytic estimator on the hls4ml conversion with
``Strategy='distributed_arithmetic'`` (no compile). ``--rounding`` traces the model again with
da4ml's round-half-up in place of the exact round-half-even and synthesises both with yosys.
Results go to stdout as markdown tables (recorded in docs/rtl.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODELS = ("jet_mlp", "ad_autoencoder", "jet_cnn", "jet_gnn")


def run_rtl(name: str, out: Path, synth: bool) -> tuple[dict | None, str, float]:
    """(report or None, last stderr line, wall seconds) of `trigger rtl` on a reference student."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "trigger", "rtl", REPO / "models" / name / "model.h5",
                           "--out", out] + ([] if synth else ["--no-synth"]), capture_output=True, text=True,
                          cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return None, (proc.stderr.strip().splitlines() or ["?"])[-1], wall
    return json.loads((out / "report.json").read_text()), "", wall


def our_estimate(name: str, folder: Path) -> dict[str, dict]:
    """The analytic estimator's resources on the distributed-arithmetic hls4ml conversion, by target:
    ``csynth`` (what a C-synthesis report would say) and ``synth`` (after logic synthesis, the one
    comparable with yosys)."""
    from trigger.config import SynthConfig
    from trigger.firmware.convert import convert_model
    from trigger.firmware.estimate import estimate_model
    from trigger.models.io import load_model

    model = load_model(REPO / "models" / name / "model.h5")
    conversion = convert_model(model, SynthConfig(strategy="distributed_arithmetic"), folder)
    targets = estimate_model(conversion.hls_model).to_dict()["targets"]
    return {target: block["resources"] for target, block in targets.items()}


def bit_exact_fraction(name: str, model, traced, comb) -> float:
    """da4ml's interpreter of ``comb`` against the exact QKeras reference on the check sample."""
    import numpy as np

    from trigger.config import SynthConfig
    from trigger.models.io import load_meta
    from trigger.rtl.trace import reference_words
    from trigger.firmware.events import csim_inputs

    d = REPO / "models" / name
    x, *_ = csim_inputs(d / "check_sample.h5", load_meta(d / "model.h5"), model, None, SynthConfig(), 0)
    x = x.astype(np.float64)
    words, expected = reference_words(traced, x)
    return float(np.mean(comb.predict(words) == expected))


def rounding_cost(name: str, folder: Path, latency: dict) -> dict[str, dict]:
    """yosys and da4ml figures of the model traced with exact half-even and with half-up rounding,
    pipelined as its `trigger rtl` run was (``latency``: that report's latency block)."""
    from trigger.models.io import load_model
    from trigger.rtl import build, trace_model, tools, yosys

    tools.set_cache_env()
    model = load_model(REPO / "models" / name / "model.h5")
    rows = {}
    for label, exact in (("half-even (exact)", True), ("half-up (da4ml RND)", False)):
        traced = trace_model(model, exact_rounding=exact)
        comb = build.combinational(traced)
        logic = build.make_logic(comb, latency["adder_levels_per_stage"])
        path = folder / ("exact" if exact else "halfup")
        build.write_project(logic, name, path, latency["clock_ns"])
        figures = yosys.synthesize(build.verilog_files(path, name), name, path / "yosys", 3600)
        rows[label] = {"da4ml": float(logic.comb.cost), "bit_exact": bit_exact_fraction(name, model, traced, comb),
                       **figures}
    return rows


def _seconds(value: float | None) -> str:
    return "not run" if value is None else f"{value:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--yosys", nargs="*", default=["jet_mlp", "ad_autoencoder"], choices=MODELS,
                        help="models synthesised with yosys (default the two smaller ones: the CNN and GNN, "
                             "over 100k LUT, take far longer)")
    parser.add_argument("--rounding", nargs="*", default=[], choices=MODELS, metavar="MODEL",
                        help="models also measured with half-up rounding against half-even (yosys twice)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_rtl_") as tmp:
        tmp = Path(tmp)
        runs = {name: run_rtl(name, tmp / name, name in args.yosys) for name in args.models}
        print("| model | trace | write | Verilator build | simulation | yosys | wall (CLI) | bit-exact |")
        print("|---|---|---|---|---|---|---|---|")
        for name, (report, error, wall) in runs.items():
            if report is None:
                print(f"| {name} | refused: {error} | | | | | {wall:.0f} s | |")
                continue
            t = report["timings"]
            print(f"| {name} | {t['trace']:.1f} s | {t['write']:.1f} s | {t['verilator_build']:.1f} s | "
                  f"{t['simulation'] * 1000:.1f} ms | {_seconds(t.get('yosys'))} | {wall:.0f} s | "
                  f"{report['rtl_sim']['bit_exact_fraction']:.6g} of {report['rtl_sim']['n_values']} |")
        print("\n| model | cycles @ 5 ns | yosys LUT | yosys FF | CARRY | MUXF | INV | logic levels | "
              "da4ml LUT | da4ml FF | our estimate LUT / FF (after logic synthesis) | "
              "our estimate LUT / FF (C synthesis) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, (report, _, _) in runs.items():
            if report is None:
                continue
            y, d = report["yosys"] or {}, report["da4ml"]
            est = our_estimate(name, tmp / f"{name}_hls")
            cells = " | ".join(f"{y[key]:,}" if key in y else "not run" for key in
                               ("LUT", "FF", "CARRY", "MUXF", "INV", "logic_levels"))
            synth, csynth = est["synth"], est["csynth"]
            print(f"| {name} | {report['latency']['cycles']} | {cells} | {d['LUT']:,.0f} | {d['FF']:,} | "
                  f"{synth['LUT']:,} / {synth['FF']:,} | {csynth['LUT']:,} / {csynth['FF']:,} |")
        if args.rounding:
            print("\n| model | rounding | bit-exact (check sample) | yosys LUT | CARRY | FF | da4ml cost |")
            print("|---|---|---|---|---|---|---|")
            for name in args.rounding:
                report = runs[name][0] if name in runs else None
                if report is None:
                    continue
                for label, row in rounding_cost(name, tmp / f"{name}_rounding", report["latency"]).items():
                    print(f"| {name} | {label} | {row['bit_exact']:.4f} | {row['LUT']:,} | {row['CARRY']:,} | "
                          f"{row['FF']:,} | {row['da4ml']:,.0f} |")


if __name__ == "__main__":
    main()
