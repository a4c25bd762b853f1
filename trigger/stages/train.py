"""`trigger train`: float teacher, QKeras student (through the compression stage), metrics, plots.

One call of :func:`train` does, for the family a config names:

1. load the config's data view, split it with :meth:`trigger.contracts.ModelMeta.split` (train /
   validation / test from the seed; the test split is never seen in training), fit the fixed input
   transform on the training split (:mod:`trigger.models.inputs`);
2. train the float teacher (:mod:`trigger.models.training`) with early stopping on the validation
   split. Taggers train on all classes; the anomaly trigger trains on Standard-Model background only;
3. build the float student architecture (starting from the teacher's weights when the two
   architectures are identical) and hand it to :func:`trigger.compress.compress_model`, the one
   compression code path: QKeras conversion, quantization-aware pruning, distillation;
4. evaluate both on the test split (:func:`trigger.report.metrics.evaluate`) and write
   ``teacher.h5``, ``model.h5`` (the student), ``metrics.json`` (:class:`trigger.contracts.TrainMetrics`),
   ``history.json`` and PNG plots into the output directory atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trigger.compress import compress_model, model_bops
from trigger.config import ModelConfig, apply_overrides, resolve_repo_path
from trigger.contracts import ModelMeta, TrainMetrics
from trigger.data.dataset import Dataset, load_dataset
from trigger.errors import TriggerError
from trigger.models.graph import anomaly_score
from trigger.models.inputs import DEFAULT_METHOD, fit_input_transform
from trigger.models.io import check_model_file, save_model
from trigger.models.training import (KIND_BY_FAMILY, TASK_BY_FAMILY, Split, build_student, check_split_sizes,
                                     make_splits, require_finite, train_anomaly_teacher, train_classifier,
                                     train_classifier_teacher, trainable_sparsity)
from trigger.report import plots
from trigger.report.metrics import evaluate as evaluate_outputs
from trigger.report.metrics import headline, is_constant
from trigger.runtime import atomic_path, check_free_space, check_output_free, jsonable, log, set_seed

#: Free space a training run needs, with margin: `du -sk models/*` gives 424-696 kB per reference.
RUN_FOLDER_BYTES = 2 * 1024**2


@dataclass
class TrainResult:
    """What `trigger train` produced: the output directory and the metrics written there."""

    out_dir: Path
    metrics: dict[str, Any]
    #: the student gave every test event the same output (its training collapsed)
    student_constant: bool = False

    def summary(self) -> str:
        """A short table of teacher vs student for the command line."""
        m = self.metrics
        lines = [f"{m['config']['name']} ({m['config']['family']}, view {m['data']['view']}): wrote {self.out_dir}"]
        lines += _classifier_rows(m) if m["task"] == "classification" else _anomaly_rows(m)
        sparsity = m.get("sparsity", {}).get("trainable_total")
        sp = f", sparsity {100 * sparsity:.1f} %" if sparsity is not None else ""
        q = m["config"]["student"]["quantization"]
        overrides = f" (per-layer overrides: {', '.join(q['layers'])})" if q.get("layers") else ""
        lines.append(f"student: {q['weight_bits']}-bit weights, {q['activation_bits']}-bit activations"
                     f"{overrides}{sp}; trained in {m['timing_s']['total']:.0f} s")
        return "\n".join(lines)


def _classifier_rows(m: dict) -> list[str]:
    lines = [f"{'':14s}{'accuracy':>10s}{'mean AUC':>10s}{'params':>10s}{'BOPs':>14s}"]
    for role in ("teacher", "student_float", "student"):
        if role not in m:
            continue
        r = m[role]
        params = f"{m['params'][role]:10d}" if role in m["params"] else f"{'':10s}"
        lines.append(f"{role.replace('_', ' '):14s}{r['accuracy']:10.4f}{r['mean_auc']:10.4f}"
                     f"{params}{_fmt_bops(m['bops'].get(role)):>14s}")
    return lines


def _anomaly_rows(m: dict) -> list[str]:
    rate = m["student"]["rate_resolved_khz"]
    note = "" if m["student"]["resolved"] else " (smallest rate this sample resolves)"
    lines = [f"{'':14s}{'mean AUC':>10s}{'mean eff':>10s}{'params':>10s}{'BOPs':>14s}"
             f"   signal efficiency at {rate:g} kHz{note}"]
    for role in ("teacher", "student"):
        r = m[role]
        eff = np.mean(list(r["efficiency"].values())) if r["efficiency"] else float("nan")
        lines.append(f"{role:14s}{r['mean_auc']:10.4f}{eff:10.4f}{m['params'][role]:10d}"
                     f"{_fmt_bops(m['bops'].get(role)):>14s}")
    return lines


def _fmt_bops(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) else "-"


# --- data ----------------------------------------------------------------------------------------

def load_data(config: ModelConfig, data: Any) -> tuple[Dataset, str]:
    """The config's data view as a :class:`trigger.data.dataset.Dataset` (or ``data`` itself if it
    already is one) and where it came from."""
    if isinstance(data, Dataset):
        dataset, source = data, "<in memory>"
    else:
        # an explicit --data is the user's path as given; only the config's default is repo-relative
        path = Path(data) if data is not None else resolve_repo_path(config.data.file)
        if not path.is_file():
            kind_cmd = "jets" if config.data.kind == "jets" else "ad"
            raise TriggerError(f"data file {path} not found; make it with `trigger data {kind_cmd} --out {path}` "
                               "or pass --data FILE")
        dataset, source = load_dataset(path, config.data.view), str(path)
    if dataset.kind != config.data.kind or dataset.kind != KIND_BY_FAMILY[config.family]:
        raise TriggerError(f"{source} holds {dataset.kind} data but config {config.name} ({config.family}) "
                           f"needs {KIND_BY_FAMILY[config.family]} data; pass the right --data file")
    return dataset, source


def prepare(config: ModelConfig, dataset: Dataset, source: str) -> tuple[ModelMeta, Split]:
    """The metadata shared by teacher and student (split, input transform fitted on the training
    split) and the transformed splits."""
    task = TASK_BY_FAMILY[config.family]
    method = config.data.input_transform or DEFAULT_METHOD[config.data.view]
    meta = ModelMeta.build(family=config.family, task=task, view=config.data.view,
                           class_names=list(dataset.class_names), input_transform=method, config=config.name,
                           seed=config.seed, val_fraction=config.data.val_fraction,
                           test_fraction=config.data.test_fraction, data_file=source)
    i_train = meta.split(len(dataset.y))[0]
    fit_rows = i_train[dataset.y[i_train] == 0] if task == "anomaly" else i_train
    offset, scale = fit_input_transform(dataset.x[fit_rows], method,
                                        input_integer=config.student.quantization.input_integer)
    meta = ModelMeta.build(**meta.to_dict(), input_offset=offset, input_scale=scale)
    split = make_splits(config, dataset, meta)
    check_split_sizes(config, split, meta.class_names)
    log.info("%s: %d train, %d validation, %d test events from %s", config.name, len(split.x_train),
             len(split.x_val), len(split.x_test), source)
    return meta, split


# --- evaluation ------------------------------------------------------------------------------------

def model_outputs(model, x: np.ndarray, task: str) -> np.ndarray:
    """Class probabilities (classification) or anomaly scores (N,) of ``model`` on ``x``."""
    if task == "classification":
        out = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float64)
    else:
        out = np.asarray(anomaly_score(model, x), dtype=np.float64).ravel()
    return require_finite(out, f"model '{model.name}'")


def evaluate_model(model, x: np.ndarray, y: np.ndarray, task: str, class_names: list[str]) -> tuple[dict, np.ndarray]:
    """Metrics of ``model`` on already-transformed inputs ``x`` with labels ``y``
    (:func:`trigger.report.metrics.evaluate`) and its raw outputs (probabilities or scores)."""
    out = model_outputs(model, x, task)
    return evaluate_outputs(y, out, task, class_names), out


def _bops(teacher, student) -> dict[str, Any]:
    """Bit operations of teacher (32-bit float) and student from the compression stage's counter."""
    reports = {"teacher": model_bops(teacher), "student": model_bops(student)}
    bops: dict[str, Any] = {role: float(report) for role, report in reports.items()}
    if bops["student"]:
        bops["ratio"] = bops["teacher"] / bops["student"]
    bops["layers"] = {role: dict(report).get("layers", {}) for role, report in reports.items()}
    return bops


