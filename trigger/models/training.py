"""`trigger train`: float teacher, QKeras student (through the compression stage), metrics, plots.

One call of :func:`train` does, for the family a config names:

1. load the config's data view, split it with :func:`trigger.data.splits.split_indices` (train /
   validation / test from the seed; the test split is never seen in training), fit the fixed input
   transform on the training split (:mod:`trigger.models.inputs`);
2. train the float teacher (Keras) with early stopping on the validation split. Taggers train on
   all classes; the anomaly trigger trains on Standard-Model background only (an AE, or a VAE with
   its decoder and KL term), and its saved teacher outputs the reconstruction (AE) or the
   AXOL1TL-like score sum(mu^2) (VAE);
3. build the float student architecture (starting from the teacher's weights when the two
   architectures are identical) and hand it to :func:`trigger.compress.compress_model`, the one
   compression code path: QKeras conversion, quantization-aware pruning, distillation;
4. evaluate both on the test split with the shared metrics (:mod:`trigger.report.metrics`) and
   write ``teacher.h5``, ``model.h5`` (the student), ``metrics.json``, ``history.json`` and PNG
   plots into the output directory atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trigger.config import ModelConfig, TrainSection, resolve_repo_path
from trigger.errors import TriggerError
from trigger.models.inputs import DEFAULT_METHOD, fit_input_transform
from trigger.models.io import prepare_inputs, save_model
from trigger.models.zoo import build_autoencoder_parts, build_model, score_from_latent
from trigger.runtime import atomic_path, check_output_free, jsonable, log, progress, set_seed

TASK_BY_FAMILY = {"mlp": "classification", "cnn": "classification", "gnn": "classification",
                  "autoencoder": "anomaly"}
KIND_BY_FAMILY = {"mlp": "jets", "cnn": "jets", "gnn": "jets", "autoencoder": "ad"}


@dataclass
class Split:
    """Transformed inputs and labels of the three splits (anomaly: train/val are background only)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    indices: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class TrainResult:
    """What `trigger train` produced: the output directory and the metrics written there."""

    out_dir: Path
    metrics: dict[str, Any]

    def summary(self) -> str:
        """A short table of teacher vs student for the command line."""
        m = self.metrics
        task = m["task"]
        lines = [f"{m['config']['name']} ({m['config']['family']}, view {m['data']['view']}): "
                 f"wrote {self.out_dir}"]
        if task == "classification":
            lines.append(f"{'':14s}{'accuracy':>10s}{'mean AUC':>10s}{'params':>10s}{'BOPs':>14s}")
            for role in ("teacher", "student_float", "student"):
                if role not in m:
                    continue
                r = m[role]
                params = f"{m['params'][role]:10d}" if role in m["params"] else f"{'':10s}"
                lines.append(f"{role.replace('_', ' '):14s}{r['accuracy']:10.4f}{r['mean_auc']:10.4f}"
                             f"{params}{_fmt_bops(m['bops'].get(role)):>14s}")
        else:
            rate = m["student"]["rate_resolved_khz"]
            note = "" if m["student"]["resolved"] else " (smallest rate this sample resolves)"
            lines.append(f"{'':14s}{'mean AUC':>10s}{'mean eff':>10s}{'params':>10s}{'BOPs':>14s}"
                         f"   signal efficiency at {rate:g} kHz{note}")
            for role in ("teacher", "student"):
                r = m[role]
                eff = np.mean(list(r["efficiency"].values())) if r["efficiency"] else float("nan")
                lines.append(f"{role:14s}{r['mean_auc']:10.4f}{eff:10.4f}{m['params'][role]:10d}"
                             f"{_fmt_bops(m['bops'].get(role)):>14s}")
        sparsity = m.get("sparsity", {}).get("trainable_total")
        sp = f", sparsity {100 * sparsity:.1f} %" if sparsity is not None else ""
        q = m["config"]["student"]["quantization"]
        overrides = f" (per-layer overrides: {', '.join(q['layers'])})" if q.get("layers") else ""
        lines.append(f"student: {q['weight_bits']}-bit weights, {q['activation_bits']}-bit activations"
                     f"{overrides}{sp}; trained in {m['timing_s']['total']:.0f} s")
        return "\n".join(lines)


def _fmt_bops(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) else "-"


# --- data ----------------------------------------------------------------------------------------

