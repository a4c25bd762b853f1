"""compress_model: quantize a float student, train it with quantization-aware pruning and
(optionally) knowledge distillation, strip the pruning wrappers. One code path for `trigger train`
(the zoo's students) and `trigger compress` (any float model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from trigger.compress.distill import (classification_loss, packed_accuracy, reconstruction_score_in_model,
                                      score_target, teacher_logits)
from trigger.compress.prune import PruningPlan, model_sparsity, plan_pruning, strip, wrap_for_pruning
from trigger.compress.quantize import describe_bits, quantize_model, quiet_keras_warnings
from trigger.config import DistillSection, PruningSection, QuantSection, TrainSection
from trigger.errors import TriggerError
from trigger.models.graph import anomaly_score, logits_cut
from trigger.models.training import best_epoch_callback, epoch_progress, stop_on_divergence
from trigger.runtime import log, set_seed

TASKS = ("classification", "anomaly")


@dataclass
class CompressedModel:
    """The result of :func:`compress_model`."""

    model: Any                                  # stripped QKeras model (zeros in the pruned kernels)
    history: dict[str, list[float]]             # per epoch: loss, val_loss, [accuracy, val_accuracy], sparsity
    sparsity: dict[str, float]                  # zero fraction of the stored kernels per weight layer + 'total'
    task: str = "classification"
    distilled: bool = False                     # whether a teacher's outputs were in the loss
    objective: str = ""                         # what the student was trained on, in words
    best_epoch: int = -1                        # 0-based epoch whose weights were kept
    targets: dict[str, float] = field(default_factory=dict)  # requested sparsity per pruned layer
    bits: dict[str, dict[str, str]] = field(default_factory=dict)  # quantizers per layer


def _progress_callback(epochs: int, desc: str, pruned_names: list[str], full_model, history: dict):
    """The one per-epoch progress bar (:func:`trigger.models.training.epoch_progress`), with the mean
    sparsity reached by the pruned layers added to the logs and every epoch's logs kept in ``history``."""
    def record(epoch: int, logs: dict) -> dict:
        sp = model_sparsity(full_model)
        pruned = [sp[n] for n in pruned_names if n in sp]
        logs["sparsity"] = float(np.mean(pruned)) if pruned else 0.0
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        return logs

    return epoch_progress(epochs, desc, on_epoch=record,
                          show=lambda key: key in ("loss", "val_loss", "val_accuracy", "sparsity"))


def compress_model(student_float, *, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                   y_val: np.ndarray, task: str, teacher=None, quant: QuantSection, pruning: PruningSection,
                   distillation: DistillSection, train: TrainSection, seed: int) -> CompressedModel:
    """Quantize ``student_float`` (float weights as the start), train it with quantization-aware
    pruning and, if ``distillation.enabled``, knowledge distillation from ``teacher``; strip the
    pruning wrappers.

    ``task='classification'``: ``y`` are integer labels; the student ends in a softmax or outputs
    logits; the loss is ``alpha*CE + (1-alpha)*T^2*KL`` on logits (CE alone without distillation).
    ``task='anomaly'``: ``y`` are labels (0 = background; only background is trained on). A student
    with output (N, 1) regresses ``log1p`` of the teacher's score, or, without a teacher, minimises
    its own on-chip reconstruction score (an encoder-only score needs a teacher); a student whose
    output has the input's shape is trained as an autoencoder on the reconstruction error.
    Inputs must already carry the model's input transform.
    """
    with quiet_keras_warnings():
        return _compress_model(student_float, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                               task=task, teacher=teacher, quant=quant, pruning=pruning,
                               distillation=distillation, train=train, seed=seed)


# --- training objectives ------------------------------------------------------------------------

def _log1p_score_loss(target, score):
    """The student's score is itself a squared reconstruction error: compare it with the teacher's
    in log space, so it stays an error in the teacher's units (and the tail does not dominate)."""
    import tensorflow as tf

    return tf.reduce_mean(tf.square(tf.math.log1p(tf.nn.relu(score)) - target), axis=-1)


def _score_as_loss(_unused, score):
    """The score IS the reconstruction error: minimising it is autoencoder training."""
    import tensorflow as tf

    return tf.reduce_mean(score, axis=-1)


def _label_targets(fit, _teacher):
    return fit.labels_train[:, None].astype(np.float32), fit.labels_val[:, None].astype(np.float32)


def _label_and_teacher_targets(fit, teacher):
    t_train, t_val = teacher_logits(teacher, fit.x_train), teacher_logits(teacher, fit.x_val)
    if t_train.shape[1:] != (fit.n_classes,):
        raise TriggerError(f"teacher '{teacher.name}' outputs shape {t_train.shape[1:]} but the student "
                           f"has {fit.n_classes} classes; distil from a teacher of the same task")
    y_train, y_val = _label_targets(fit, teacher)
    return np.concatenate([y_train, t_train], axis=1), np.concatenate([y_val, t_val], axis=1)


