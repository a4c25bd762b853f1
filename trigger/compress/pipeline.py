"""``trigger compress MODEL.h5 --data FILE``: the float model is both the starting point and the
teacher; writes the QKeras student OUT.h5 and OUT.json (teacher vs student on the test split)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trigger.compress.bops import model_bops
from trigger.compress.core import compress_model, logits_of
from trigger.compress.distill import anomaly_score
from trigger.compress.prune import model_sparsity
from trigger.compress.quantize import quantize_model, quiet_keras_warnings
from trigger.config import CompressConfig
from trigger.errors import TriggerError
from trigger.runtime import atomic_path, check_output_free, jsonable, log, set_seed


@dataclass
class CompressResult:
    """What ``trigger compress`` wrote and measured."""

    model_path: Path
    json_path: Path
    task: str
    teacher: dict
    student: dict
    sparsity: dict
    bits: dict
    bops: dict
    report: dict = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the terminal."""
        def headline(m: dict) -> str:
            if self.task == "classification":
                return f"accuracy {m['accuracy']:.4f}, mean AUC {m['mean_auc']:.4f}"
            eff = ", ".join(f"{k} {v:.3f}" for k, v in m["efficiency"].items())
            return f"mean AUC {m['mean_auc']:.4f}, efficiency at {m['rate_resolved_khz']:g} kHz: {eff}"

        ratio = self.bops.get("ratio")
        targets = self.sparsity["targets"]
        if targets:
            reached = [self.sparsity["layers"][name] for name in targets]
            pruned_line = (f"{np.mean(reached):.3f} on {len(targets)} pruned layers "
                           f"(target {np.mean(list(targets.values())):.2f})")
        else:
            pruned_line = "no layer pruned"
        return "\n".join([
            f"wrote {self.model_path} and {self.json_path}",
            f"teacher (float): {headline(self.teacher)}",
            f"student (QKeras): {headline(self.student)}",
            f"sparsity: {pruned_line}, {self.sparsity['total']:.3f} of all kernels",
            f"BOPs: teacher {self.bops['teacher']['total']:.4g}, student {self.bops['student']['total']:.4g}"
            + (f" ({ratio:.1f}x fewer)" if ratio else ""),
        ])


def _choose_view(data: Path, model, meta: dict) -> str:
    """The view of ``data`` whose per-event shape is the model's input shape (the model file's
    recorded view first)."""
    import h5py

    from trigger.data.dataset import VIEWS

    if len(model.inputs) != 1:
        raise TriggerError(f"model '{model.name}' has {len(model.inputs)} inputs; compression reads one data view")
    want = tuple(model.input_shape[1:])
    if not Path(data).is_file():
        raise TriggerError(f"data file {data} not found; make it with `trigger data jets|ad --out {data}`")
    try:
        with h5py.File(data, "r") as f:
            kind = f.attrs.get("kind")
            kind = kind.decode() if isinstance(kind, bytes) else kind
            shapes = {v: tuple(f[v].shape[1:]) for v in VIEWS.get(kind, ()) if v in f}
    except OSError:
        raise TriggerError(f"cannot read {data} as HDF5; pass a file from `trigger data jets|ad`") from None
    if not shapes:
        raise TriggerError(f"{data} is not a `trigger data` file (no known views); make one with `trigger data jets|ad`")
    preferred = [meta["view"]] if meta.get("view") in shapes else []
    for view in preferred + sorted(shapes):
        if shapes[view] == want:
            return view
    listed = ", ".join(f"{v} {s}" for v, s in shapes.items())
    raise TriggerError(f"model '{model.name}' takes inputs of shape {want} but {data} has views {listed}; "
                       "pass the data file the model was trained on")


def _metrics(model, x: np.ndarray, y: np.ndarray, task: str, class_names: list[str]) -> dict:
    from trigger.report.metrics import anomaly_metrics, classifier_metrics, softmax

    if task == "classification":
        head, is_logits = logits_of(model)
        out = np.asarray(head.predict(x, batch_size=4096, verbose=0), dtype=np.float64)
        return classifier_metrics(y, softmax(out) if is_logits else out, class_names)
    return anomaly_metrics(y, anomaly_score(model, x), class_names[1:])


def compress_file(model: str | os.PathLike, *, data: str | os.PathLike, config: CompressConfig,
                  bits: int | None = None, sparsity: float | None = None, distill: bool | None = None,
                  out: str | os.PathLike | None = None, seed: int | None = None,
                  force: bool = False) -> CompressResult:
    """Compress the float Keras model at ``model`` with the data file ``data``.

    ``bits`` sets weight and activation bits, ``sparsity`` the pruning target and ``distill``
    distillation on/off, each overriding ``config``. The data split (fractions and seed) is the one
    recorded in the model file when it was written by ``trigger train``, so the test split is one the
    teacher never saw; otherwise 0.2/0.2 with ``seed``. Writes ``out`` (default
    ``MODEL_compressed.h5``) and the same path with ``.json``; both are refused if they exist
    unless ``force``.
    """
    with quiet_keras_warnings():
        return _compress_file(model, data=data, config=config, bits=bits, sparsity=sparsity, distill=distill,
                              out=out, seed=seed, force=force)