# --- the command -----------------------------------------------------------------------------------

@dataclass
class _Trained:
    """What the two training steps produced (models, histories, test metrics and outputs)."""

    teacher: Any = None
    student: Any = None
    compressed: Any = None
    student_init: str = "random"
    student_constant: bool = False  # the same output for every test event (see TrainResult)
    metrics: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)


def train(config: ModelConfig, *, data: Any = None, out: str | Path | None = None, seed: int | None = None,
          force: bool = False, teacher: str | Path | None = None, trust: bool = False) -> TrainResult:
    """Train the float teacher and the compressed QKeras student of ``config``; write them with
    metrics, history and plots into ``out`` (default ``runs/<name>``).

    ``data``: an HDF5 file from ``trigger data`` (default ``config.data.file``) or a
    :class:`trigger.data.dataset.Dataset`. ``seed``: an override of ``config.seed``
    (:func:`trigger.config.apply_overrides`); it sets the split, the initialisation and the training
    order. An existing ``out`` is refused unless ``force``. ``teacher``: an already trained float
    teacher (``teacher.h5`` of an earlier run of the same config, seed and data, so that it has never
    seen this split's test events) used instead of training one; ``trigger scan`` distils every
    trial's student from one teacher this way. ``trust``: load a teacher file that carries code (a
    Lambda layer), refused otherwise (``--trust-model``).
    """
    t_start = time.perf_counter()
    config = apply_overrides(config, {"seed": seed}, source="--seed")
    out_dir = Path(out) if out is not None else Path("runs") / config.name
    check_output_free(out_dir, force, folder=True)  # refuse before minutes of training, not after
    # a run folder (two models, metrics, history, plots) measured 0.4-0.7 MB for the four references
    check_free_space(out_dir, RUN_FOLDER_BYTES, "a training run's models, metrics and plots")
    if teacher is not None and not Path(teacher).is_file():
        raise TriggerError(f"teacher model {teacher} not found; pass the teacher.h5 of a `trigger train` run")
    if teacher is not None:
        check_model_file(teacher, trust=trust)  # read as data: a file carrying code is refused before any work
    dataset, source = load_data(config, data)
    meta, split = prepare(config, dataset, source)

    import tensorflow as tf  # noqa: F401  (imported here so `trigger data` never pays for it)

    run = _Trained()
    _train_teacher(config, split, meta, run, teacher, trust)
    _train_student(config, split, meta, run)
    run.timing["total"] = time.perf_counter() - t_start
    metrics = _metrics(config, dataset, split, meta, run)
    _write(out_dir, force, config, split, meta, run, metrics)
    log.info("wrote %s in %.0f s", out_dir, time.perf_counter() - t_start)
    return TrainResult(out_dir=out_dir, metrics=metrics.to_dict(), student_constant=run.student_constant)