def _input_targets(fit, _teacher):
    return fit.x_train, fit.x_val


def _teacher_score_targets(fit, teacher):
    return (score_target(anomaly_score(teacher, fit.x_train))[:, None],
            score_target(anomaly_score(teacher, fit.x_val))[:, None])


def _zero_targets(fit, _teacher):
    return np.zeros((len(fit.x_train), 1), np.float32), np.zeros((len(fit.x_val), 1), np.float32)


@dataclass(frozen=True)
class Objective:
    """What a student is trained on: the Keras loss and metrics, how the fit targets are built
    from the training data (and the teacher), and the objective in words (``description`` may hold
    ``{alpha}``, ``{rest}`` = 1 - alpha and ``{temperature}`` of the distillation section)."""

    name: str
    description: str
    loss: Callable[[DistillSection], Any]                 # the Keras loss (a name or a function)
    targets: Callable[[Any, Any], tuple[np.ndarray, np.ndarray]]  # (fit data, teacher) -> (fit_y, val_y)
    metrics: tuple = ()
    distilled: bool = False                               # whether the teacher's outputs are in the loss

    def describe(self, distillation: DistillSection) -> str:
        return self.description.format(alpha=distillation.alpha, rest=1 - distillation.alpha,
                                       temperature=distillation.temperature)


OBJECTIVES = {o.name: o for o in (
    Objective("cross_entropy", "CE(labels) on logits",
              lambda d: classification_loss(d.alpha, d.temperature, False), _label_targets, (packed_accuracy,)),
    Objective("distillation", "{alpha:g}*CE(labels) + {rest:g}*T^2*KL(teacher || student) at T={temperature:g} "
              "on logits", lambda d: classification_loss(d.alpha, d.temperature, True),
              _label_and_teacher_targets, (packed_accuracy,), distilled=True),
    Objective("autoencoder", "MSE(reconstruction, input) on background", lambda d: "mse", _input_targets),
    Objective("score_distillation_log", "MSE(log1p(student score), log1p(teacher score)) on background",
              lambda d: _log1p_score_loss, _teacher_score_targets, distilled=True),
    Objective("score_distillation", "MSE(student score, log1p(teacher score)) on background",
              lambda d: "mse", _teacher_score_targets, distilled=True),
    Objective("on_chip_reconstruction", "on-chip reconstruction score minimised on background "
              "(autoencoder training)", lambda d: _score_as_loss, _zero_targets),
)}


def select_objective(task: str, qmodel, *, distill: bool, student_name: str) -> Objective:
    """The training objective of a quantized student for ``task``, its output shape, whether a
    teacher distils and (for a one-score anomaly student) whether it computes a reconstruction
    error on chip."""
    if task == "classification":
        return OBJECTIVES["distillation" if distill else "cross_entropy"]
    out_shape, in_shape = qmodel.output_shape[1:], qmodel.input_shape[1:]
    if out_shape == in_shape:
        if distill:
            log.info("student '%s' outputs a reconstruction, not a score: trained as an autoencoder on "
                     "the reconstruction error (the teacher is not used)", student_name)
        return OBJECTIVES["autoencoder"]
    if out_shape != (1,):
        raise TriggerError(f"anomaly student '{student_name}' outputs shape {out_shape}; "
                           f"it must output its input's shape {in_shape} or one score (N, 1)")
    on_chip_reconstruction = reconstruction_score_in_model(qmodel)
    if distill:
        return OBJECTIVES["score_distillation_log" if on_chip_reconstruction else "score_distillation"]
    if on_chip_reconstruction:
        return OBJECTIVES["on_chip_reconstruction"]
    raise TriggerError(f"student '{student_name}' computes an encoder-only anomaly score; "
                       "trained alone on background it would collapse to zero: it needs a teacher "
                       "(enable distillation and pass the float teacher)")


@dataclass(frozen=True)
class _FitData:
    """The events a student is fitted and validated on (and, for a classifier, its labels)."""

    x_train: np.ndarray
    x_val: np.ndarray
    labels_train: np.ndarray | None = None
    labels_val: np.ndarray | None = None
    n_classes: int = 0


