"""Float Keras -> QKeras: the same topology with quantizers on every weight and activation.

The rebuilt model starts from the float weights, so quantization-aware training fine-tunes the
float solution instead of learning from scratch. Rules (see docs/compression.md):

- after every ``Input``: ``QActivation(quantized_bits(input_bits, input_integer, alpha=1))``, so the
  model's input type is defined (the firmware stage reads it to set hls4ml's input precision);
- ``Dense``/``Conv1D``/``Conv2D`` -> ``QDense``/``QConv1D``/``QConv2D`` with
  ``quantized_bits(b, i, alpha=1)`` kernel and bias; a fused activation is split off;
- relu (fused, ``Activation('relu')`` or a default ``ReLU`` layer) -> ``QActivation(quantized_relu(b, i))``;
  linear disappears; a softmax that produces a model output stays a plain ``Activation('softmax')``;
- ``BatchNormalization`` directly after a ``Dense``/``Conv`` with linear activation (and the only
  consumer of its output) is folded into that layer's float weights before quantization; one whose
  only reader is a ``Dense`` or a ``Conv`` with padding 'valid' is folded into that layer's input side;
  one directly on the model input is folded into the model file's input transform by
  :func:`fold_input_batchnorm` (``trigger compress`` does this before quantizing); any other is
  refused (a float BatchNormalization is never bit-exact in firmware);
- elu, tanh, sigmoid, leaky_relu, softmax before the output and multi-output models are refused
  with one line (no QKeras activation has an exact hls4ml implementation of them);
- a non-trainable ``Dense`` (fixed wiring / summing matrices) becomes a non-trainable ``QDense``
  whose quantizer represents its values exactly; it is never pruned;
- ``Dropout`` (the identity at inference) is dropped; shape and merge layers and pooling are copied.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from trigger import KNOWN_KERAS_WARNINGS
from trigger.config import LayerQuant, QuantSection
from trigger.errors import TriggerError
from trigger.models.graph import Graph, layer_graph, unwrap
from trigger.runtime import log

# Layers copied as they are (no weights, or no quantization needed).
PASSTHROUGH_LAYERS = (
    "Flatten", "Reshape", "Permute", "Concatenate", "Add", "Subtract", "Multiply",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
)
WEIGHT_LAYERS = ("Dense", "Conv1D", "Conv2D")
MERGE_LAYERS = ("Concatenate", "Add", "Subtract", "Multiply")
SUPPORTED_LAYERS = ("InputLayer", *WEIGHT_LAYERS, "BatchNormalization", "Activation", "ReLU", "Softmax",
                    "Dropout", *PASSTHROUGH_LAYERS)
SUPPORTED_ACTIVATIONS = ("linear", "relu", "softmax (model output only)")
# Activation layer classes that are refused with the activation list rather than the layer list.
ACTIVATION_LAYERS = ("LeakyReLU", "ELU", "PReLU", "ThresholdedReLU")
# Where a BatchNormalization is supported (it is always folded away).
BN_SUPPORTED = ("directly after a Dense/Conv with linear activation that nothing else reads, directly on "
                "the model input (folded into the input transform), or directly before a Dense or a "
                "padding='valid' Conv that is its only reader")
_Q_CLASS = {"Dense": "QDense", "Conv1D": "QConv1D", "Conv2D": "QConv2D"}
# Largest number of fractional bits tried when looking for an exact fixed-point type of a fixed matrix.
_MAX_FRACTIONAL_BITS = 24


@contextlib.contextmanager
def quiet_keras_warnings() -> Iterator[None]:
    """Re-apply the filters of the known Keras warnings inside a block (in case a caller reset the
    warning filters, as pytest does per test)."""
    with warnings.catch_warnings():
        for message in KNOWN_KERAS_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


def supported_list() -> str:
    """The supported layer classes, as one comma-separated string for error messages."""
    return ", ".join(SUPPORTED_LAYERS)


@dataclass(frozen=True)
class Bits:
    """Resolved bit widths of one layer (weights/biases and its activation)."""

    weight_bits: int
    weight_integer: int
    activation_bits: int
    activation_integer: int


def layer_bits(quant: QuantSection, name: str) -> Bits:
    """The defaults of ``quant`` overridden by ``quant.layers[name]``."""
    over: LayerQuant | None = quant.layers.get(name)

    def pick(key: str) -> int:
        value = getattr(over, key) if over is not None else None
        return int(getattr(quant, key) if value is None else value)

    return Bits(pick("weight_bits"), pick("weight_integer"), pick("activation_bits"), pick("activation_integer"))


def exact_quantizer_bits(values: np.ndarray) -> tuple[int, int, bool]:
    """(bits, integer, exact) of the smallest signed ``quantized_bits`` that holds every value.

    Used for fixed, non-trainable matrices (0/1 wiring of a graph network, the all-ones sum of an
    anomaly score): their values must survive quantization unchanged. If no type of at most 32 bits
    is exact, returns the best 32-bit one with ``exact=False``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return 2, 1, True
    frac = _MAX_FRACTIONAL_BITS
    exact = False
    for f in range(_MAX_FRACTIONAL_BITS + 1):
        scaled = v * 2.0**f
        if np.all(scaled == np.round(scaled)):
            frac, exact = f, True
            break
    step = 2.0**-frac
    integer = 0
    # signed range of quantized_bits(1 + integer + frac, integer): [-2^integer, 2^integer - step]
    while v.max() > 2.0**integer - step or v.min() < -(2.0**integer):
        integer += 1
    bits = 1 + integer + frac
    if bits > 32:
        frac = max(0, 31 - integer)
        bits, exact = 1 + integer + frac, False
    return bits, integer, exact


