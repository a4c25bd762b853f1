"""``trigger compress MODEL.h5 --data FILE``: the float model is both the starting point and the
teacher; writes the QKeras student OUT.h5 and OUT.json (:class:`trigger.contracts.CompressReport`:
teacher vs student on the test split).

The data split is the one recorded in the model file (:meth:`trigger.contracts.ModelMeta.split`), so
the test split is one the teacher never saw. A model saved elsewhere records none: it is split with
the documented fallback of :data:`FALLBACK_FRACTIONS` and the compression seed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from trigger.compress import compress_model, model_bops, model_sparsity
from trigger.compress.quantize import fold_input_batchnorm_meta, quantize_model, quiet_keras_warnings
from trigger.config import CompressConfig
from trigger.contracts import CompressReport, ModelMeta
from trigger.data.dataset import H5_ERRORS, VIEWS, check_data_file, load_dataset
from trigger.errors import TriggerError
from trigger.models.graph import anomaly_score, logits_cut
from trigger.models.io import check_model_file, load_meta, load_model, save_model
from trigger.models.training import require_finite
from trigger.report.metrics import evaluate, headline, softmax
from trigger.runtime import atomic_path, check_output_free, log, reading, set_seed

#: (validation, test) fractions of a model file that records no split (not written by trigger).
FALLBACK_FRACTIONS = (0.2, 0.2)


@dataclass
class CompressResult:
    """What ``trigger compress`` wrote and measured."""

    model_path: Path
    json_path: Path
    report: CompressReport

    @property
    def task(self) -> str:
        return self.report.task

    def summary(self) -> str:
        """A few lines for the terminal."""
        r = self.report
        bops, sparsity = r.bops, r.sparsity
        ratio = bops.ratio
        if sparsity.targets:
            reached = [sparsity.layers[name] for name in sparsity.targets]
            pruned_line = (f"{np.mean(reached):.3f} on {len(sparsity.targets)} pruned layers "
                           f"(target {np.mean(list(sparsity.targets.values())):.2f})")
        else:
            pruned_line = "no layer pruned"
        return "\n".join([
            f"wrote {self.model_path} and {self.json_path}",
            f"teacher (float): {headline(r.teacher.model_dump(), r.task)}",
            f"student (QKeras): {headline(r.student.model_dump(), r.task)}",
            f"sparsity: {pruned_line}, {sparsity.total:.3f} of all kernels",
            f"BOPs: teacher {bops.teacher.total:.4g}, student {bops.student.total:.4g}"
            + (f" ({ratio:.1f}x fewer)" if ratio else ""),
        ])


def _choose_view(data: Path, model, meta: ModelMeta | None) -> str:
    """The view of ``data`` whose per-event shape is the model's input shape (the model file's
    recorded view first)."""
    import h5py

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
    except (*H5_ERRORS, AttributeError):  # a damaged file, or a view that is a group
        raise TriggerError(f"cannot read {data} as HDF5; pass a file from `trigger data jets|ad`") from None
    if not shapes:
        raise TriggerError(f"{data} is not a `trigger data` file (no known views); make one with `trigger data jets|ad`")
    preferred = [meta.view] if meta is not None and meta.view in shapes else []
    for view in preferred + sorted(shapes):
        if shapes[view] == want:
            return view
    listed = ", ".join(f"{v} {s}" for v, s in shapes.items())
    raise TriggerError(f"model '{model.name}' takes inputs of shape {want} but {data} has views {listed}; "
                       "pass the data file the model was trained on")


def outputs(model, x: np.ndarray, task: str) -> np.ndarray:
    """Class probabilities (softmax of the logits in float64) or anomaly scores of ``model`` on ``x``."""
    if task == "classification":
        head, is_logits = logits_cut(model)
        out = np.asarray(head.predict(x, batch_size=4096, verbose=0), dtype=np.float64)
        return require_finite(softmax(out) if is_logits else out, f"model '{model.name}'")
    return require_finite(anomaly_score(model, x), f"model '{model.name}'")


def split_meta(meta: ModelMeta | None, seed: int) -> ModelMeta:
    """The metadata whose :meth:`ModelMeta.split` rebuilds the data split: the model file's own, or,
    for a model that records no split, :data:`FALLBACK_FRACTIONS` with the compression ``seed``."""
    if meta is not None and meta.records_split:
        return meta
    log.info("the model file records no data split: validation/test fractions %s with seed %d",
             FALLBACK_FRACTIONS, seed)
    base = meta.to_dict() if meta is not None else {}
    return ModelMeta.build(**base | {"seed": seed, "val_fraction": FALLBACK_FRACTIONS[0],
                                     "test_fraction": FALLBACK_FRACTIONS[1]})


def compress_file(model: str | os.PathLike, *, data: str | os.PathLike, config: CompressConfig,
                  out: str | os.PathLike | None = None, force: bool = False, trust: bool = False) -> CompressResult:
    """Compress the float Keras model at ``model`` with the data file ``data``.

    ``config`` carries every setting (command-line flags are applied to it with
    :func:`trigger.config.apply_overrides`). Writes ``out`` (default ``MODEL_compressed.h5``) and the
    same path with ``.json``; both are refused if they exist unless ``force``. ``trust``: load a model
    file that carries code (a Lambda layer), refused otherwise (``--trust-model``).
    """
    with quiet_keras_warnings():
        return _compress_file(Path(model), data=data, config=config, out=out, force=force, trust=trust)


def _output_paths(model_path: Path, out, force: bool) -> tuple[Path, Path]:
    out_path = Path(out) if out is not None else model_path.with_name(f"{model_path.stem}_compressed.h5")
    if out_path.suffix != ".h5":
        raise TriggerError(f"--out {out_path} must end in .h5 (the JSON report goes next to it)")
    json_path = out_path.with_suffix(".json")
    if out_path.resolve() == model_path.resolve():
        raise TriggerError(f"--out {out_path} is the input model; choose another output")
    check_output_free(out_path, force, folder=False)  # refuse before minutes of training, not after
    check_output_free(json_path, force, folder=False)
    return out_path, json_path


def _check_inputs(model_path: Path, data: Path, trust: bool = False) -> ModelMeta | None:
    """The model file's metadata, after one-line errors for a model or data file that is missing,
    damaged or of the wrong kind, or data of another task than the model's (all before TensorFlow
    is imported, so a wrong file costs no seconds)."""
    with reading(model_path, "a Keras model", "pass a float Keras model saved with model.save() (.h5)"):
        check_model_file(model_path, trust=trust)
        meta = load_meta(model_path)
    kind = check_data_file(data)
    task = "anomaly" if kind == "ad" else "classification"
    if meta is not None and meta.task and meta.task != task:
        raise TriggerError(f"{model_path} is a model for {meta.task} but {data} holds {kind} data; "
                           "pass the data the model was trained on")
    return meta


def _compress_file(model_path: Path, *, data, config: CompressConfig, out, force: bool,
                   trust: bool = False) -> CompressResult:
    out_path, json_path = _output_paths(model_path, out, force)
    meta = _check_inputs(model_path, Path(data), trust)
    teacher = load_model(model_path, trust=trust)
    teacher, meta = fold_input_batchnorm_meta(teacher, meta)  # an input BatchNormalization -> input transform
    quantize_model(teacher, config.quantization)  # an unsupported layer fails here, before any data is read
    view = _choose_view(Path(data), teacher, meta)
    dataset = load_dataset(data, view)
    task = "anomaly" if dataset.kind == "ad" else "classification"
    if meta is not None and meta.task and meta.task != task:
        raise TriggerError(f"{model_path} is a {meta.task} model but {data} is a {dataset.kind} file; "
                           "pass the data the model was trained on")
    split = split_meta(meta, config.seed)
    i_train, i_val, i_test = split.split(len(dataset.y), source=str(model_path))
    x, y = split.prepare_inputs(dataset.x), dataset.y
    log.info("compress %s on %s (%s, view %s): %d train, %d validation, %d test events", model_path, data,
             task, view, len(i_train), len(i_val), len(i_test))

    import tensorflow as tf  # noqa: F401  (after the cheap checks above)

    set_seed(config.seed)
    distillation = config.distillation
    compressed = compress_model(teacher, x_train=x[i_train], y_train=y[i_train], x_val=x[i_val], y_val=y[i_val],
                                task=task, teacher=teacher if distillation.enabled else None,
                                quant=config.quantization, pruning=config.pruning, distillation=distillation,
                                train=config.train, seed=config.seed)
    names = list(dataset.class_names)
    metrics = {role: evaluate(y[i_test], outputs(m, x[i_test], task), task, names)
               for role, m in (("teacher", teacher), ("student", compressed.model))}
    report = _report(model_path, data, view, task, names, (i_train, i_val, i_test), split, config, teacher,
                     compressed, metrics)
    student_meta = ModelMeta.build(**(meta.to_dict() if meta is not None else {}) | {
        "role": "student", "task": task, "view": view, "class_names": names, "bits": compressed.bits,
        "sparsity": report.sparsity.layers | {"total": report.sparsity.total},
        "input_bits": config.quantization.input_bits, "input_integer": config.quantization.input_integer,
        "teacher_file": str(model_path), "seed": split.seed, "val_fraction": split.val_fraction,
        "test_fraction": split.test_fraction})
    _save(compressed.model, out_path, json_path, report, student_meta, force)
    return CompressResult(model_path=out_path, json_path=json_path, report=report)


def _report(model_path: Path, data, view: str, task: str, class_names: list[str], indices, split: ModelMeta,
            config: CompressConfig, teacher, compressed, metrics: dict[str, dict]) -> CompressReport:
    """OUT.json (:class:`CompressReport`), in the order it has always been written."""
    i_train, i_val, i_test = indices
    student = compressed.model
    bops_teacher, bops_student = model_bops(teacher, float_bits=32), model_bops(student, float_bits=32)
    bops = {"teacher": dict(bops_teacher), "student": dict(bops_student),
            "ratio": bops_teacher["total"] / bops_student["total"] if bops_student["total"] else None}
    sparsity = {"target": config.pruning.sparsity, "schedule": config.pruning.schedule,
                "targets": compressed.targets,
                "layers": {k: v for k, v in compressed.sparsity.items() if k != "total"},
                "total": compressed.sparsity["total"], "quantized": model_sparsity(student, quantized=True)}
    data_block = {"file": str(data), "view": view, "class_names": class_names, "n_train": int(len(i_train)),
                  "n_val": int(len(i_val)), "n_test": int(len(i_test)), "val_fraction": split.val_fraction,
                  "test_fraction": split.test_fraction, "split_seed": split.seed,
                  "train_background_only": task == "anomaly"}
    settings = {"quantization": config.quantization.model_dump(mode="json"),
                "pruning": config.pruning.model_dump(mode="json"),
                "distillation": config.distillation.model_dump(mode="json"),
                "train": config.train.model_dump(mode="json"), "seed": config.seed}
    training = {"objective": compressed.objective, "distilled": compressed.distilled,
                "best_epoch": compressed.best_epoch + 1, "epochs_run": len(compressed.history.get("loss", [])),
                "history": compressed.history}
    return CompressReport.build(teacher=metrics["teacher"], student=metrics["student"], sparsity=sparsity,
                                bits=compressed.bits, bops=bops, task=task, model=str(model_path), data=data_block,
                                config=settings, training=training)


def _save(student, out_path: Path, json_path: Path, report: CompressReport, meta: ModelMeta, force: bool) -> None:
    """OUT.json and OUT.h5, each written atomically."""
    import tensorflow as tf

    # Keras 2.14 logs "Compiled the loaded model, but the compiled metrics have yet to be built" on
    # every .h5 save of an uncompiled model; it is noise for a saved inference model
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        with atomic_path(json_path, force=force) as tmp_json:
            tmp_json.write_text(report.to_json(indent=1).rstrip("\n"))
            save_model(student, out_path, meta=meta, force=force)
    finally:
        tf_logger.setLevel(level)