def _compress_file(model, *, data, config, bits, sparsity, distill, out, seed, force) -> CompressResult:
    from trigger.data import load_dataset
    from trigger.data.splits import split_indices
    from trigger.models.io import load_meta, load_model, prepare_inputs, save_model

    model_path = Path(model)
    out_path = Path(out) if out is not None else model_path.with_name(f"{model_path.stem}_compressed.h5")
    if out_path.suffix != ".h5":
        raise TriggerError(f"--out {out_path} must end in .h5 (the JSON report goes next to it)")
    json_path = out_path.with_suffix(".json")
    if out_path.resolve() == model_path.resolve():
        raise TriggerError(f"--out {out_path} is the input model; choose another output")
    check_output_free(out_path, force)  # refuse before minutes of training, not after
    check_output_free(json_path, force)

    quant, pruning, distillation = config.quantization, config.pruning, config.distillation
    if bits is not None:
        if not 2 <= bits <= 32:
            raise TriggerError(f"--bits must be between 2 and 32, got {bits}")
        quant = quant.model_copy(update={"weight_bits": bits, "activation_bits": bits})
    if sparsity is not None:
        if not 0 <= sparsity < 1:
            raise TriggerError(f"--sparsity must be in [0, 1), got {sparsity}")
        pruning = pruning.model_copy(update={"sparsity": float(sparsity)})
    if distill is not None:
        distillation = distillation.model_copy(update={"enabled": bool(distill)})
    seed = config.seed if seed is None else int(seed)

    meta = load_meta(model_path)
    teacher = load_model(model_path)
    quantize_model(teacher, quant)  # an unsupported layer fails here, before any data is read
    view = _choose_view(Path(data), teacher, meta)
    dataset = load_dataset(data, view)
    task = "anomaly" if dataset.kind == "ad" else "classification"
    if meta.get("task") and meta["task"] != task:
        raise TriggerError(f"{model_path} is a {meta['task']} model but {data} is a {dataset.kind} file; "
                           "pass the data the model was trained on")
    class_names = list(dataset.class_names)
    split_seed = int(meta.get("seed", seed))
    val_fraction = float(meta.get("val_fraction", 0.2))
    test_fraction = float(meta.get("test_fraction", 0.2))
    i_train, i_val, i_test = split_indices(len(dataset.y), val_fraction, test_fraction, split_seed)
    x = prepare_inputs(dataset.x, meta)
    y = dataset.y
    log.info("compress %s on %s (%s, view %s): %d train, %d validation, %d test events", model_path, data,
             task, view, len(i_train), len(i_val), len(i_test))

    import tensorflow as tf  # noqa: F401  (after the cheap checks above)

    set_seed(seed)
    compressed = compress_model(teacher, x_train=x[i_train], y_train=y[i_train], x_val=x[i_val], y_val=y[i_val],
                                task=task, teacher=teacher if distillation.enabled else None, quant=quant,
                                pruning=pruning, distillation=distillation, train=config.train, seed=seed)
    student = compressed.model
    teacher_metrics = _metrics(teacher, x[i_test], y[i_test], task, class_names)
    student_metrics = _metrics(student, x[i_test], y[i_test], task, class_names)
    bops_teacher = model_bops(teacher, float_bits=32)
    bops_student = model_bops(student, float_bits=32)
    bops = {"teacher": dict(bops_teacher), "student": dict(bops_student),
            "ratio": bops_teacher["total"] / bops_student["total"] if bops_student["total"] else None}
    sparsity_report = {
        "target": pruning.sparsity, "schedule": pruning.schedule, "targets": compressed.targets,
        "layers": {k: v for k, v in compressed.sparsity.items() if k != "total"},
        "total": compressed.sparsity["total"],
        "quantized": model_sparsity(student, quantized=True),
    }
    report = {
        "teacher": teacher_metrics,
        "student": student_metrics,
        "sparsity": sparsity_report,
        "bits": compressed.bits,
        "bops": bops,
        "task": task,
        "model": str(model_path),
        "data": {"file": str(data), "view": view, "class_names": class_names, "n_train": int(len(i_train)),
                 "n_val": int(len(i_val)), "n_test": int(len(i_test)), "val_fraction": val_fraction,
                 "test_fraction": test_fraction, "split_seed": split_seed,
                 "train_background_only": task == "anomaly"},
        "config": {"quantization": quant.model_dump(mode="json"), "pruning": pruning.model_dump(mode="json"),
                   "distillation": distillation.model_dump(mode="json"), "train": config.train.model_dump(mode="json"),
                   "seed": seed},
        "training": {"objective": compressed.objective, "distilled": compressed.distilled,
                     "best_epoch": compressed.best_epoch + 1, "epochs_run": len(compressed.history.get("loss", [])),
                     "history": compressed.history},
    }
    student_meta = {
        **meta, "role": "student", "task": task, "view": view, "class_names": class_names,
        "bits": compressed.bits, "sparsity": sparsity_report["layers"] | {"total": sparsity_report["total"]},
        "input_bits": quant.input_bits, "input_integer": quant.input_integer,
        "teacher_file": str(model_path), "seed": split_seed, "val_fraction": val_fraction,
        "test_fraction": test_fraction,
    }
    # Keras 2.14 logs "Compiled the loaded model, but the compiled metrics have yet to be built" on
    # every .h5 save of an uncompiled model; it is noise for a saved inference model
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        with atomic_path(json_path, force=force) as tmp_json:
            tmp_json.write_text(json.dumps(jsonable(report), indent=1))
            save_model(student, out_path, meta=student_meta, force=force)
    finally:
        tf_logger.setLevel(level)
    return CompressResult(model_path=out_path, json_path=json_path, task=task, teacher=teacher_metrics,
                          student=student_metrics, sparsity=sparsity_report, bits=compressed.bits, bops=bops,
                          report=report)
