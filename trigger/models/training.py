"""Training of float Keras models: the teacher (tagger or AE/VAE), the float student, the splits.

The library under ``trigger train`` (:mod:`trigger.stages.train` runs the command): the splits of a
config's data set (:func:`make_splits`, from :meth:`trigger.contracts.ModelMeta.split`), Keras fits
with early stopping on the validation split (:func:`train_classifier`, :func:`train_anomaly_teacher`:
the anomaly trigger trains on Standard-Model background only, an AE, or a VAE with its decoder and
KL term, whose saved teacher outputs the AXOL1TL-like score sum(mu^2)), the float student starting
from the teacher's weights when the architectures match (:func:`build_student`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from trigger.config import ModelConfig, TrainSection
from trigger.contracts import ModelMeta
from trigger.errors import TriggerError
from trigger.models.zoo import build_autoencoder_parts, build_model, score_from_latent
from trigger.runtime import log, progress

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


# --- data ----------------------------------------------------------------------------------------

def make_splits(config: ModelConfig, dataset, meta: ModelMeta) -> Split:
    """The split recorded in ``meta`` (:meth:`ModelMeta.split`) with its input transform applied; for
    anomaly detection the training and validation splits keep background (label 0) only."""
    i_train, i_val, i_test = meta.split(len(dataset.y))
    if TASK_BY_FAMILY[config.family] == "anomaly":
        i_train = i_train[dataset.y[i_train] == 0]
        i_val = i_val[dataset.y[i_val] == 0]
    x = lambda idx: meta.prepare_inputs(dataset.x[idx])  # noqa: E731
    return Split(x(i_train), dataset.y[i_train], x(i_val), dataset.y[i_val], x(i_test), dataset.y[i_test],
                 {"train": i_train, "val": i_val, "test": i_test})


def check_split_sizes(config: ModelConfig, split: Split, class_names: list[str]) -> None:
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

def epoch_progress(epochs: int, desc: str, *, on_epoch: Callable[[int, dict], dict] | None = None,
                   show: Callable[[str], bool] = lambda key: "loss" in key):
    """Keras callback: one progress-bar step per epoch (quiet unless on a terminal), the logs whose
    key passes ``show`` beside it. ``on_epoch(epoch, logs)`` may return the logs with more figures
    (the compression stage adds the reached sparsity)."""
    import tensorflow as tf

    class EpochProgress(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = progress(total=epochs, desc=desc, unit="epoch")

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            if on_epoch is not None:
                logs = on_epoch(epoch, logs)
            shown = {k: f"{v:.4g}" for k, v in logs.items() if show(k)}
            self.bar.set_postfix(shown)
            self.bar.update(1)
            log.debug("epoch %d: %s", epoch + 1, shown)

        def on_train_end(self, logs=None):
            self.bar.close()

    return EpochProgress()


def stop_on_divergence(desc: str, learning_rate: float):
    """Keras callback (put it last): after the first epoch whose loss or metric is NaN or inf, stop
    training and raise a one-line :class:`TriggerError` naming ``desc``, the epoch and what to change,
    once the other callbacks have finished (progress bars closed). Every fit of ``trigger`` uses it,
    so a diverging run never reaches the metrics (``roc_auc_score`` refuses NaN) or writes a file."""
    import tensorflow as tf

    class StopOnDivergence(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.diverged = None

        def on_epoch_end(self, epoch, logs=None):
            bad = {k: v for k, v in (logs or {}).items() if not np.isfinite(np.asarray(v, dtype=np.float64)).all()}
            if bad and self.diverged is None:
                self.diverged = (epoch, bad)
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.diverged is not None:
                epoch, bad = self.diverged
                raise TriggerError(divergence_message(desc, epoch, bad, learning_rate))

    return StopOnDivergence()


def divergence_message(desc: str, epoch: int, bad: dict, learning_rate: float) -> str:
    """The one line of a diverged fit: where, which figures, and what to change."""
    figures = ", ".join(f"{k} = {float(np.asarray(v, dtype=np.float64).ravel()[0])}" for k, v in bad.items())
    return (f"training of the {desc} diverged in epoch {epoch + 1} ({figures}); lower the learning rate "
            f"(train.learning_rate in the config, now {learning_rate:g}), check the input data for NaN or inf "
            "values and the starting model's weights, and check any BatchNormalization layer (one directly on the "
            "inputs, or on a constant feature)")


def require_finite(values, what: str):
    """``values`` as they are if all are finite, else a one-line :class:`TriggerError` (NaN or inf
    outputs would only fail later, in the metrics, with a traceback)."""
    arr = np.asarray(values, dtype=np.float64)
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise TriggerError(f"{what} outputs NaN or inf for {bad} of {arr.size} values; check its weights and any "
                           "BatchNormalization layer (retrain it with a lower learning rate) and the input data")
    return values


def _fit(model, x_train, y_train, x_val, y_val, settings: TrainSection, desc: str) -> dict[str, list]:
    """Keras fit with early stopping on the validation loss, the best epoch's weights restored (at
    the epoch limit too: Keras 2's own would keep a CNN teacher's last epoch, 0.5895 instead of its
    best epoch's 0.5994)."""
    best = best_epoch_callback(settings.patience)
    hist = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=settings.epochs,
                     batch_size=settings.batch_size, shuffle=True, verbose=0,
                     callbacks=[best, epoch_progress(settings.epochs, desc),
                                stop_on_divergence(desc, settings.learning_rate)])
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    history["best_epoch"] = best.best_epoch + 1
    return history


def best_epoch_callback(patience: int, *, start_epoch: int = 0, ready: Callable[[], bool] | None = None):
    """The one early stopping of every training: on val_loss, counting only epochs from
    ``start_epoch`` on and once ``ready()`` (a pruned student: every pruning target reached, so
    earlier, denser weights are never kept), and restoring the best such epoch's weights at the end,
    whether patience or the epoch limit ended the run (Keras 2's EarlyStopping restores them only in
    the first case). ``.best_epoch`` (0-based) stays -1 if no epoch qualified."""
    import tensorflow as tf  # a factory, so that importing this module does not import TensorFlow

    class BestAfter(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.best_weights, self.best_epoch, self.wait = math.inf, None, -1, 0

        def on_epoch_end(self, epoch, logs=None):
            if epoch < start_epoch or (ready is not None and not ready()):
                return
            value = float((logs or {}).get("val_loss", math.nan))
            if value < self.best:
                self.best, self.best_epoch, self.wait = value, epoch, 0
                self.best_weights = self.model.get_weights()
            else:
                self.wait += 1
                if self.wait >= patience:
                    self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return BestAfter()


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
