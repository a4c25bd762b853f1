"""Quantization-aware pruning with tfmot: which layers, which schedule, wrapping and stripping,
and the sparsity actually reached."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trigger.config import PruningSection
from trigger.errors import TriggerError
from trigger.models.graph import kernel, layer_graph, unwrap, weight_layers


@dataclass(frozen=True)
class PruningPlan:
    """Target sparsity per pruned layer, the tfmot steps, and the epoch from which it is reached."""

    targets: dict[str, float]  # layer name -> final sparsity (only layers that are pruned)
    begin_step: int
    end_step: int               # step at which the final sparsity is in place
    frequency: int              # steps between mask updates
    final_epoch: int            # 0-based epoch at whose end every target is reached

    @property
    def active(self) -> bool:
        return bool(self.targets)


def output_weight_layers(model) -> set[str]:
    """The trainable weight layers nearest to each model output (walking back through layers
    without weights and through fixed, non-trainable matrices)."""
    graph = layer_graph(model)
    found: set[str] = set()
    stack = list(graph.outputs)
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        inner = unwrap(graph.layers[name])
        if getattr(inner, "kernel", None) is not None and inner.trainable:
            found.add(name)
            continue
        stack.extend(graph.inbound.get(name, []))
    return found


def plan_pruning(model, pruning: PruningSection, *, n_train: int, batch_size: int, epochs: int) -> PruningPlan:
    """Which layers of ``model`` are pruned to which sparsity, and when.

    Trainable weight layers get ``pruning.sparsity`` unless ``pruning.layers`` names them; the
    output layer is left dense unless ``pruning.prune_output``; fixed (non-trainable) layers are
    never pruned. The mask-update frequency is capped at one epoch so that small data sets still
    reach their target.
    """
    names = {layer.name for layer in model.layers}
    per_layer = dict(getattr(pruning, "layers", {}) or {})
    for name, target in per_layer.items():
        if name not in names:
            raise TriggerError(f"pruning.layers names '{name}', which is not a layer of model '{model.name}'; "
                               f"weight layers are: {', '.join(l.name for l in weight_layers(model))}")
        if not 0 <= target < 1:
            raise TriggerError(f"pruning.layers.{name}: sparsity must be in [0, 1), got {target}")
    outputs = output_weight_layers(model)
    targets: dict[str, float] = {}
    for layer in weight_layers(model):
        if not layer.trainable:
            continue  # fixed wiring / sum matrices keep every entry
        if layer.name in per_layer:
            target = per_layer[layer.name]
        elif layer.name in outputs and not pruning.prune_output:
            continue
        else:
            target = pruning.sparsity
        if target > 0:
            targets[layer.name] = float(target)

    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    total = steps_per_epoch * epochs
    frequency = max(1, min(pruning.frequency, steps_per_epoch))
    begin = int(round(pruning.begin_fraction * total))
    if pruning.schedule == "constant":
        end = begin  # ConstantSparsity reaches its target at the first pruning step
    else:
        span = max(frequency, int(round(pruning.end_fraction * total)) - begin)
        end = begin + (span // frequency) * frequency  # a pruning step falls exactly on end
    final_epoch = min(epochs - 1, end // steps_per_epoch)
    return PruningPlan(targets, begin, end, frequency, final_epoch)


def wrap_for_pruning(model, plan: PruningPlan, pruning: PruningSection):
    """A model sharing ``model``'s layers, with the planned ones wrapped in tfmot pruning wrappers."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    sk = tfmot.sparsity.keras

    def schedule(target: float):
        if pruning.schedule == "constant":
            return sk.ConstantSparsity(target, begin_step=plan.begin_step, end_step=-1, frequency=plan.frequency)
        return sk.PolynomialDecay(initial_sparsity=0.0, final_sparsity=target, begin_step=plan.begin_step,
                                  end_step=plan.end_step, frequency=plan.frequency)

    def wrap(layer):
        if layer.name in plan.targets:
            return sk.prune_low_magnitude(layer, pruning_schedule=schedule(plan.targets[layer.name]))
        return layer  # shared, not cloned: keeps the weights

    wrapped = tf.keras.models.clone_model(model, clone_function=wrap)
    return wrapped


def apply_masks(model) -> None:
    """weights <- weights * mask in every pruning wrapper (after restoring the best epoch)."""
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    for layer in model.layers:
        if isinstance(layer, PruneLowMagnitude):
            layer.pruning_obj.weight_mask_op()


def strip(model):
    """The model without pruning wrappers; the masked weights (zeros) stay in the kernels."""
    import tensorflow_model_optimization as tfmot

    apply_masks(model)
    return tfmot.sparsity.keras.strip_pruning(model)


def model_sparsity(model, *, quantized: bool = False) -> dict[str, float]:
    """Fraction of zero kernel entries per weight layer, and ``'total'`` over all of them.

    ``quantized=False`` counts the stored weights (what pruning set to zero); ``quantized=True``
    counts the weights as the firmware uses them, after each layer's kernel quantizer, where
    small weights may also round to zero. Biases are not counted (they are never pruned).
    """
    out: dict[str, float] = {}
    zeros = count = 0
    for layer in weight_layers(model):
        k = kernel(layer, quantized=quantized)
        z = int(np.sum(k == 0))
        out[unwrap(layer).name] = z / k.size
        zeros += z
        count += k.size
    out["total"] = zeros / count if count else 0.0
    return out
