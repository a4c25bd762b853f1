"""HGQ students of the jet MLP on our data, side by side with trigger's scan front (issue 29 item 1, MLP).

    # once: the jets the scans use (about 13 min on 2 cores; data/ is git-ignored)
    PYTHONPATH=$PWD .venv/bin/python -m trigger data jets --n-per-class 20000 --workers 2 --out data/jets.h5
    # the benchmark: trains one HGQ student per beta (--jobs at a time), converts each, writes docs/hgq.*
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_hgq.py --data data/jets.h5 --epochs 100 --jobs 2
    # only the table, the JSON and the plot again, from the students' result.json files
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_hgq.py --report-only

Needs the optional extra HGQ 0.2.6 (``pip install -e .[hgq]``).

Each student: HQuantize + HDense 32-16-16 (relu) + HDense 5 (logits), per-weight and per-activation bit
widths initialised at 2 bits (HGQ's defaults), trained on the split and input transform of the reference
student ``models/jet_mlp/model.h5`` (its ModelMeta: seed, fractions, standardisation) with trigger's
distillation loss from ``models/jet_mlp/teacher.h5`` (``trigger.compress.distill.classification_loss``,
alpha and temperature of ``configs/jet_mlp.yaml``). beta, HGQ's resource weight, rises log-linearly from
beta/100 to beta over the first half of the epochs and stays there (the issue's probe; a fixed beta from
the first epoch lost 1-9 pt there); ResetMinMax and FreeBOPs each epoch as HGQ's docs say; the model of
the last epoch is kept; ``trace_minmax`` on the training split gives HGQ's EBOPs, ``to_proxy_model`` the
model trigger converts. The proxy model is saved with the reference's metadata under ``--out``
(git-ignored) and put through ``trigger.stages.synthesize`` twice (default SynthConfig, Latency; and
strategy distributed_arithmetic) on the test split's events (``--csim-events``, default all of them).

Recorded per student and strategy: test accuracy of the HGQ proxy model (whole test split), of the csim
(its events), the csim's bit-exact fraction, HGQ's EBOPs, and the estimate after logic synthesis
(LUT, DSP, FF, latency ns; cost = LUT + 55 x DSP). ``docs/hgq.md``, ``docs/hgq.json`` and
``docs/hgq_jet_mlp.png`` (accuracy vs cost beside the scan's Pareto front and the teacher) come from
those records. Every random choice is seeded (``--seed``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STRATEGIES = {"latency": "Latency", "da": "distributed_arithmetic"}
HIDDEN = (32, 16, 16)
COMMAND_FILE = "command.txt"  # under --out: the command of the sweep whose students are there


def say(message: str) -> None:
    """One progress line on stderr, with the wall-clock time."""
    print(f"[bench_hgq {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tag_of(beta: float, seed: int) -> str:
    """The folder name of one student."""
    return f"beta{beta:.0e}_seed{seed}".replace("-0", "-")


# --- one student ----------------------------------------------------------------------------------

def load_split(args) -> dict:
    """Train/val/test arrays of ``args.data`` as the reference student was trained: its ModelMeta's split
    and input transform (trigger.stages.compress.split_meta, ModelMeta.split / prepare_inputs)."""
    from trigger.data.dataset import load_dataset
    from trigger.models.io import load_meta
    from trigger.stages.compress import split_meta

    meta = split_meta(load_meta(args.reference), args.seed)
    dataset = load_dataset(args.data, meta.view)
    i_train, i_val, i_test = meta.split(len(dataset.y), source=str(args.reference))
    x = meta.prepare_inputs(dataset.x).astype(np.float32)
    return {"meta": meta, "x_raw": dataset.x, "x": x, "y": dataset.y, "names": list(dataset.class_names),
            "idx": (i_train, i_val, i_test)}


def build_student(beta: float):
    """HQuantize + HDense 32-16-16 relu + HDense 5 logits; HGQ's default quantizers (per weight, per
    activation element, 2 bits at the start)."""
    import tensorflow as tf
    from HGQ import HDense, HQuantize

    layers = [tf.keras.Input((16,)), HQuantize(beta=beta, name="inputs_quant")]
    layers += [HDense(n, activation="relu", beta=beta, name=f"fc{i + 1}") for i, n in enumerate(HIDDEN)]
    layers.append(HDense(5, beta=beta, name="logits"))
    return tf.keras.Sequential(layers, name="hgq_jet_mlp")


def beta_ramp(beta: float, epochs: int):
    """Keras callback: every HGQ layer's beta log-linearly from beta/100 (epoch 0) to beta (half of the
    epochs), then beta; HGQ keeps beta in a per-layer variable, so assigning it changes the loss."""
    import tensorflow as tf

    ramp = max(1, epochs // 2)

    class BetaRamp(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            value = beta * 100.0 ** (min(epoch, ramp) / ramp - 1.0)
            for layer in self.model.layers:
                if hasattr(layer, "beta"):
                    layer.beta.assign(value)

    return BetaRamp()


def train_student(data: dict, teacher, beta: float, args):
    """The trained HGQ model and its history (distilled; beta ramp, ResetMinMax, FreeBOPs)."""
    import tensorflow as tf
    from HGQ import FreeBOPs, ResetMinMax

    from trigger.compress.distill import classification_loss, packed_accuracy, teacher_logits
    from trigger.config import ModelConfig, load_config
    from trigger.models.training import epoch_progress
    from trigger.stages.synth import teacher_inputs

    distill = load_config(REPO / "configs" / "jet_mlp.yaml", ModelConfig).student.distillation
    x_teacher = teacher_inputs(data["x_raw"], data["x"], data["meta"], data["teacher_meta"])
    packed = np.concatenate([data["y"][:, None].astype(np.float32), teacher_logits(teacher, x_teacher)], axis=1)
    i_train, i_val, _ = data["idx"]
    model = build_student(beta / 100.0)
    model.compile(optimizer=tf.keras.optimizers.Adam(args.lr), metrics=[packed_accuracy],
                  loss=classification_loss(distill.alpha, distill.temperature, True))
    # FreeBOPs writes logs["bops"] before the progress callback shows it
    callbacks = [beta_ramp(beta, args.epochs), ResetMinMax(), FreeBOPs(),
                 epoch_progress(args.epochs, f"HGQ beta {beta:g}", show=lambda k: k in ("loss", "val_accuracy", "bops"))]
    history = model.fit(data["x"][i_train], packed[i_train], validation_data=(data["x"][i_val], packed[i_val]),
                        epochs=args.epochs, batch_size=args.batch_size, verbose=0, callbacks=callbacks)
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}, distill


def synth_row(proxy_path: Path, strategy: str, data: dict, args, out: Path) -> dict:
    """``trigger.stages.synthesize`` of the saved proxy model with ``strategy``: csim and the estimate
    after logic synthesis."""
    from trigger.config import SynthConfig
    from trigger.contracts import DSP_LUT_WEIGHT
    from trigger.stages.synth import synthesize

    n_test = len(data["idx"][2])
    config = SynthConfig(strategy=strategy, max_csim_events=args.csim_events or n_test)
    t0 = time.perf_counter()
    report = synthesize(proxy_path, config=config, data=args.data, teacher=args.teacher, out=out, force=True,
                        seed=args.seed).report
    synth = report.targets.synth
    res = synth.resources
    physics = report.csim.physics
    return {"strategy": strategy, "csim_events": report.csim.n_events,
            "bit_exact_fraction": report.csim.bit_exact_fraction,
            "csim_accuracy": physics.csim.accuracy, "teacher_accuracy_csim_events": physics.teacher.accuracy,
            "LUT": res.LUT, "DSP": res.DSP, "FF": res.FF, "latency_ns": synth.latency.ns,
            "latency_cycles": synth.latency.max_cycles, "interval": synth.latency.interval,
            "cost": res.LUT + DSP_LUT_WEIGHT * res.DSP, "not_modelled": report.estimate.not_modelled,
            "wall_s": round(time.perf_counter() - t0, 1), "project": str(out)}


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Argmax accuracy of ``model``'s outputs."""
    return float(np.mean(np.argmax(model.predict(x, batch_size=4096, verbose=0), axis=1) == y))