def _activation_name(act: Any) -> str:
    if act is None:
        return "linear"
    if isinstance(act, str):
        return act
    return getattr(act, "__name__", str(act))


def _reject(layer, why: str) -> TriggerError:
    return TriggerError(f"layer '{layer.name}' ({type(layer).__name__}) is not supported for compression: {why}; "
                        f"supported layers: {supported_list()}")


def _check_float(model) -> None:
    for layer in model.layers:
        if type(layer).__module__.startswith("qkeras") or type(layer).__name__.startswith("PruneLowMagnitude"):
            raise TriggerError(f"model '{model.name}' is already quantized or pruned (layer '{layer.name}' is "
                               f"{type(layer).__name__}); pass the float Keras model")


def _bn_folds(graph: Graph) -> dict[str, str]:
    """{batchnorm name: weight-layer name} for every BatchNormalization that can be folded."""
    folds: dict[str, str] = {}
    for lc in graph.config["layers"]:
        if lc["class_name"] != "BatchNormalization" or len(lc["inbound_nodes"]) != 1:
            continue
        node = lc["inbound_nodes"][0]
        if len(node) != 1:
            continue
        src = graph.layers[node[0][0]]
        bn = graph.layers[lc["name"]]
        if type(src).__name__ not in WEIGHT_LAYERS or not src.trainable:
            continue
        if _activation_name(src.activation) != "linear" or graph.consumers.get(src.name) != [bn.name]:
            continue
        axes = [a % len(bn.input_shape) for a in bn.axis]
        if axes != [len(bn.input_shape) - 1]:
            continue  # only the channels-last axis folds into a kernel's output dimension
        folds[bn.name] = src.name
    return folds


def _is_last_axis(bn) -> bool:
    rank = len(bn.input_shape)
    return [a % rank for a in bn.axis] == [rank - 1]


def _bn_forward_folds(graph: Graph, backward: dict[str, str]) -> dict[str, str]:
    """{batchnorm name: weight-layer name} for every BatchNormalization (not folded backward, not on
    an input) whose only reader is a trainable Dense or a padding='valid' Conv with one input: the
    affine map folds into that layer's kernel rows and bias (with 'same' padding the zeros padded
    around the normalized input would not be shifted, so it is not exact there)."""
    folds: dict[str, str] = {}
    for name, cls in graph.classes.items():
        if cls != "BatchNormalization" or name in backward or len(graph.inbound.get(name, [])) != 1:
            continue
        if graph.classes[graph.inbound[name][0]] == "InputLayer" or not _is_last_axis(graph.layers[name]):
            continue
        readers = graph.consumers.get(name, [])
        if len(readers) != 1 or len(graph.inbound.get(readers[0], [])) != 1:
            continue
        dst = graph.layers[readers[0]]
        if type(dst).__name__ not in WEIGHT_LAYERS or not dst.trainable:
            continue
        if type(dst).__name__ != "Dense" and dst.get_config().get("padding") != "valid":
            continue
        folds[name] = dst.name
    return folds