def _fit_data(task: str, qmodel, student_name: str, x_train, y_train, x_val, y_val) -> _FitData:
    """The fit data of ``task``, with the one-line errors for labels a classifier cannot have and
    anomaly splits without background."""
    x_train = np.asarray(x_train, dtype=np.float32)
    x_val = np.asarray(x_val, dtype=np.float32)
    if task == "classification":
        y_train = np.asarray(y_train).astype(np.int64).ravel()
        y_val = np.asarray(y_val).astype(np.int64).ravel()
        n_classes = int(qmodel.output_shape[-1])
        if qmodel.output_shape[1:] != (n_classes,) or max(y_train.max(), y_val.max()) >= n_classes or min(
                y_train.min(), y_val.min()) < 0:
            raise TriggerError(f"model '{student_name}' outputs shape {qmodel.output_shape[1:]} but the labels "
                               f"run from {min(y_train.min(), y_val.min())} to {max(y_train.max(), y_val.max())}; "
                               "a classifier needs one output per class")
        return _FitData(x_train, x_val, y_train, y_val, n_classes)
    fit_x = x_train[np.asarray(y_train).ravel() == 0]
    val_x = x_val[np.asarray(y_val).ravel() == 0]
    if len(fit_x) == 0 or len(val_x) == 0:
        raise TriggerError("anomaly training needs background events (label 0) in the training and "
                           "validation splits; none were found")
    return _FitData(fit_x, val_x)


# --- training -------------------------------------------------------------------------------------

def _check_task(task: str, distill: bool, teacher) -> None:
    if task not in TASKS:
        raise TriggerError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if distill and teacher is None:
        raise TriggerError("distillation is enabled but no teacher model was given; pass the float teacher "
                           "or disable distillation (--no-distill / distillation.enabled: false)")


def _compress_model(student_float, *, x_train, y_train, x_val, y_val, task, teacher, quant, pruning,
                    distillation, train, seed) -> CompressedModel:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    set_seed(seed)
    distill = bool(distillation.enabled)
    _check_task(task, distill, teacher)
    qmodel = quantize_model(student_float, quant)
    fit = _fit_data(task, qmodel, student_float.name, x_train, y_train, x_val, y_val)
    objective = select_objective(task, qmodel, distill=distill, student_name=student_float.name)
    fit_y, val_y = objective.targets(fit, teacher)
    description = objective.describe(distillation)

    plan: PruningPlan = plan_pruning(qmodel, pruning, n_train=len(fit.x_train), batch_size=train.batch_size,
                                     epochs=train.epochs)
    full = wrap_for_pruning(qmodel, plan, pruning) if plan.active else qmodel
    head, is_logits = logits_cut(full) if task == "classification" else (full, True)
    if not is_logits:
        raise TriggerError(f"student '{student_float.name}' has its softmax fused into the last layer after "
                           "quantization; this should not happen (quantize_model splits it off)")
    head.compile(optimizer=tf.keras.optimizers.Adam(train.learning_rate), loss=objective.loss(distillation),
                 metrics=list(objective.metrics))

    history: dict[str, list[float]] = {}
    def targets_reached() -> bool:
        # every pruned layer at its final sparsity (the schedule's step count can lag by a step)
        sp = model_sparsity(full)
        return all(sp.get(name, 0.0) >= target - 0.005 for name, target in plan.targets.items())

    best = best_epoch_callback(train.patience, start_epoch=plan.final_epoch if plan.active else 0,
                               ready=targets_reached if plan.active else None)
    callbacks = ([tfmot.sparsity.keras.UpdatePruningStep()] if plan.active else []) + [
        _progress_callback(train.epochs, f"compress {student_float.name}", list(plan.targets), full, history), best,
        stop_on_divergence(f"quantized student '{student_float.name}'", train.learning_rate)]
    log.info("compressing '%s': %s; pruning %s", student_float.name, description,
             ", ".join(f"{k}->{v:.0%}" for k, v in plan.targets.items()) or "none")
    head.fit(fit.x_train, fit_y, validation_data=(fit.x_val, val_y), epochs=train.epochs,
             batch_size=train.batch_size, shuffle=True, verbose=0, callbacks=callbacks)

    best_epoch = best.best_epoch
    if best_epoch < 0:  # the targets were never all reached: keep the last epoch, and say so
        best_epoch = len(history.get("loss", [])) - 1
        log.warning("pruning targets not reached within %d epochs; keeping the last epoch (raise train.epochs "
                    "or lower pruning.end_fraction)", train.epochs)
    final = strip(full) if plan.active else qmodel
    sparsity = model_sparsity(final)
    for name, target in plan.targets.items():
        if sparsity[name] < target - 0.02:
            log.warning("layer '%s' reached sparsity %.3f, below its target %.2f (training stopped early?)",
                        name, sparsity[name], target)
    return CompressedModel(model=final, history=history, sparsity=sparsity, task=task,
                           distilled=objective.distilled, objective=description, best_epoch=best_epoch,
                           targets=dict(plan.targets), bits=describe_bits(final))