def run_student(beta: float, args) -> dict:
    """Train, trace, save and convert one HGQ student; writes and returns its result.json."""
    import tensorflow as tf
    from HGQ import to_proxy_model, trace_minmax

    from trigger.models.io import load_meta, load_model, save_model
    from trigger.runtime import set_seed

    folder = Path(args.out) / tag_of(beta, args.seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = load_split(args)
    data["teacher_meta"] = load_meta(args.teacher)
    set_seed(args.seed)
    tf.keras.utils.set_random_seed(args.seed)
    teacher = load_model(args.teacher)
    t0 = time.perf_counter()
    say(f"beta {beta:g}: training {args.epochs} epochs on {len(data['idx'][0])} events")
    model, history, distill = train_student(data, teacher, beta, args)
    train_s = time.perf_counter() - t0
    i_train, _, i_test = data["idx"]
    ebops = float(trace_minmax(model, data["x"][i_train], verbose=False))
    proxy = to_proxy_model(model)
    proxy_path = folder / "proxy.h5"
    meta = data["meta"].to_dict() | {"role": "student", "bits": None, "sparsity": None, "input_bits": None,
                                     "input_integer": None, "student_init": None, "teacher_file": str(args.teacher)}
    save_model(proxy, proxy_path, meta=meta, force=True)
    x_test, y_test = data["x"][i_test], data["y"][i_test]
    x_teacher = data["teacher_meta"].prepare_inputs(data["x_raw"][i_test])
    result = {"beta": beta, "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
              "distillation": {"alpha": distill.alpha, "temperature": distill.temperature},
              "ebops": ebops, "train_s": round(train_s, 1), "n_train": int(len(i_train)), "n_test": int(len(i_test)),
              "hgq_accuracy": accuracy(model, x_test, y_test), "proxy_accuracy": accuracy(proxy, x_test, y_test),
              "teacher_accuracy": accuracy(teacher, x_teacher, y_test),
              "final_val_accuracy": history["val_accuracy"][-1], "proxy": str(proxy_path), "firmware": {}}
    say(f"beta {beta:g}: EBOPs {ebops:.0f}, test accuracy {result['proxy_accuracy']:.4f} "
        f"(teacher {result['teacher_accuracy']:.4f}), {train_s:.0f} s")
    for key, strategy in STRATEGIES.items():
        say(f"beta {beta:g}: trigger synth, {strategy}")
        row = synth_row(proxy_path, strategy, data, args, folder / f"fw_{key}")
        result["firmware"][key] = row
        say(f"beta {beta:g} {strategy}: bit-exact {row['bit_exact_fraction']}, csim accuracy "
            f"{row['csim_accuracy']:.4f}, LUT {row['LUT']}, DSP {row['DSP']}, cost {row['cost']}, "
            f"{row['latency_ns']} ns")
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "result.json").write_text(json.dumps(result, indent=1))
    return result