def _bn_affine(bn, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of a BatchNormalization at inference: ``y = x * scale + shift`` (float64)."""
    gamma = bn.gamma.numpy().astype(np.float64) if bn.scale else np.ones(n)
    beta = bn.beta.numpy().astype(np.float64) if bn.center else np.zeros(n)
    scale = gamma / np.sqrt(bn.moving_variance.numpy().astype(np.float64) + bn.epsilon)
    return scale, beta - bn.moving_mean.numpy().astype(np.float64) * scale


def _prefolded_weights(layer, bn) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of ``bn`` (inference mode) followed by ``layer``, as one affine layer: the
    kernel's input-channel rows scaled, the shift summed through the kernel into the bias."""
    kernel = layer.kernel.numpy().astype(np.float64)
    bias = layer.bias.numpy().astype(np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    scale, shift = _bn_affine(bn, kernel.shape[-2])
    folded = kernel * scale[:, None]
    bias = bias + (kernel * shift[:, None]).reshape(-1, kernel.shape[-1]).sum(axis=0)
    return folded.astype(np.float32), bias.astype(np.float32)


def input_batchnorms(model) -> list[str]:
    """Names of the BatchNormalization layers that read a model input directly."""
    graph = layer_graph(model)
    return [name for name, cls in graph.classes.items() if cls == "BatchNormalization"
            and [graph.classes[s] for s in graph.inbound.get(name, [])] == ["InputLayer"]]


def fold_input_batchnorm(model, offset=None, scale=None):
    """A float model whose BatchNormalization directly on its input is folded into the fixed input
    transform ``x' = (x - offset) * scale`` (per last-axis feature, as :class:`ModelMeta` applies it).

    Returns ``(model, offset, scale)``: without such a layer, the arguments unchanged; else a copy
    of the model in which that layer is the identity, and the composed transform (lists), so that
    ``new_model((x - new_offset) * new_scale) == model((x - offset) * scale)``. The input quantizer
    then sees normalized features, as the float model's first weight layer did. A layer with a zero
    scale (gamma = 0) cannot be folded and is refused.
    """
    names = input_batchnorms(model)
    if not names:
        return model, offset, scale
    if len(names) > 1 or len(layer_graph(model).config["input_layers"]) != 1:
        raise TriggerError(f"model '{model.name}' has BatchNormalization layers {', '.join(names)} on its inputs; "
                           "one BatchNormalization on a single input is supported")
    bn = layer_graph(model).layers[names[0]]
    if not _is_last_axis(bn):
        raise _reject(bn, "a BatchNormalization on the input must normalize the last axis")
    n = int(bn.input_shape[-1])
    k, t = _bn_affine(bn, n)
    if np.any(k == 0) or not np.all(np.isfinite(k)):
        raise _reject(bn, "an input BatchNormalization with a zero or non-finite scale cannot be folded")
    o0 = np.broadcast_to(np.asarray(0.0 if offset is None else offset, np.float64), (n,))
    s0 = np.broadcast_to(np.asarray(1.0 if scale is None else scale, np.float64), (n,))
    if np.any(s0 == 0):
        raise _reject(bn, "the model file's input_scale has zeros; the input BatchNormalization cannot be folded")
    # ((x - o0) * s0) * k + t = (x - O) * S with S = s0 * k, O = o0 - t / S
    new_scale = s0 * k
    new_offset = o0 - t / new_scale
    log.info("input BatchNormalization '%s' folded into the input transform", bn.name)
    return _without_layer(model, bn.name), [float(v) for v in new_offset], [float(v) for v in new_scale]


def _without_layer(model, name: str):
    """A copy of ``model`` (fresh layers, same weights) with layer ``name`` replaced by the identity."""
    import tensorflow as tf

    from trigger.models.graph import as_functional

    def clone(layer):
        if layer.name == name:
            return tf.keras.layers.Activation("linear", name=name)
        return layer.__class__.from_config(layer.get_config())

    fmodel = as_functional(model)
    copy = tf.keras.models.clone_model(fmodel, clone_function=clone)
    for layer in copy.layers:
        if layer.name != name and layer.weights:
            layer.set_weights(fmodel.get_layer(layer.name).get_weights())
    return copy


def _folded_weights(layer, bn) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of ``layer`` followed by ``bn`` (inference mode) as one affine layer."""
    kernel = layer.kernel.numpy().astype(np.float64)
    bias = layer.bias.numpy().astype(np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    gamma = bn.gamma.numpy() if bn.scale else np.ones(kernel.shape[-1])
    beta = bn.beta.numpy() if bn.center else np.zeros(kernel.shape[-1])
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    return (kernel * scale).astype(np.float32), ((bias - bn.moving_mean.numpy()) * scale + beta).astype(np.float32)


def _with_weights(layer, kernel: np.ndarray, bias: np.ndarray):
    """A stand-in for ``layer`` holding other float weights (for folding a second BatchNormalization)."""
    from types import SimpleNamespace

    return SimpleNamespace(kernel=SimpleNamespace(numpy=lambda: kernel), bias=SimpleNamespace(numpy=lambda: bias),
                           use_bias=True)


def _next_activation(name: str, consumers: dict[str, list[str]], has_activation: set[str],
                     has_weights: set[str]) -> str | None:
    """The first quantized activation downstream of ``name`` before another weight layer."""
    queue, seen = list(consumers.get(name, [])), set()
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        if current in has_activation:
            return current
        if current not in has_weights:
            queue.extend(consumers.get(current, []))
    return None


def _check_overrides_used(quant: QuantSection, consumers: dict[str, list[str]], has_activation: set[str],
                          has_weights: set[str]) -> None:
    """A ``quantization.layers`` entry that sets bits its layer does not have is an error, naming
    the layer that does (e.g. the ReLU layer after a Dense with a linear activation)."""
    for name, over in quant.layers.items():
        if (over.activation_bits is not None or over.activation_integer is not None) and name not in has_activation:
            after = _next_activation(name, consumers, has_activation, has_weights)
            hint = (f"set them on its activation layer '{after}'" if after
                    else "set them on a layer with a ReLU or on the input layer")
            raise TriggerError(f"quantization.layers.{name} sets activation bits, but layer '{name}' has no "
                               f"quantized activation; {hint}")
        if (over.weight_bits is not None or over.weight_integer is not None) and name not in has_weights:
            raise TriggerError(f"quantization.layers.{name} sets weight bits, but layer '{name}' has no trainable "
                               "weights; set them on a Dense or Conv layer")


def _qbits(b: int, i: int):
    from qkeras import quantized_bits

    return quantized_bits(b, i, alpha=1)


class _Rebuild:
    """One :func:`quantize_model` call: the new tensors per (layer, node, tensor) of the float
    model, and the layers whose activation / weight quantizer was built (a per-layer override of
    bits the layer does not have would otherwise be silently ignored)."""

    def __init__(self, graph: Graph, quant: QuantSection):
        self.graph, self.quant = graph, quant
        self.folds = _bn_folds(graph)
        self.folded_into = {v: k for k, v in self.folds.items()}
        self.forward_folds = _bn_forward_folds(graph, self.folds)
        self.folded_before = {v: k for k, v in self.forward_folds.items()}
        self.taken = set(graph.layers)
        self.tensors: dict[tuple[str, int, int], Any] = {}
        self.inputs: list = []
        self.has_activation: set[str] = set()
        self.has_weights: set[str] = set()

    def fresh(self, name: str) -> str:
        candidate, k = name, 1
        while candidate in self.taken:
            candidate, k = f"{name}_{k}", k + 1
        self.taken.add(candidate)
        return candidate

    def activation_after(self, layer, x, act: str, bits: Bits, is_output: bool, base_name: str):
        import tensorflow as tf
        from qkeras import QActivation, quantized_relu

        if act == "linear":
            return x
        if act == "relu":
            self.has_activation.add(layer.name)
            return QActivation(quantized_relu(bits.activation_bits, bits.activation_integer), name=base_name)(x)
        if act == "softmax" and is_output:
            return tf.keras.layers.Activation("softmax", name=base_name)(x)
        where = " before the model output" if act == "softmax" else ""
        raise _reject(layer, f"activation '{act}'{where} (supported activations: {', '.join(SUPPORTED_ACTIVATIONS)}; "
                             f"hls4ml implements {act} as a lookup table or a float scale, never bit-exact)")

    def input_layer(self, name: str, layer) -> None:
        import tensorflow as tf
        from qkeras import QActivation

        shape = layer.get_config()["batch_input_shape"][1:]
        inp = tf.keras.Input(shape=shape, name=name, dtype=layer.dtype)
        self.inputs.append(inp)
        over = self.quant.layers.get(name)
        b = over.activation_bits if over and over.activation_bits is not None else self.quant.input_bits
        i = over.activation_integer if over and over.activation_integer is not None else self.quant.input_integer
        self.tensors[(name, 0, 0)] = QActivation(_qbits(b, i), name=self.fresh(f"{name}_quant"))(inp)
        self.has_activation.add(name)

    def weight_quantizers(self, layer, kernel, bias, bits: Bits):
        if layer.trainable:
            self.has_weights.add(layer.name)
            return _qbits(bits.weight_bits, bits.weight_integer), _qbits(bits.weight_bits, bits.weight_integer)
        # fixed matrix: a type that holds its values exactly (it is never trained or pruned)
        values = kernel if bias is None else np.concatenate([kernel.ravel(), bias.ravel()])
        b, i, exact = exact_quantizer_bits(values)
        if not exact:
            log.warning("fixed layer '%s' has values no fixed-point type of <= 32 bits holds exactly; "
                        "using quantized_bits(%d,%d)", layer.name, b, i)
        return _qbits(b, i), _qbits(b, i)

    def weight_layer(self, layer, x, bits: Bits, is_output: bool):
        from qkeras import QConv1D, QConv2D, QDense

        name, cls = layer.name, type(layer).__name__
        act = _activation_name(layer.activation)
        conf = layer.get_config()
        if cls != "Dense" and conf.get("groups", 1) != 1:
            raise _reject(layer, "grouped convolution")
        if name in self.folded_into and name in self.folded_before:
            kernel, bias = _prefolded_weights(layer, self.graph.layers[self.folded_before[name]])
            layer = _with_weights(layer, kernel, bias)
            kernel, bias = _folded_weights(layer, self.graph.layers[self.folded_into[name]])
        elif name in self.folded_into:
            kernel, bias = _folded_weights(layer, self.graph.layers[self.folded_into[name]])
        elif name in self.folded_before:
            kernel, bias = _prefolded_weights(layer, self.graph.layers[self.folded_before[name]])
        else:
            kernel = layer.kernel.numpy()
            bias = layer.bias.numpy() if layer.use_bias else None
        use_bias = bias is not None
        kq, bq = self.weight_quantizers(layer, kernel, bias, bits)
        # initializers are irrelevant (the float weights are set below); zeros keeps Keras quiet
        common = dict(use_bias=use_bias, kernel_quantizer=kq, bias_quantizer=bq if use_bias else None,
                      kernel_initializer="zeros", name=name)
        if cls == "Dense":
            qlayer = QDense(layer.units, **common)
        else:
            conv_keys = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate")
            qcls = QConv1D if cls == "Conv1D" else QConv2D
            qlayer = qcls(**{k: conf[k] for k in conv_keys}, **common)
        y = qlayer(x)
        qlayer.set_weights([kernel] if bias is None else [kernel, bias])
        qlayer.trainable = layer.trainable
        return self.activation_after(layer, y, act, bits, is_output, self.fresh(f"{name}_{act}"))

    def other_layer(self, layer, x, bits: Bits, is_output: bool):
        import tensorflow as tf

        name, cls = layer.name, type(layer).__name__
        if cls == "BatchNormalization":
            if name in self.folds or name in self.forward_folds:
                return x  # folded into the weight layer before or after it
            if self.graph.classes[self.graph.inbound[name][0]] == "InputLayer":
                raise _reject(layer, "a BatchNormalization on the input is folded into the input transform "
                                     "first (trigger.compress.quantize.fold_input_batchnorm; `trigger compress` "
                                     "does this)")
            raise _reject(layer, f"a BatchNormalization is supported {BN_SUPPORTED}; a float one is never "
                                 "bit-exact in firmware")
        if cls == "Softmax":
            if layer.get_config().get("axis", -1) not in (-1, [-1]):
                raise _reject(layer, "Softmax over an axis other than the last")
            return self.activation_after(layer, x, "softmax", bits, is_output, name)
        if cls == "Activation":
            return self.activation_after(layer, x, _activation_name(layer.activation), bits, is_output, name)
        if cls == "ReLU":
            conf = layer.get_config()
            if conf.get("max_value") is not None or conf.get("negative_slope", 0) or conf.get("threshold", 0):
                raise _reject(layer, "ReLU with max_value, negative_slope or threshold")
            return self.activation_after(layer, x, "relu", bits, is_output, name)
        if cls == "Dropout":
            return x  # the identity at inference
        return type(layer).from_config(layer.get_config())(x)

    def layer(self, lc: dict) -> None:
        name, cls = lc["name"], lc["class_name"]
        layer = self.graph.layers[name]
        if cls == "InputLayer":
            return self.input_layer(name, layer)
        if cls in ACTIVATION_LAYERS:
            raise _reject(layer, f"activation layer {cls} (supported activations: {', '.join(SUPPORTED_ACTIVATIONS)}; "
                                 "no QKeras activation has an exact hls4ml implementation of it)")
        if cls not in SUPPORTED_LAYERS or type(layer).__name__ != cls:
            raise _reject(layer, "no quantized equivalent")
        if len(lc["inbound_nodes"]) != 1:
            raise _reject(layer, "the layer is shared (called more than once); give each call its own layer")
        node = lc["inbound_nodes"][0]
        if any(entry[3] for entry in node if len(entry) > 3):
            raise _reject(layer, "the layer is called with extra keyword arguments")
        if cls in MERGE_LAYERS and len(node) > 2:
            raise _reject(layer, f"a merge of {len(node)} tensors (hls4ml merges two at a time; chain "
                                 f"two-input {cls} layers)")
        args = [self.tensors[(entry[0], entry[1], entry[2])] for entry in node]
        x = args[0] if len(args) == 1 else args
        bits = layer_bits(self.quant, name)
        is_output = name in self.graph.outputs
        build = self.weight_layer if cls in WEIGHT_LAYERS else self.other_layer
        self.tensors[(name, 0, 0)] = build(layer, x, bits, is_output)


def quantize_model(model, quant: QuantSection):
    """Rebuild a float Keras model as a QKeras model with the same topology and the float weights.

    See the module docstring for the layer-by-layer rules. Per-layer bits come from
    ``quant.layers[name]`` (a name that is not a layer of the model is an error). Raises
    :class:`TriggerError` naming the layer and the supported list for any other layer.
    """
    import tensorflow as tf

    _check_float(model)
    graph = layer_graph(model)
    if len(graph.outputs) != 1:
        raise TriggerError(f"model '{model.name}' has {len(graph.outputs)} outputs ({', '.join(graph.outputs)}); "
                           "compression and firmware support single-output models: build one model per output")
    names = set(graph.classes)
    unknown = sorted(set(quant.layers) - names)
    if unknown:
        raise TriggerError(f"quantization.layers names {', '.join(unknown)}, which is not a layer of model "
                           f"'{model.name}'; layers are: {', '.join(sorted(names))}")
    rebuild = _Rebuild(graph, quant)
    for lc in graph.config["layers"]:
        rebuild.layer(lc)
    _check_overrides_used(quant, graph.consumers, rebuild.has_activation, rebuild.has_weights)
    new_inputs = rebuild.inputs
    new_outputs = [rebuild.tensors[(e[0], e[1], e[2])] for e in graph.config["output_layers"]]
    return tf.keras.Model(new_inputs if len(new_inputs) > 1 else new_inputs[0],
                          new_outputs if len(new_outputs) > 1 else new_outputs[0], name=f"{model.name}_q")


# --- inspection helpers shared by BOPs and reports -----------------------------------------------

def quantizer_bits(quantizer) -> int | None:
    """Total bits of a QKeras quantizer object (None for a float / missing quantizer)."""
    if quantizer is None:
        return None
    bits = getattr(quantizer, "bits", None)
    return int(bits) if bits is not None else None


def describe_bits(model) -> dict[str, dict[str, str]]:
    """Per layer: the quantizers (as QKeras writes them) of weights, biases and activations."""
    out: dict[str, dict[str, str]] = {}
    for layer in model.layers:
        inner = unwrap(layer)
        entry: dict[str, str] = {}
        if getattr(inner, "kernel_quantizer_internal", None) is not None:
            entry["kernel"] = str(inner.kernel_quantizer_internal)
        if getattr(inner, "use_bias", False) and getattr(inner, "bias_quantizer_internal", None) is not None:
            entry["bias"] = str(inner.bias_quantizer_internal)
        if type(inner).__name__ == "QActivation":
            entry["activation"] = str(inner.quantizer)
        if entry:
            out[layer.name] = entry
    return out


def fold_input_batchnorm_meta(model, meta):
    """:func:`fold_input_batchnorm` on a model file's metadata (:class:`trigger.contracts.ModelMeta`
    or None): ``(model, meta)`` with the input BatchNormalization, if any, moved into the metadata's
    input transform (what ``trigger compress`` writes into the student's file)."""
    from trigger.contracts import ModelMeta

    offset = meta.input_offset if meta is not None else None
    scale = meta.input_scale if meta is not None else None
    folded, new_offset, new_scale = fold_input_batchnorm(model, offset, scale)
    if folded is model:
        return model, meta
    base = meta.to_dict() if meta is not None else {}
    return folded, ModelMeta.build(**base | {"input_offset": new_offset, "input_scale": new_scale})
