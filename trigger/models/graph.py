"""The Keras layer graph, in one place: who reads whom, the weight layers and their kernels, the cut
before a final softmax, the anomaly score and the bit-operation (BOPs) formula.

Every stage that walks a model (quantization, pruning, BOPs, distillation, hls4ml configuration,
C simulation) uses these functions. The graph is read from the model's *functional config*, which
lists, per layer, only the calls made in this model: a layer shared with another model (the
pruning wrappers of :mod:`trigger.compress` share the quantized model's layers) contributes only
this model's nodes. Layers are named by their Keras names.

This module imports nothing from trigger.compress, trigger.firmware or trigger.report; TensorFlow
is imported inside the functions that need it, so importing the module stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from trigger.errors import TriggerError

# --- the layer graph -------------------------------------------------------------------------------

def as_functional(model):
    """A functional view of a Sequential or functional model (shares the layers)."""
    import tensorflow as tf

    if isinstance(model, tf.keras.Sequential):
        try:
            inputs = model.inputs
        except AttributeError:
            inputs = None
        if not inputs:
            raise TriggerError(f"model '{model.name}' has no defined input shape; build it with an "
                               "Input (or input_shape=...) before compressing")
        return tf.keras.Model(model.inputs, model.outputs, name=model.name)
    return model


@dataclass(frozen=True)
class Graph:
    """A model's layer graph by layer name (see the module docstring)."""

    model: Any                        # the functional view of the model
    config: dict                      # its functional config (``model.get_config()``)
    layers: dict[str, Any]            # name -> layer object
    classes: dict[str, str]           # name -> class name as the config stores it
    inbound: dict[str, list[str]]     # name -> the layers it reads, in call order
    consumers: dict[str, list[str]]   # name -> the layers that read it (once per read)
    outputs: list[str]                # the layers producing the model's outputs

    def parents(self, name: str) -> list:
        """The layer objects that layer ``name`` reads."""
        return [self.layers[n] for n in self.inbound.get(name, [])]

    def children(self, name: str) -> list:
        """The layer objects that read layer ``name``."""
        return [self.layers[n] for n in self.consumers.get(name, [])]


def inbound_map(config: dict) -> dict[str, list[str]]:
    """{layer name: names of the layers it reads} from a functional config."""
    return {lc["name"]: [entry[0] for node in lc["inbound_nodes"] for entry in node] for lc in config["layers"]}


def consumer_map(config: dict) -> dict[str, list[str]]:
    """{layer name: names of the layers that read it} from a functional config (layers nobody
    reads are absent)."""
    out: dict[str, list[str]] = {}
    for name, sources in inbound_map(config).items():
        for source in sources:
            out.setdefault(source, []).append(name)
    return out


def layer_graph(model) -> Graph:
    """The :class:`Graph` of a Sequential or functional model."""
    fmodel = as_functional(model)
    config = fmodel.get_config()
    return Graph(model=fmodel, config=config, layers={layer.name: layer for layer in fmodel.layers},
                 classes={lc["name"]: lc["class_name"] for lc in config["layers"]},
                 inbound=inbound_map(config), consumers=consumer_map(config),
                 outputs=[entry[0] for entry in config["output_layers"]])


#: QKeras 0.9.0 layers that cannot run on TensorFlow 2.14: their cells call
#: ``tensorflow.python.util.nest.is_sequence``, which TensorFlow 2.14 removed (renamed ``is_nested``),
#: so building or loading a model that holds one fails inside QKeras


# --- weight layers -----------------------------------------------------------------------------------

def unwrap(layer):
    """The layer inside a tfmot pruning wrapper (``PruneLowMagnitude.layer``), else the layer."""
    return getattr(layer, "layer", layer)


def weight_layers(model) -> list:
    """Layers with a kernel (Dense/Conv and their QKeras versions; a pruning wrapper counts as its layer)."""
    return [layer for layer in model.layers if getattr(unwrap(layer), "kernel", None) is not None]


def kernel(layer, *, quantized: bool = False) -> np.ndarray:
    """The kernel of a weight layer (through a pruning wrapper); ``quantized=True`` applies the
    layer's kernel quantizer, giving the values the firmware uses."""
    inner = unwrap(layer)
    q = getattr(inner, "kernel_quantizer_internal", None)
    if quantized and q is not None:
        return np.asarray(q(inner.kernel))
    return np.asarray(inner.kernel.numpy())


def bit_operations(*, macs: float, nonzero_macs: float, fan_in: int, activation_bits: float,
                   weight_bits: float) -> float:
    """BOPs of one weight layer (Baskin et al. 2021; Hawks et al., Front. AI 4 (2021) 676564):
    every multiply with a non-zero weight costs ``b_a * b_w``, every MAC pays an accumulator adder
    of ``b_a + b_w + log2(fan_in)`` bits. See :mod:`trigger.compress.bops`."""
    return nonzero_macs * activation_bits * weight_bits + macs * (activation_bits + weight_bits + math.log2(fan_in))