# --- the sweep and the report ---------------------------------------------------------------------

def run_sweep(args) -> None:
    """One subprocess per beta (``--jobs`` at a time, each one thread pool of TensorFlow); a failed
    student is reported and the others go on."""
    pending = list(args.betas)
    running: list[tuple[float, subprocess.Popen]] = []
    failed = []
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    while pending or running:
        while pending and len(running) < args.jobs:
            beta = pending.pop(0)
            cmd = [sys.executable, __file__, "--student", repr(beta)] + passthrough(args)
            running.append((beta, subprocess.Popen(cmd, env=env)))
        time.sleep(2)
        for beta, proc in list(running):
            if proc.poll() is not None:
                running.remove((beta, proc))
                if proc.returncode != 0:
                    failed.append(beta)
                    say(f"beta {beta:g} failed (exit {proc.returncode})")
    if failed:
        say(f"failed students: {failed}; the report holds the others")


def passthrough(args) -> list[str]:
    """The options a student subprocess needs, as given to the driver."""
    out = []
    for key in ("data", "teacher", "reference", "out", "epochs", "batch_size", "lr", "seed", "csim_events"):
        value = getattr(args, key)
        if value is not None:
            out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def scan_front(scan_dir: Path) -> tuple[list[dict], list[dict]]:
    """(every complete trial, the scan's Pareto front) as {number, accuracy, cost} rows; the front is
    trigger.scan.results.pareto_front (inside the budget; accuracy, cost and latency)."""
    from trigger.scan.results import pareto_front, read_records

    records = read_records(scan_dir)

    def row(r) -> dict:
        return {"number": r.number, "accuracy": float(r.metric), "cost": float(r.cost), "LUT": r.LUT, "DSP": r.DSP,
                "latency_ns": r.latency_ns, "strategy": r.params.get("synth.strategy")}

    complete = [row(r) for r in records if r.status == "complete" and r.metric is not None and r.cost is not None]
    return complete, sorted((row(r) for r in pareto_front(records)), key=lambda p: p["cost"])


