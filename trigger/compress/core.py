"""compress_model: quantize a float student, train it with quantization-aware pruning and
(optionally) knowledge distillation, strip the pruning wrappers. One code path for `trigger train`
(the zoo's students) and `trigger compress` (any float model)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from trigger.compress.distill import (anomaly_score, classification_loss, packed_accuracy,
                                      reconstruction_score_in_model, score_target, teacher_logits)
from trigger.compress.prune import PruningPlan, model_sparsity, plan_pruning, strip, wrap_for_pruning
from trigger.compress.quantize import describe_bits, quantize_model, quiet_keras_warnings
from trigger.config import DistillSection, PruningSection, QuantSection, TrainSection
from trigger.errors import TriggerError
from trigger.runtime import log, progress, set_seed

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


def _is_softmax(act: Any) -> bool:
    return "softmax" in str(getattr(act, "__name__", act))


def logits_of(model) -> tuple[Any, bool]:
    """(model giving logits, True) if ``model`` ends in a separate softmax layer or outputs logits;
    (model, False) if the softmax is fused into its last weight layer (outputs are probabilities)."""
    import tensorflow as tf

    last = model.layers[-1]
    if isinstance(last, tf.keras.layers.Activation) or type(last).__name__ == "QActivation":
        if _is_softmax(getattr(last, "activation", None)):
            if len(model.outputs) != 1:
                raise TriggerError(f"model '{model.name}' has {len(model.outputs)} outputs; a classifier has one")
            # Cut at the input of the softmax node that produces this model's output. (Layers can be
            # shared with other models, e.g. pruning wrappers around the quantized model, so the
            # layer's first node, which trigger.models.io.logits_model follows, may belong to another.)
            layer, node_index, _ = model.outputs[0]._keras_history
            logits = layer._inbound_nodes[node_index].input_tensors
            return tf.keras.Model(model.inputs, logits, name=f"{model.name}_logits"), True
        return model, True
    if _is_softmax(getattr(last, "activation", None)):
        return model, False
    return model, True


def _best_after_callback(start_epoch: int, patience: int, ready: Callable[[], bool] | None = None):
    """Early stopping on val_loss that only counts epochs from ``start_epoch`` on and once
    ``ready()`` (every pruning target reached), restoring the best such epoch's weights at the end
    (earlier, denser weights are never kept). ``.best_epoch`` stays -1 if no epoch qualified."""
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


def _progress_callback(epochs: int, desc: str, pruned_names: list[str], full_model, history: dict):
    import tensorflow as tf

    class EpochProgress(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = progress(total=epochs, desc=desc, unit="epoch")

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            sp = model_sparsity(full_model)
            pruned = [sp[n] for n in pruned_names if n in sp]
            logs["sparsity"] = float(np.mean(pruned)) if pruned else 0.0
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            shown = {k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "val_loss", "val_accuracy", "sparsity")}
            self.bar.set_postfix(shown)
            self.bar.update(1)
            log.debug("epoch %d: %s", epoch + 1, shown)

        def on_train_end(self, logs=None):
            self.bar.close()

    return EpochProgress()


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


def _compress_model(student_float, *, x_train, y_train, x_val, y_val, task, teacher, quant, pruning,
                    distillation, train, seed) -> CompressedModel:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    set_seed(seed)
    if task not in TASKS:
        raise TriggerError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    distill = bool(distillation.enabled)
    if distill and teacher is None:
        raise TriggerError("distillation is enabled but no teacher model was given; pass the float teacher "
                           "or disable distillation (--no-distill / distillation.enabled: false)")

    qmodel = quantize_model(student_float, quant)
    x_train = np.asarray(x_train, dtype=np.float32)
    x_val = np.asarray(x_val, dtype=np.float32)

    if task == "classification":
        y_train = np.asarray(y_train).astype(np.int64).ravel()
        y_val = np.asarray(y_val).astype(np.int64).ravel()
        n_classes = int(qmodel.output_shape[-1])
        if qmodel.output_shape[1:] != (n_classes,) or max(y_train.max(), y_val.max()) >= n_classes or min(
                y_train.min(), y_val.min()) < 0:
            raise TriggerError(f"model '{student_float.name}' outputs shape {qmodel.output_shape[1:]} but the labels "
                               f"run from {min(y_train.min(), y_val.min())} to {max(y_train.max(), y_val.max())}; "
                               "a classifier needs one output per class")
        fit_x, val_x = x_train, x_val
        fit_y = y_train[:, None].astype(np.float32)
        val_y = y_val[:, None].astype(np.float32)
        if distill:
            t_train, t_val = teacher_logits(teacher, x_train), teacher_logits(teacher, x_val)
            if t_train.shape[1:] != (n_classes,):
                raise TriggerError(f"teacher '{teacher.name}' outputs shape {t_train.shape[1:]} but the student "
                                   f"has {n_classes} classes; distil from a teacher of the same task")
            fit_y = np.concatenate([fit_y, t_train], axis=1)
            val_y = np.concatenate([val_y, t_val], axis=1)
            objective = (f"{distillation.alpha:g}*CE(labels) + {1 - distillation.alpha:g}*T^2*KL(teacher || student) "
                         f"at T={distillation.temperature:g} on logits")
        else:
            objective = "CE(labels) on logits"
        loss = classification_loss(distillation.alpha, distillation.temperature, distill)
        metrics = [packed_accuracy]
    else:
        fit_x = x_train[np.asarray(y_train).ravel() == 0]
        val_x = x_val[np.asarray(y_val).ravel() == 0]
        if len(fit_x) == 0 or len(val_x) == 0:
            raise TriggerError("anomaly training needs background events (label 0) in the training and "
                               "validation splits; none were found")
        metrics = []
        if qmodel.output_shape[1:] == qmodel.input_shape[1:]:
            fit_y, val_y, loss = fit_x, val_x, "mse"
            if distill:
                log.info("student '%s' outputs a reconstruction, not a score: trained as an autoencoder on "
                         "the reconstruction error (the teacher is not used)", student_float.name)
            distill = False
            objective = "MSE(reconstruction, input) on background"
        elif qmodel.output_shape[1:] == (1,):
            on_chip_reconstruction = reconstruction_score_in_model(qmodel)
            if distill:
                fit_y = score_target(anomaly_score(teacher, fit_x))[:, None]
                val_y = score_target(anomaly_score(teacher, val_x))[:, None]
                if on_chip_reconstruction:
                    # the student's score is itself a squared reconstruction error: compare both in log
                    # space, so it stays an error in the teacher's units (and the tail does not dominate)
                    def loss(target, score):
                        return tf.reduce_mean(tf.square(tf.math.log1p(tf.nn.relu(score)) - target), axis=-1)

                    objective = "MSE(log1p(student score), log1p(teacher score)) on background"
                else:
                    loss = "mse"
                    objective = "MSE(student score, log1p(teacher score)) on background"
            elif on_chip_reconstruction:
                fit_y = np.zeros((len(fit_x), 1), np.float32)
                val_y = np.zeros((len(val_x), 1), np.float32)

                def loss(_unused, score):  # the score IS the reconstruction error: autoencoder training
                    return tf.reduce_mean(score, axis=-1)

                objective = "on-chip reconstruction score minimised on background (autoencoder training)"
            else:
                raise TriggerError(f"student '{student_float.name}' computes an encoder-only anomaly score; "
                                   "trained alone on background it would collapse to zero: it needs a teacher "
                                   "(enable distillation and pass the float teacher)")
        else:
            raise TriggerError(f"anomaly student '{student_float.name}' outputs shape {qmodel.output_shape[1:]}; "
                               f"it must output its input's shape {qmodel.input_shape[1:]} or one score (N, 1)")

    plan: PruningPlan = plan_pruning(qmodel, pruning, n_train=len(fit_x), batch_size=train.batch_size,
                                     epochs=train.epochs)
    full = wrap_for_pruning(qmodel, plan, pruning) if plan.active else qmodel
    head = logits_of(full)[0] if task == "classification" else full
    if task == "classification" and not logits_of(full)[1]:
        raise TriggerError(f"student '{student_float.name}' has its softmax fused into the last layer after "
                           "quantization; this should not happen (quantize_model splits it off)")
    head.compile(optimizer=tf.keras.optimizers.Adam(train.learning_rate), loss=loss, metrics=metrics)

    history: dict[str, list[float]] = {}
    def targets_reached() -> bool:
        # every pruned layer at its final sparsity (the schedule's step count can lag by a step)
        sp = model_sparsity(full)
        return all(sp.get(name, 0.0) >= target - 0.005 for name, target in plan.targets.items())

    best = _best_after_callback(plan.final_epoch if plan.active else 0, train.patience,
                                targets_reached if plan.active else None)
    callbacks = ([tfmot.sparsity.keras.UpdatePruningStep()] if plan.active else []) + [
        _progress_callback(train.epochs, f"compress {student_float.name}", list(plan.targets), full, history), best]
    log.info("compressing '%s': %s; pruning %s", student_float.name, objective,
             ", ".join(f"{k}->{v:.0%}" for k, v in plan.targets.items()) or "none")
    head.fit(fit_x, fit_y, validation_data=(val_x, val_y), epochs=train.epochs, batch_size=train.batch_size,
             shuffle=True, verbose=0, callbacks=callbacks)

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
    return CompressedModel(model=final, history=history, sparsity=sparsity, task=task, distilled=distill,
                           objective=objective, best_epoch=best_epoch, targets=dict(plan.targets),
                           bits=describe_bits(final))
