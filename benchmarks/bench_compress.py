"""Benchmark of the compression stage on the jet MLP (issue 6, item 6).

Float teacher (16-64-32-32-5, the hls4ml tutorial's network) vs quantization-aware-pruned QKeras
students with and without knowledge distillation, at several bit widths and sparsities: test
accuracy, mean AUC and BOPs. Every student starts from the teacher's float weights (what
`trigger compress` does) and is trained by `trigger.compress.compress_model`, the same code path as
`trigger compress` and `trigger train`.

    .venv/bin/python benchmarks/bench_compress.py --data data/jets_bench.h5 --json bench_compress.json

Prints a markdown table (recorded in docs/compression.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="jets HDF5 from `trigger data jets`")
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.5, 0.75, 0.9])
    parser.add_argument("--schedule", choices=["constant", "polynomial"], default="polynomial")
    parser.add_argument("--epochs", type=int, default=30, help="student epochs (early stopping on val)")
    parser.add_argument("--teacher-epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from trigger.compress import compress_model, model_bops, model_sparsity
    from trigger.config import DistillSection, MLPArch, PruningSection, QuantSection, TrainSection
    from trigger.data import load_dataset
    from trigger.data.splits import split_indices
    from trigger.models.inputs import fit_input_transform
    from trigger.models.io import prepare_inputs
    from trigger.models.zoo import build_mlp
    from trigger.report.metrics import classifier_metrics
    from trigger.runtime import set_seed, setup_logging

    setup_logging(0)
    ds = load_dataset(args.data, "hlf")
    i_train, i_val, i_test = split_indices(len(ds.y), 0.2, 0.2, args.seed)
    offset, scale = fit_input_transform(ds.x[i_train], "standardize")
    x = prepare_inputs(ds.x, {"input_offset": offset, "input_scale": scale})
    y = ds.y
    print(f"data: {args.data}, {len(y)} jets ({len(i_train)} train, {len(i_val)} val, {len(i_test)} test), "
          f"classes {ds.class_names}", flush=True)

    set_seed(args.seed)
    teacher = build_mlp(MLPArch(hidden=[64, 32, 32]), (16,), len(ds.class_names), name="jet_mlp_teacher")
    teacher.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    teacher.fit(x[i_train], y[i_train], validation_data=(x[i_val], y[i_val]), epochs=args.teacher_epochs,
                batch_size=256, verbose=0, callbacks=[tf.keras.callbacks.EarlyStopping(
                    patience=args.patience * 2, restore_best_weights=True)])
    t_teacher = time.perf_counter() - t0

    def evaluate(model) -> dict:
        p = model.predict(x[i_test], batch_size=4096, verbose=0)
        return classifier_metrics(y[i_test], p, ds.class_names)

    m_teacher = evaluate(teacher)
    bops_teacher = model_bops(teacher, float_bits=32)["total"]
    rows = [{"model": "float teacher", "bits": 32, "target_sparsity": 0.0, "distill": None,
             "accuracy": m_teacher["accuracy"], "mean_auc": m_teacher["mean_auc"], "bops": bops_teacher,
             "sparsity": 0.0, "seconds": t_teacher}]
    print(f"teacher: accuracy {m_teacher['accuracy']:.4f}, mean AUC {m_teacher['mean_auc']:.4f}, "
          f"BOPs {bops_teacher:.4g} ({t_teacher:.0f} s)", flush=True)

    train = TrainSection(epochs=args.epochs, batch_size=256, learning_rate=1e-3, patience=args.patience)
    for bits in args.bits:
        quant = QuantSection(weight_bits=bits, weight_integer=0, activation_bits=bits, activation_integer=0,
                             input_bits=16, input_integer=6)
        for target in args.sparsity:
            pruning = PruningSection(sparsity=target, schedule=args.schedule, begin_fraction=0.1, end_fraction=0.5)
            for distill in (False, True):
                t0 = time.perf_counter()
                result = compress_model(teacher, x_train=x[i_train], y_train=y[i_train], x_val=x[i_val],
                                        y_val=y[i_val], task="classification",
                                        teacher=teacher if distill else None, quant=quant, pruning=pruning,
                                        distillation=DistillSection(enabled=distill, alpha=0.1, temperature=4.0),
                                        train=train, seed=args.seed)
                seconds = time.perf_counter() - t0
                m = evaluate(result.model)
                sp = model_sparsity(result.model)
                pruned = [sp[k] for k in result.targets] or [0.0]
                row = {"model": "QAP student", "bits": bits, "target_sparsity": target, "distill": distill,
                       "accuracy": m["accuracy"], "mean_auc": m["mean_auc"],
                       "bops": model_bops(result.model)["total"], "sparsity": float(np.mean(pruned)),
                       "sparsity_total": sp["total"], "epochs": len(result.history["loss"]),
                       "best_epoch": result.best_epoch + 1, "seconds": seconds}
                rows.append(row)
                print(f"{bits}-bit, {target:.0%} target, distill={distill}: accuracy {m['accuracy']:.4f} "
                      f"({m['accuracy'] - m_teacher['accuracy']:+.4f}), sparsity {row['sparsity']:.3f}, "
                      f"BOPs {row['bops']:.4g}, {row['epochs']} epochs, {seconds:.0f} s", flush=True)

    print()
    print("| model | bits | sparsity (target / reached) | distillation | accuracy | Δ vs teacher | mean AUC "
          "| BOPs | BOPs ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        distill = "" if r["distill"] is None else ("yes" if r["distill"] else "no")
        sparsity = "0" if r["model"] == "float teacher" else f"{r['target_sparsity']:.2f} / {r['sparsity']:.3f}"
        print(f"| {r['model']} | {r['bits']} | {sparsity} | {distill} | {r['accuracy']:.4f} | "
              f"{r['accuracy'] - m_teacher['accuracy']:+.4f} | {r['mean_auc']:.4f} | {r['bops']:.3g} | "
              f"{bops_teacher / r['bops']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"data": str(args.data), "n_jets": int(len(y)), "seed": args.seed,
                                         "schedule": args.schedule, "epochs": args.epochs, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