def collect(args) -> dict:
    """Every student's result.json under ``--out`` (by beta), the scan's trials and front."""
    results = [json.loads(p.read_text()) for p in sorted(Path(args.out).glob("*/result.json"))]
    if not results:
        raise SystemExit(f"no result.json under {args.out}: run the benchmark first")
    results.sort(key=lambda r: (r["beta"], r["seed"]))
    trials, front = scan_front(Path(args.scan))
    command = Path(args.out) / COMMAND_FILE  # the sweep's command, also after --report-only
    return {"date": datetime.date.today().isoformat(), "command": command.read_text().strip(),
            "data": args.data, "teacher": args.teacher, "reference": args.reference, "scan": args.scan,
            "hidden": list(HIDDEN), "students": results, "scan_trials": trials, "scan_front": front}


def plot(summary: dict, path: Path) -> None:
    """Accuracy vs cost (log x): HGQ's students (Latency, DA), the scan's trials and front, the teacher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    trials, front = summary["scan_trials"], summary["scan_front"]
    ax.scatter([t["cost"] for t in trials], [t["accuracy"] for t in trials], s=12, c="0.75",
               label="trigger scan, complete trials")
    ax.plot([t["cost"] for t in front], [t["accuracy"] for t in front], "o-", c="tab:blue", ms=5,
            label="trigger scan, Pareto front (in budget)")
    for key, style in (("latency", ("s", "tab:red")), ("da", ("D", "tab:green"))):
        pts = [(s["firmware"][key]["cost"], s["firmware"][key]["csim_accuracy"], s["beta"])
               for s in summary["students"] if key in s["firmware"]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style[0] + "--", c=style[1], ms=6,
                label=f"HGQ 32-16-16, {STRATEGIES[key]}")
        for cost, acc, beta in pts:
            ax.annotate(f"{beta:.0e}", (cost, acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
    teacher = summary["students"][0]["teacher_accuracy"]
    ax.axhline(teacher, ls=":", c="k", label=f"teacher (float) {teacher:.4f}")
    ax.set_xscale("log")
    ax.set_xlabel("cost = LUT + 55 x DSP (estimate after logic synthesis)")
    ax.set_ylabel("test accuracy (csim)")
    ax.set_title("jet MLP: HGQ students vs trigger's scan (same data, split, teacher)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def markdown(summary: dict) -> str:
    """docs/hgq.md: what was run, the table, what differs from the issue's recipe."""
    students = summary["students"]
    first = students[0]
    lines = [
        "# HGQ students of the jet MLP on our data (issue 29 item 1, first family)", "",
        f"Made on {summary['date']} by `PYTHONPATH=$PWD .venv/bin/python {summary['command']}` "
        f"(`{summary['data']}`, {first['n_train']} training and {first['n_test']} test jets; teacher "
        f"`{summary['teacher']}`; split and input transform of `{summary['reference']}`). The code and its "
        "recipe are in `benchmarks/bench_hgq.py`; the numbers are `docs/hgq.json`, the plot `docs/hgq_jet_mlp.png`.", "",
        f"HGQ 0.2.6, HQuantize + HDense {'-'.join(map(str, summary['hidden']))} relu + HDense 5 logits, per-weight "
        f"and per-activation bits (init 2), {first['epochs']} epochs, batch {first['batch_size']}, Adam "
        f"{first['lr']:g}, trigger's distillation loss (alpha {first['distillation']['alpha']:g}, T "
        f"{first['distillation']['temperature']:g}), beta ramped log-linearly from beta/100 to beta over the "
        "first half, ResetMinMax + FreeBOPs, last epoch kept, trace_minmax on the training split, "
        "to_proxy_model; `trigger.stages.synthesize` with the default SynthConfig (Vitis, xcvu13p, 5 ns, "
        "io_parallel, reuse 1) as Latency and as distributed_arithmetic, csim on the test split.", "",
        f"Teacher test accuracy: {first['teacher_accuracy']:.4f}. Cost = LUT + 55 x DSP, trigger's estimate "
        "after logic synthesis (not place and route; it does not see per-element widths: docs/architecture.md). "
        "Accuracy: proxy model on the whole test split; csim on its events "
        f"(statistical error of one accuracy on {first['n_test']} jets: about "
        f"{100 * np.sqrt(0.65 * 0.35 / first['n_test']):.2f} pt). The estimator has no rule for HGQ's "
        "casts (FixedPointQuantizer): the last column counts those it leaves out of the design "
        "(`report.json` `estimate.not_modelled`), so LUT and FF are lower bounds where it is not 0; the "
        "cast's own logic (rounding, saturation) is what is missing.", "",
        "| beta | seed | EBOPs (HGQ) | HGQ acc | drop vs teacher (pt) | strategy | csim acc | bit-exact | LUT | DSP | FF "
        "| latency ns | cost | casts the estimate leaves out |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in students:
        for key, fw in s["firmware"].items():
            lines.append(
                f"| {s['beta']:.0e} | {s['seed']} | {s['ebops']:.0f} | {s['proxy_accuracy']:.4f} | "
                f"{100 * (s['teacher_accuracy'] - s['proxy_accuracy']):.2f} | {STRATEGIES[key]} | "
                f"{fw['csim_accuracy']:.4f} | {fw['bit_exact_fraction']} | {fw['LUT']} | {fw['DSP']} | {fw['FF']} | "
                f"{fw['latency_ns']} | {fw['cost']} | {len(fw['not_modelled'] or [])} |")
    front = summary["scan_front"]
    lines += ["", f"trigger's scan (`{summary['scan']}`, {len(summary['scan_trials'])} complete trials), its "
              "Pareto front (`trigger.scan.results.pareto_front`: inside the budget; accuracy, cost, latency). "
              "The scan's accuracy is its csim on 500 test events (about +-2 pt each), so read the plot's "
              "scan points with that error:", "",
              "| trial | accuracy | LUT | DSP | cost | latency ns | strategy |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {p['number']} | {p['accuracy']:.4f} | {p['LUT']:.0f} | {p['DSP']:.0f} | {p['cost']:.0f} | "
              f"{p['latency_ns']} | {p['strategy']} |" for p in front]
    lines += ["", "## What differs from the issue's recipe", "",
              f"- {first['epochs']} epochs (the probe: 200); the ramp spans half of them.",
              "- One seed per beta (the issue's probe had two seeds at one beta).",
              f"- {first['n_test']} test jets (the probe: 20k jets in all, 4k test).",
              "- No `trigger rtl` (yosys) counts for the DA designs yet.", ""]
    return "\n".join(lines)


def write_report(args) -> None:
    """docs/hgq.json, docs/hgq.md and docs/hgq_jet_mlp.png from the students' records."""
    summary = collect(args)
    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "hgq.json").write_text(json.dumps(summary, indent=1) + "\n")
    (docs / "hgq.md").write_text(markdown(summary))
    plot(summary, docs / "hgq_jet_mlp.png")
    say(f"wrote {docs / 'hgq.md'}, {docs / 'hgq.json'}, {docs / 'hgq_jet_mlp.png'}")