# --- softmax and logits ------------------------------------------------------------------------------

def is_softmax(layer) -> bool:
    """True for a layer that is only a softmax: ``Activation('softmax')``, ``QActivation('softmax')``
    or ``Softmax``."""
    import tensorflow as tf

    layer = unwrap(layer)
    if isinstance(layer, tf.keras.layers.Softmax):
        return True
    # an activation layer holds no weights and names its function in its config
    return not layer.weights and "softmax" in str(layer.get_config().get("activation", ""))


def has_fused_softmax(layer) -> bool:
    """True for a layer (e.g. a Dense) whose own activation is a softmax."""
    act = getattr(unwrap(layer), "activation", None)
    return "softmax" in str(getattr(act, "__name__", act))


def _output_nodes(model) -> list[tuple[Any, int]]:
    """(layer, node index) of the call that produces each of ``model``'s outputs."""
    return [tuple(t._keras_history[:2]) for t in model.outputs]


def softmax_input(model):
    """The tensor a final softmax layer of ``model`` reads (its logits), or None if the model does
    not end in a separate softmax layer.

    The softmax's call is the one that produces this model's output, not the layer's first call: a
    layer can be shared with another model (pruning wrappers around the quantized model)."""
    for layer, node_index in _output_nodes(model):
        if is_softmax(layer):
            if len(model.outputs) != 1:
                raise TriggerError(f"model '{model.name}' has {len(model.outputs)} outputs; a classifier has one")
            return layer._inbound_nodes[node_index].input_tensors
    return None


def split_fused_softmax(model):
    """``model`` with a softmax fused into its output layer (``QDense(..., activation='softmax')``)
    moved into a separate ``Activation('softmax')`` layer named ``<layer>_softmax``, and that name;
    ``(model, None)`` if the output layer has no fused softmax. The weights are copied; the function
    is the same, and the layer before the new softmax gives the logits (:func:`softmax_input`)."""
    import tensorflow as tf

    if len(model.outputs) != 1:
        return model, None
    out_layer = model.outputs[0]._keras_history.layer
    if is_softmax(out_layer) or not has_fused_softmax(out_layer):
        return model, None
    names = {layer.name for layer in model.layers}
    name = f"{out_layer.name}_softmax"
    while name in names:
        name += "_"

    def clone(layer):
        config = layer.get_config()
        if layer.name == out_layer.name:
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    from trigger.models.io import custom_objects

    fmodel = as_functional(model)
    with tf.keras.utils.custom_object_scope(custom_objects()):
        body = tf.keras.models.clone_model(fmodel, clone_function=clone)
    body.set_weights(fmodel.get_weights())
    out = tf.keras.layers.Activation("softmax", name=name)(body.outputs[0])
    return tf.keras.Model(body.inputs, out, name=model.name), name


def logits_cut(model) -> tuple[Any, bool]:
    """(model giving logits, True) if ``model`` ends in a separate softmax layer (cut before it) or
    outputs logits; (model, False) if the softmax is fused into its last weight layer (the outputs
    are probabilities)."""
    import tensorflow as tf

    logits = softmax_input(model)
    if logits is not None:
        return tf.keras.Model(model.inputs, logits, name=f"{model.name}_logits"), True
    if any(has_fused_softmax(layer) for layer, _ in _output_nodes(model)):
        return model, False
    return model, True


# --- anomaly score -----------------------------------------------------------------------------------

def anomaly_score_from_outputs(outputs, x: np.ndarray, *, name: str = "model") -> np.ndarray:
    """(N,) float64 anomaly score from a model's outputs on ``x``.

    Outputs of the input's shape (or its size per event, as firmware returns them flattened) are a
    reconstruction: the score is the sum of squared differences. Outputs (N, 1) or (N,) are the score.
    """
    x = np.asarray(x)
    out = np.asarray(outputs, dtype=np.float64)
    if out.shape == x.shape:
        return np.sum((x.astype(np.float64) - out) ** 2, axis=tuple(range(1, x.ndim)))
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
        return out.reshape(-1)
    if out.ndim >= 1 and len(out) == len(x) and out.size == x.size:
        return anomaly_score_from_outputs(out.reshape(x.shape), x, name=name)
    raise TriggerError(f"model '{name}' outputs shape {out.shape[1:]}: an anomaly model must output "
                       f"its input's shape {x.shape[1:]} (autoencoder) or one score per event (N, 1)")


def anomaly_score(model, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """(N,) float64 anomaly score of ``model`` on ``x``: the sum of squared differences for an
    autoencoder (output of the input's shape), the model's own score for an (N, 1) output."""
    x = np.asarray(x, dtype=np.float32)
    out = model.predict(x, batch_size=batch_size, verbose=0)
    return anomaly_score_from_outputs(out, x, name=model.name)
