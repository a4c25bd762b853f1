"""`make demo`: the main job on a built-in default — the jet MLP end to end on a small sample.

data -> train (float teacher + QAP/distilled QKeras student) -> synth (hls4ml, C simulation,
estimate or vendor report) -> report. Every output goes under ``demo_output/``; the headline table
is printed at the end. It calls the same stage runners as the ``trigger`` CLI.
``python -m trigger.demo`` (``make demo``) runs :func:`main`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from trigger.config import CONFIG_DIR, ModelConfig, SynthConfig, apply_overrides, load_config
from trigger.data import generate_jets
from trigger.report import headline_table
from trigger.runtime import log, run_main, set_seed, setup_logging
from trigger.stages.synth import synthesize
from trigger.stages.train import train


def _step(name: str):
    log.info("== %s", name)
    return time.perf_counter()


def run_demo(out: Path, n_per_class: int, seed: int) -> int:
    """Run the chain into ``out``; return the process exit code."""
    out.mkdir(parents=True, exist_ok=True)
    t = _step("data: generating jets with Pythia 8 + FastJet")
    jets = generate_jets(out=out / "jets.h5", n_per_class=n_per_class, n_particles=16,
                         image_size=16, seed=seed, workers=2, force=True)
    log.info("   %s (%.0f s)", jets, time.perf_counter() - t)

    t = _step("train: float teacher and QKeras student (configs/jet_mlp.yaml)")
    cfg = apply_overrides(load_config(CONFIG_DIR / "jet_mlp.yaml", ModelConfig), {"seed": seed})
    trained = train(cfg, data=jets, out=out / "jet_mlp", force=True)
    log.info("   %s (%.0f s)", trained.out_dir, time.perf_counter() - t)

    t = _step("synth: hls4ml project, C simulation, latency/resources")
    synth_cfg = load_config(CONFIG_DIR / "synth" / "vitis_latency.yaml", SynthConfig)
    synth = synthesize(trained.out_dir / "model.h5", config=synth_cfg, data=jets,
                       teacher=trained.out_dir / "teacher.h5", out=out / "firmware_jet_mlp",
                       build=False, force=True, calibration="builtin")  # the figures docs/ quote
    log.info("   %s (%.0f s)", synth.out_dir, time.perf_counter() - t)

    print()
    print(headline_table(trained.out_dir, synth.out_dir))
    print(f"\noutputs: data {jets}\n         model {trained.out_dir}\n         firmware {synth.out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trigger.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_output"))
    parser.add_argument("--n-per-class", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    setup_logging()
    set_seed(args.seed)
    return run_main("demo", lambda: run_demo(args.out, args.n_per_class, args.seed))


if __name__ == "__main__":
    raise SystemExit(main())