def parse_args(argv=None):
    """The command line (the module docstring has the commands)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/jets.h5")
    p.add_argument("--teacher", default="models/jet_mlp/teacher.h5")
    p.add_argument("--reference", default="models/jet_mlp/model.h5", help="the student whose split/transform is used")
    p.add_argument("--scan", default="scans/jet_mlp", help="trigger's scan folder for the front")
    p.add_argument("--out", default="benchmarks/out/hgq", help="students and firmware projects (git-ignored)")
    p.add_argument("--docs", default="docs", help="where hgq.md, hgq.json and hgq_jet_mlp.png go")
    p.add_argument("--betas", type=float, nargs="+", default=[3e-6, 1e-5, 3e-5])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--csim-events", type=int, default=None, help="default: the whole test split")
    p.add_argument("--jobs", type=int, default=2, help="students trained at once")
    p.add_argument("--student", type=float, default=None, help=argparse.SUPPRESS)  # one student (a subprocess)
    p.add_argument("--report-only", action="store_true", help="only rewrite docs/hgq.* from --out")
    return p.parse_args(argv)


def main(argv=None) -> None:
    """Run the sweep (or one student), then the report."""
    args = parse_args(argv)
    os.chdir(REPO)
    if args.student is not None:
        run_student(args.student, args)
        return
    if not args.report_only:
        say(f"betas {args.betas}, {args.epochs} epochs, seed {args.seed}, data {args.data}")
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / COMMAND_FILE).write_text(" ".join(["benchmarks/bench_hgq.py"] + sys.argv[1:]) + "\n")
        run_sweep(args)
    write_report(args)


if __name__ == "__main__":
    main()