def _load_data(config: ModelConfig, data: Any):
    """The config's data view as a :class:`trigger.data.dataset.Dataset` (or ``data`` itself if it
    already is one)."""
    from trigger.data.dataset import Dataset, load_dataset

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


def make_splits(config: ModelConfig, dataset, seed: int, offset: np.ndarray, scale: np.ndarray) -> Split:
    """Split indices from the seed and the config's fractions; inputs transformed; for anomaly
    detection the training and validation splits keep background (label 0) only."""
    from trigger.data.splits import split_indices

    i_train, i_val, i_test = split_indices(len(dataset.y), config.data.val_fraction,
                                           config.data.test_fraction, seed)
    if TASK_BY_FAMILY[config.family] == "anomaly":
        i_train = i_train[dataset.y[i_train] == 0]
        i_val = i_val[dataset.y[i_val] == 0]
    meta = {"input_offset": offset, "input_scale": scale}
    x = lambda idx: prepare_inputs(dataset.x[idx], meta)  # noqa: E731
    return Split(x(i_train), dataset.y[i_train], x(i_val), dataset.y[i_val], x(i_test), dataset.y[i_test],
                 {"train": i_train, "val": i_val, "test": i_test})


def _check_split_sizes(config: ModelConfig, split: Split, class_names: list[str]) -> None:
    task = TASK_BY_FAMILY[config.family]
    if len(split.x_train) < 10 or len(split.x_val) < 2:
        raise TriggerError(f"too few events to train {config.name}: {len(split.x_train)} training and "
                           f"{len(split.x_val)} validation events; generate a larger data file")
    if task == "classification":
        missing = [class_names[k] for k in range(len(class_names)) if not np.any(split.y_train == k)]
        if missing:
            raise TriggerError(f"classes {missing} have no training events; generate a larger data file")
    elif not np.any(split.y_test == 0) or not np.any(split.y_test > 0):
        raise TriggerError("the anomaly test split needs background and signal events; "
                           "generate a data file with both (trigger data ad)")


# --- teacher training ------------------------------------------------------------------------------

class _EpochProgress:
    """Keras callback factory: one progress-bar step per epoch (quiet unless on a terminal)."""

    @staticmethod
    def make(epochs: int, desc: str):
        import tensorflow as tf

        class _Callback(tf.keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = progress(total=epochs, desc=desc, unit="epoch")

            def on_epoch_end(self, epoch, logs=None):
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in (logs or {}).items() if "loss" in k})
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()

        return _Callback()


def _fit(model, x_train, y_train, x_val, y_val, settings: TrainSection, desc: str) -> dict[str, list]:
    """Keras fit with Adam, early stopping on the validation loss (best weights restored)."""
    import tensorflow as tf

    stop = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience,
                                            restore_best_weights=True)
    hist = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=settings.epochs,
                     batch_size=settings.batch_size, shuffle=True, verbose=0,
                     callbacks=[stop, _EpochProgress.make(settings.epochs, desc)])
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    history["best_epoch"] = int(np.argmin(history["val_loss"])) + 1
    return history