def _train_teacher(config: ModelConfig, split: Split, meta: ModelMeta, run: _Trained,
                   trained: str | Path | None = None, trust: bool = False) -> None:
    set_seed(config.seed)
    t0 = time.perf_counter()
    if trained is not None:
        run.teacher, run.history["teacher"] = _load_teacher(trained, split, trust), {"loaded_from": str(trained)}
    elif meta.task == "classification":
        run.teacher, run.history["teacher"] = train_classifier_teacher(config, split, len(meta.class_names))
    else:
        run.teacher, run.history["teacher"] = train_anomaly_teacher(config, split)
    run.timing["teacher"] = time.perf_counter() - t0
    run.metrics["teacher"], run.outputs["teacher"] = evaluate_model(run.teacher, split.x_test, split.y_test,
                                                                    meta.task, meta.class_names)
    log.info("teacher: %s", headline(run.metrics["teacher"], meta.task))


def _load_teacher(path: str | Path, split: Split, trust: bool = False):
    """A trained float teacher whose input and output shapes match this run's data."""
    from trigger.models.io import load_model

    teacher = load_model(path, trust=trust)
    want = tuple(split.x_train.shape[1:])
    have = tuple(teacher.input_shape[1:])
    if have != want:
        raise TriggerError(f"teacher {path} takes inputs of shape {have} but the data view gives {want}; "
                           "pass the teacher trained with this config")
    return teacher