def train_classifier(model, split: Split, settings: TrainSection, desc: str) -> dict[str, list]:
    """Train a float tagger in place with cross-entropy on all classes; returns its history."""
    import tensorflow as tf

    model.compile(optimizer=tf.keras.optimizers.Adam(settings.learning_rate),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    return _fit(model, split.x_train, split.y_train, split.x_val, split.y_val, settings, desc)


def train_classifier_teacher(config: ModelConfig, split: Split, n_classes: int):
    """Float tagger of the teacher architecture; returns (model, history)."""
    model = build_model(config.family, config.architecture("teacher"), split.x_train.shape[1:], n_classes,
                        name=f"{config.name}_teacher")
    return model, train_classifier(model, split, config.train_settings("teacher"), "teacher")


def train_anomaly_teacher(config: ModelConfig, split: Split):
    """Float AE or VAE trained to reconstruct background; returns (saved model, history).

    The VAE trains with its decoder and loss = MSE + kl_weight * KL; the saved teacher is its
    encoder with the AXOL1TL-like score sum(mu^2) (N, 1). The AE's saved teacher outputs the
    reconstruction, scored by the mean squared error.
    """
    import tensorflow as tf

    arch = config.architecture("teacher")
    settings = config.train_settings("teacher")
    n_features = split.x_train.shape[1]
    parts = build_autoencoder_parts(arch, n_features, name=f"{config.name}_teacher")
    inputs, mu, log_var = parts["inputs"], parts["mu"], parts["log_var"]
    if arch.variant == "vae":
        z = _Sampling.make(name="sampling")([mu, log_var])
        reconstruction = parts["decode"](z)
        trainer = tf.keras.Model(inputs, reconstruction, name=f"{config.name}_vae_training")
        kl = -0.5 * tf.reduce_mean(tf.reduce_sum(1.0 + log_var - tf.square(mu) - tf.exp(log_var), axis=1))
        trainer.add_loss(arch.kl_weight * kl)
        trainer.add_metric(kl, name="kl")
    else:
        reconstruction = parts["decode"](mu)
        trainer = tf.keras.Model(inputs, reconstruction, name=f"{config.name}_ae_training")
    trainer.compile(optimizer=tf.keras.optimizers.Adam(settings.learning_rate), loss="mse")
    history = _fit(trainer, split.x_train, split.x_train, split.x_val, split.x_val, settings, "teacher")
    if arch.variant == "vae":
        teacher = score_from_latent(inputs, mu, name=f"{config.name}_teacher")
    else:
        teacher = tf.keras.Model(inputs, parts["decode"](mu), name=f"{config.name}_teacher")
    return teacher, history


class _Sampling:
    """The VAE's reparameterisation z = mu + exp(log_var / 2) * eps; used only in the training graph,
    never saved."""

    @staticmethod
    def make(name: str):
        import tensorflow as tf

        class Sampling(tf.keras.layers.Layer):
            def call(self, inputs):
                mean, log_var = inputs
                return mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))

        return Sampling(name=name)


# --- student ---------------------------------------------------------------------------------------

def build_student(config: ModelConfig, teacher, input_shape, n_outputs: int):
    """The float student architecture; starts from the teacher's weights when every weighted layer
    of the student has a teacher layer of the same name and weight shapes. Returns (model, init)."""
    student = build_model(config.family, config.architecture("student"), input_shape, n_outputs,
                          name=f"{config.name}_student")
    if config.family == "autoencoder" and config.architecture("student").variant != config.architecture("teacher").variant:
        # an AE's latent space is not a score: an AE teacher's encoder is no start for an
        # encoder-score (VAE-like) student, even with matching layer shapes
        return student, "random"
    teacher_layers = {layer.name: layer for layer in teacher.layers}
    weighted = [layer for layer in student.layers if layer.trainable and layer.weights]
    compatible = all(
        layer.name in teacher_layers
        and [w.shape for w in layer.get_weights()] == [w.shape for w in teacher_layers[layer.name].get_weights()]
        for layer in weighted)
    if compatible and weighted:
        for layer in weighted:
            layer.set_weights(teacher_layers[layer.name].get_weights())
        return student, "teacher"
    return student, "random"


def compress_student(config: ModelConfig, student_float, teacher, split: Split, seed: int):
    """Quantize, prune and distil the float student through :func:`trigger.compress.compress_model`."""
    from trigger.compress import compress_model

    s = config.student
    return compress_model(student_float, x_train=split.x_train, y_train=split.y_train,
                          x_val=split.x_val, y_val=split.y_val, task=TASK_BY_FAMILY[config.family],
                          teacher=teacher if s.distillation.enabled else None,
                          quant=s.quantization, pruning=s.pruning, distillation=s.distillation,
                          train=config.train_settings("student"), seed=seed)


# --- evaluation ------------------------------------------------------------------------------------

def model_outputs(model, x: np.ndarray, task: str) -> np.ndarray:
    """Class probabilities (classification) or anomaly scores (N,) of ``model`` on ``x``."""
    if task == "classification":
        return np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float64)
    from trigger.compress import anomaly_score

    return np.asarray(anomaly_score(model, x), dtype=np.float64).ravel()


def evaluate_arrays(model, x: np.ndarray, y: np.ndarray, task: str, class_names: list[str]) -> dict:
    """Metrics of ``model`` on already-transformed inputs ``x`` with labels ``y``: accuracy, AUC and
    rejection per class (classification) or AUC and efficiency at 1 kHz per signal (anomaly)."""
    return _metrics(y, model_outputs(model, x, task), task, class_names)


def _metrics(y: np.ndarray, out: np.ndarray, task: str, class_names: list[str]) -> dict:
    from trigger.report.metrics import anomaly_metrics, classifier_metrics

    if task == "classification":
        return classifier_metrics(y, out, class_names)
    return anomaly_metrics(y, out, class_names[1:])


def evaluate(model, split: Split, task: str, class_names: list[str]) -> tuple[dict, np.ndarray]:
    """Test-split metrics of ``model`` and its raw outputs (probabilities or scores)."""
    out = model_outputs(model, split.x_test, task)
    return _metrics(split.y_test, out, task, class_names), out


def trainable_sparsity(model) -> float:
    """Fraction of zero kernel entries over the trainable weight layers (fixed wiring and sum
    matrices, which are mostly zeros by construction, excluded)."""
    zeros = count = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if getattr(inner, "kernel", None) is not None and inner.trainable:
            k = np.asarray(inner.kernel.numpy())
            zeros += int(np.sum(k == 0))
            count += k.size
    return zeros / count if count else 0.0


# --- the command -----------------------------------------------------------------------------------

def train(config: ModelConfig, *, data: Any = None, out: str | Path | None = None, seed: int | None = None,
          force: bool = False) -> TrainResult:
    """Train the float teacher and the compressed QKeras student of ``config``; write them with
    metrics, history and plots into ``out`` (default ``runs/<name>``).

    ``data``: an HDF5 file from ``trigger data`` (default ``config.data.file``) or a
    :class:`trigger.data.dataset.Dataset`. ``seed``: None uses ``config.seed``; it sets the split,
    the initialisation and the training order. An existing ``out`` is refused unless ``force``.
    """
    t_start = time.perf_counter()
    seed = config.seed if seed is None else int(seed)
    out_dir = Path(out) if out is not None else Path("runs") / config.name
    check_output_free(out_dir, force)  # refuse before minutes of training, not after
    task = TASK_BY_FAMILY[config.family]

    dataset, source = _load_data(config, data)
    class_names = list(dataset.class_names)
    from trigger.data.splits import split_indices

    i_train, _, _ = split_indices(len(dataset.y), config.data.val_fraction, config.data.test_fraction, seed)
    fit_rows = i_train[dataset.y[i_train] == 0] if task == "anomaly" else i_train
    method = config.data.input_transform or DEFAULT_METHOD[config.data.view]
    offset, scale = fit_input_transform(dataset.x[fit_rows], method,
                                        input_integer=config.student.quantization.input_integer)
    split = make_splits(config, dataset, seed, offset, scale)
    _check_split_sizes(config, split, class_names)
    log.info("%s: %d train, %d validation, %d test events from %s", config.name, len(split.x_train),
             len(split.x_val), len(split.x_test), source)

    import tensorflow as tf  # noqa: F401  (imported here so `trigger data` never pays for it)

    set_seed(seed)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    if task == "classification":
        teacher, teacher_history = train_classifier_teacher(config, split, len(class_names))
    else:
        teacher, teacher_history = train_anomaly_teacher(config, split)
    timing["teacher"] = time.perf_counter() - t0
    teacher_metrics, teacher_out = evaluate(teacher, split, task, class_names)
    log.info("teacher: %s", _headline(teacher_metrics, task))

    set_seed(seed)
    n_outputs = len(class_names) if task == "classification" else 1
    student_float, student_init = build_student(config, teacher, split.x_train.shape[1:], n_outputs)
    t0 = time.perf_counter()
    float_history, student_float_metrics = None, None
    if student_init == "random" and task == "classification":
        # Quantization-aware training fine-tunes a float solution best (as the teacher's weights do
        # for an identical architecture): train the float student first. Its test metrics separate
        # the capacity lost by the smaller architecture from what quantization and pruning cost.
        float_history = train_classifier(student_float, split, config.train_settings("teacher"),
                                         "float student")
        student_float_metrics, _ = evaluate(student_float, split, task, class_names)
        student_init = "float-pretrained"
        log.info("float student: %s", _headline(student_float_metrics, task))
    compressed = compress_student(config, student_float, teacher, split, seed)
    timing["student"] = time.perf_counter() - t0
    student = compressed.model
    student_metrics, student_out = evaluate(student, split, task, class_names)
    log.info("student: %s", _headline(student_metrics, task))

    bops = _bops(teacher, student)
    sparsity = dict(compressed.sparsity)
    sparsity["trainable_total"] = trainable_sparsity(student)
    common_meta = {
        "family": config.family, "task": task, "view": config.data.view, "class_names": class_names,
        "input_offset": offset, "input_scale": scale, "input_transform": method, "config": config.name,
        "seed": seed, "val_fraction": config.data.val_fraction, "test_fraction": config.data.test_fraction,
        "data_file": source,
    }
    q = config.student.quantization
    student_meta = dict(common_meta, role="student", bits=compressed.bits,
                        input_bits=q.input_bits, input_integer=q.input_integer,
                        sparsity=sparsity, student_init=student_init)
    teacher_meta = dict(common_meta, role="teacher", bits=32, sparsity=0.0)
    timing["total"] = time.perf_counter() - t_start
    metrics = {
        "task": task,
        "teacher": teacher_metrics,
        "student": student_metrics,
        "data": {"file": source, "kind": dataset.kind, "view": config.data.view, "class_names": class_names,
                 "input_shape": list(split.x_train.shape[1:]), "input_transform": method,
                 "n_train": int(len(split.x_train)), "n_val": int(len(split.x_val)),
                 "n_test": int(len(split.x_test)), "val_fraction": config.data.val_fraction,
                 "test_fraction": config.data.test_fraction,
                 "train_background_only": task == "anomaly"},
        "config": config.model_dump(mode="json"),
        "seed": seed,
        "student_bits": compressed.bits,
        "student_training": {"objective": compressed.objective, "distilled": compressed.distilled,
                             "best_epoch": compressed.best_epoch + 1, "sparsity_targets": compressed.targets,
                             "init": student_init},
        "sparsity": sparsity,
        "bops": bops,
        "params": {"teacher": int(teacher.count_params()), "student": int(student.count_params())},
        "timing_s": {k: round(v, 2) for k, v in timing.items()},
    }
    history = {"teacher": teacher_history}
    if float_history is not None:
        history["student_float"] = float_history
        metrics["student_float"] = student_float_metrics
    history["student"] = dict(jsonable(compressed.history), best_epoch=compressed.best_epoch + 1)

    from trigger.report import plots

    with atomic_path(out_dir, force=force) as tmp:
        tmp.mkdir(parents=True)
        save_model(teacher, tmp / "teacher.h5", meta=teacher_meta)
        save_model(student, tmp / "model.h5", meta=student_meta)
        (tmp / "metrics.json").write_text(json.dumps(jsonable(metrics), indent=2, sort_keys=False) + "\n")
        (tmp / "history.json").write_text(json.dumps(history, indent=1) + "\n")
        plots.training_curves(history, tmp / "training_curves.png", title=config.name)
        if task == "classification":
            plots.classifier_roc(split.y_test, {"teacher": teacher_out, "student": student_out}, class_names,
                                 tmp / "roc.png", title=config.name)
        else:
            plots.anomaly_roc(split.y_test, {"teacher": teacher_out, "student": student_out}, class_names[1:],
                              tmp / "roc.png", title=config.name)
            plots.score_distributions(split.y_test, {"teacher": teacher_out, "student": student_out},
                                      class_names, tmp / "scores.png", title=config.name)
    log.info("wrote %s in %.0f s", out_dir, time.perf_counter() - t_start)
    return TrainResult(out_dir=out_dir, metrics=metrics)


def _bops(teacher, student) -> dict[str, Any]:
    """Bit operations of teacher (32-bit float) and student from the compression stage's counter."""
    try:
        from trigger.compress import model_bops
    except ImportError:
        return {"teacher": None, "student": None,
                "note": "not counted: trigger.compress.model_bops is not available in this build"}
    reports = {"teacher": model_bops(teacher), "student": model_bops(student)}
    bops: dict[str, Any] = {role: float(report) for role, report in reports.items()}
    if bops["student"]:
        bops["ratio"] = bops["teacher"] / bops["student"]
    bops["layers"] = {role: dict(report).get("layers", {}) for role, report in reports.items()}
    return bops


def _headline(metrics: dict, task: str) -> str:
    if task == "classification":
        return f"accuracy {metrics['accuracy']:.4f}, mean AUC {metrics['mean_auc']:.4f}"
    return f"mean AUC {metrics['mean_auc']:.4f}, efficiency at {metrics['rate_resolved_khz']:g} kHz " + \
        ", ".join(f"{k} {v:.3f}" for k, v in metrics["efficiency"].items())