def _train_student(config: ModelConfig, split: Split, meta: ModelMeta, run: _Trained) -> None:
    set_seed(config.seed)
    n_outputs = len(meta.class_names) if meta.task == "classification" else 1
    student_float, run.student_init = build_student(config, run.teacher, split.x_train.shape[1:], n_outputs)
    t0 = time.perf_counter()
    if run.student_init == "random" and meta.task == "classification":
        # Quantization-aware training fine-tunes a float solution best (as the teacher's weights do
        # for an identical architecture): train the float student first. Its test metrics separate
        # the capacity lost by the smaller architecture from what quantization and pruning cost.
        run.history["student_float"] = train_classifier(student_float, split, config.train_settings("teacher"),
                                                        "float student")
        run.metrics["student_float"], _ = evaluate_model(student_float, split.x_test, split.y_test, meta.task,
                                                         meta.class_names)
        run.student_init = "float-pretrained"
        log.info("float student: %s", headline(run.metrics["student_float"], meta.task))
    s = config.student
    run.compressed = compress_model(student_float, x_train=split.x_train, y_train=split.y_train,
                                    x_val=split.x_val, y_val=split.y_val, task=meta.task,
                                    teacher=run.teacher if s.distillation.enabled else None,
                                    quant=s.quantization, pruning=s.pruning, distillation=s.distillation,
                                    train=config.train_settings("student"), seed=config.seed)
    run.timing["student"] = time.perf_counter() - t0
    run.student = run.compressed.model
    run.metrics["student"], run.outputs["student"] = evaluate_model(run.student, split.x_test, split.y_test,
                                                                    meta.task, meta.class_names)
    log.info("student: %s", headline(run.metrics["student"], meta.task))
    run.student_constant = is_constant(run.outputs["student"])
    if run.student_constant:
        log.warning("the student gives every test event the same output: its training collapsed (weights "
                    "of %d bits may all round to zero); give it more bits or less sparsity",
                    s.quantization.weight_bits)
    run.history["student"] = dict(jsonable(run.compressed.history), best_epoch=run.compressed.best_epoch + 1)


def _metrics(config: ModelConfig, dataset: Dataset, split: Split, meta: ModelMeta, run: _Trained) -> TrainMetrics:
    """metrics.json (:class:`TrainMetrics`), in the order it has always been written."""
    compressed = run.compressed
    sparsity = dict(compressed.sparsity, trainable_total=trainable_sparsity(run.student))
    data = {"file": meta.data_file, "kind": dataset.kind, "view": meta.view, "class_names": meta.class_names,
            "input_shape": list(split.x_train.shape[1:]), "input_transform": meta.input_transform,
            "n_train": int(len(split.x_train)), "n_val": int(len(split.x_val)), "n_test": int(len(split.x_test)),
            "val_fraction": meta.val_fraction, "test_fraction": meta.test_fraction,
            "train_background_only": meta.task == "anomaly"}
    training = {"objective": compressed.objective, "distilled": compressed.distilled,
                "best_epoch": compressed.best_epoch + 1, "sparsity_targets": compressed.targets,
                "init": run.student_init}
    extra = {"student_float": run.metrics["student_float"]} if "student_float" in run.metrics else {}
    return TrainMetrics.build(
        task=meta.task, teacher=run.metrics["teacher"], student=run.metrics["student"], data=data,
        config=config.model_dump(mode="json"), seed=config.seed, student_bits=compressed.bits,
        student_training=training, sparsity=sparsity, bops=_bops(run.teacher, run.student),
        params={"teacher": int(run.teacher.count_params()), "student": int(run.student.count_params())},
        timing_s={k: round(v, 2) for k, v in run.timing.items()}, **extra)


def _write(out_dir: Path, force: bool, config: ModelConfig, split: Split, meta: ModelMeta, run: _Trained,
           metrics: TrainMetrics) -> None:
    """teacher.h5, model.h5, metrics.json, history.json and the plots, into ``out_dir`` atomically."""
    q = config.student.quantization
    common = meta.to_dict()
    teacher_meta = ModelMeta.build(**common, role="teacher", bits=32, sparsity=0.0)
    student_meta = ModelMeta.build(**common, role="student", bits=run.compressed.bits, input_bits=q.input_bits,
                                   input_integer=q.input_integer, sparsity=metrics.sparsity,
                                   student_init=run.student_init)
    history = {role: run.history[role] for role in ("teacher", "student_float", "student") if role in run.history}
    names, outputs = meta.class_names, {"teacher": run.outputs["teacher"], "student": run.outputs["student"]}
    with atomic_path(out_dir, force=force) as tmp:
        tmp.mkdir(parents=True)
        save_model(run.teacher, tmp / "teacher.h5", meta=teacher_meta)
        save_model(run.student, tmp / "model.h5", meta=student_meta)
        (tmp / "metrics.json").write_text(metrics.to_json(indent=2))
        (tmp / "history.json").write_text(json.dumps(history, indent=1) + "\n")
        plots.training_curves(history, tmp / "training_curves.png", title=config.name)
        if meta.task == "classification":
            plots.classifier_roc(split.y_test, outputs, names, tmp / "roc.png", title=config.name)
        else:
            plots.anomaly_roc(split.y_test, outputs, names[1:], tmp / "roc.png", title=config.name)
            plots.score_distributions(split.y_test, outputs, names, tmp / "scores.png", title=config.name)
