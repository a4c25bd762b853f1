"""Build the :class:`~trigger.ir.network.Network` of a Keras / QKeras model.

One registry (:data:`HANDLERS`) maps a Keras layer class to the function that reads it into an IR
operation; a class without a handler, or a configuration a handler cannot express (dilation,
channels first, a ReLU with a bound), becomes an :class:`~trigger.ir.network.Opaque` node whose
reason each consumer quotes in its one-line refusal. Adding a layer type is one handler here plus
one rule in each back end that supports it (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from trigger.errors import TriggerError
from trigger.ir import network as ir
from trigger.ir.formats import DEFAULT_INPUT, FixedFormat
from trigger.ir.quantizers import FixedCast, Quantizer, is_quantizer, read_quantizer
from trigger.models.graph import Graph, has_fused_softmax, is_softmax, layer_graph, unwrap

#: layers that pass their input through at inference
IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")
CONV = ("QConv1D", "QConv2D", "Conv1D", "Conv2D")
DEPTHWISE = ("QDepthwiseConv2D", "DepthwiseConv1D", "DepthwiseConv2D", "QSeparableConv1D", "QSeparableConv2D",
             "SeparableConv1D", "SeparableConv2D")
POOL = ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
GLOBAL_POOL = ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D")
RECURRENT = ("QSimpleRNN", "QLSTM", "QGRU", "SimpleRNN", "LSTM", "GRU")
FLOAT_SLOPE = ("LeakyReLU", "ELU", "PReLU", "ThresholdedReLU")
#: the layer class hls4ml 1.3.0's Keras converter skips (inference: identity)
HLS4ML_SKIPPED = "Dropout"
MERGE = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average",
         "Concatenate": "concatenate"}


def activation_of(obj: Any) -> ir.Activation:
    """A layer's activation attribute (a QKeras quantizer, a Keras function or None) as IR data."""
    if obj is None:
        return None
    if is_quantizer(obj):
        return read_quantizer(obj)
    return ir.FloatActivation(str(getattr(obj, "__name__", type(obj).__name__)))


def _weight(layer: Any, value: np.ndarray, quantizer: Any) -> ir.Weights:
    """A weight through its QKeras quantizer (the values the layer really uses), float64."""
    if quantizer is None:
        return ir.Weights(np.asarray(value, dtype=np.float64))
    import tensorflow as tf

    values = np.asarray(quantizer(tf.constant(value)), dtype=np.float64)
    return ir.Weights(values, read_quantizer(quantizer))


def _kernel_bias(layer: Any) -> tuple[ir.Weights, ir.Weights | None]:
    values = layer.get_weights()
    kq = getattr(layer, "kernel_quantizer_internal", None)
    bq = getattr(layer, "bias_quantizer_internal", None)
    kernel = _weight(layer, values[0], kq)
    bias = _weight(layer, values[1], bq) if getattr(layer, "use_bias", False) else None
    return kernel, bias


def _conv_refusal(layer: Any, cfg: dict) -> str | None:
    if any(d != 1 for d in np.atleast_1d(cfg.get("dilation_rate", 1))) or cfg.get("groups", 1) != 1:
        return "dilation or groups"
    if cfg.get("data_format", "channels_last") != "channels_last":
        return "channels_first"
    if layer.padding not in ("valid", "same"):
        return f"padding '{layer.padding}'"
    return None


def _dense(layer: Any, cfg: dict) -> ir.Op:
    kernel, bias = _kernel_bias(layer)
    return ir.Dense(kernel, bias, activation_of(layer.activation))


def _conv(layer: Any, cfg: dict) -> ir.Op:
    refusal = _conv_refusal(layer, cfg)
    if refusal is not None:
        return ir.Opaque(f"a convolution with {refusal}")
    kernel, bias = _kernel_bias(layer)
    return ir.Conv(kernel, bias, tuple(layer.strides), layer.padding, activation_of(layer.activation))


def _depthwise(layer: Any, cfg: dict) -> ir.Op:
    refusal = _conv_refusal(layer, cfg)
    if refusal is not None:
        return ir.Opaque(f"a depthwise convolution with {refusal}")
    cls = type(layer).__name__
    names = ["depthwise"] + (["pointwise"] if "Separable" in cls else []) + (["bias"] if layer.use_bias else [])
    weights = {name: _weight(layer, value, getattr(layer, f"{name}_quantizer_internal", None))
               for name, value in zip(names, layer.get_weights())}
    return ir.Depthwise(weights["depthwise"], weights.get("pointwise"), weights.get("bias"), tuple(layer.strides),
                        layer.padding, activation_of(layer.activation), int(getattr(layer, "depth_multiplier", 1)))


def _relu(layer: Any, cfg: dict) -> ir.Op:
    if cfg.get("max_value") or cfg.get("negative_slope") or cfg.get("threshold"):
        return ir.Lookup(SLOPE_REASON)
    return ir.Activate(ir.FloatActivation("relu"))


SLOPE_REASON = "a float slope, bound or lookup table"


def _recurrent(layer: Any, cfg: dict) -> ir.Op:
    names = []
    for attr in ("activation", "recurrent_activation"):
        if hasattr(layer, attr):
            function = activation_of(getattr(layer, attr))
            names.append(function.text if hasattr(function, "text") else str(getattr(function, "name", function)))
    return ir.Recurrent(tuple(names))


def _batchnorm(layer: Any, cfg: dict) -> ir.Op:
    def f64(v: Any) -> np.ndarray:
        return v.numpy().astype(np.float64)

    return ir.BatchNorm(f64(layer.moving_mean), f64(layer.moving_variance),
                        f64(layer.gamma) if layer.scale else 1.0, f64(layer.beta) if layer.center else 0.0,
                        float(layer.epsilon))


def _fixed_point_quantizer(layer: Any, cfg: dict) -> ir.Op:
    """HGQ's FixedPointQuantizer (an HGQ proxy model's only quantizer): a per-element cast. Its
    variables are read, not its configuration (which holds no bit widths)."""
    rounding, overflow = layer.RND, layer.SAT
    if rounding not in ("TRN", "RND") or overflow not in ("WRAP", "SAT", "SAT_SYM"):
        return ir.Opaque(f"an HGQ cast with rounding {rounding} and overflow {overflow} (the IR reads TRN or RND, "
                         "and WRAP, SAT or SAT_SYM)")
    k, bits, integers = (np.asarray(v.numpy()) for v in (layer.keep_negative, layer.bits, layer.integers))
    return ir.Activate(FixedCast.from_hgq(k, bits, integers, rounding, overflow, _shape(layer)))


HANDLERS: dict[str, Callable[[Any, dict], ir.Op]] = {
    "InputLayer": lambda layer, cfg: ir.Input(),
    **{cls: (lambda layer, cfg: ir.Identity()) for cls in IDENTITY},
    "QActivation": lambda layer, cfg: ir.Activate(activation_of(getattr(layer, "quantizer", layer.activation))),
    "FixedPointQuantizer": _fixed_point_quantizer,
    "Activation": lambda layer, cfg: ir.Activate(activation_of(layer.activation)),
    "Softmax": lambda layer, cfg: ir.Activate(ir.FloatActivation("softmax")) if cfg.get("axis", -1) == -1
    else ir.Opaque("a softmax over an axis other than the last"),
    "ReLU": _relu,
    "QDense": _dense, "Dense": _dense,
    **{cls: _conv for cls in CONV},
    **{cls: _depthwise for cls in DEPTHWISE},
    **{cls: (lambda layer, cfg: ir.Pool("max" if type(layer).__name__.startswith("Max") else "avg",
                                        tuple(layer.pool_size), tuple(layer.strides), layer.padding))
       for cls in POOL},
    **{cls: (lambda layer, cfg: ir.GlobalPool("max" if "Max" in type(layer).__name__ else "avg",
                                              bool(cfg.get("keepdims", False))))
       for cls in GLOBAL_POOL},
    "Flatten": lambda layer, cfg: ir.Reshape((-1,)),
    "Reshape": lambda layer, cfg: ir.Reshape(tuple(layer.target_shape)),
    "Permute": lambda layer, cfg: ir.Permute(tuple(layer.dims)),
    **{cls: (lambda layer, cfg: ir.Merge(MERGE[type(layer).__name__], int(getattr(layer, "axis", -1))))
       for cls in MERGE},
    "BatchNormalization": _batchnorm,
    "QBatchNormalization": lambda layer, cfg: ir.QuantizedBatchNorm(),
    **{cls: _recurrent for cls in RECURRENT},
    **{cls: (lambda layer, cfg: ir.Lookup(SLOPE_REASON)) for cls in FLOAT_SLOPE},
}


def _shape(layer: Any) -> tuple[int, ...]:
    try:
        shape = layer.output_shape
    except AttributeError:  # a layer shared by several models with different shapes
        shape = layer.get_output_shape_at(0)
    if isinstance(shape, list):
        shape = shape[0]
    return tuple(int(d) if d is not None else -1 for d in shape[1:])


def _node(graph: Graph, lc: dict, names: dict[str, str]) -> ir.Node:
    name = lc["name"]
    layer = unwrap(graph.layers[name])
    cls = type(layer).__name__
    handler = HANDLERS.get(cls)
    if len(lc["inbound_nodes"]) > 1:
        op: ir.Op = ir.Opaque("a layer called more than once in the model")
    elif handler is None and cls.startswith("GarNet"):
        op = ir.Lookup("lookup tables and float weights")
    elif handler is None:
        op = ir.Opaque(f"no IR handler for {cls}")
    else:
        op = handler(layer, layer.get_config())
    return ir.Node(names[name], cls, tuple(names[n] for n in graph.inbound[name]), _shape(layer), op)


def _topological(graph: Graph) -> list[dict]:
    """The functional config's layers, each after the layers it reads (config order among equals)."""
    pending = list(graph.config["layers"])
    done: set[str] = set()
    ordered: list[dict] = []
    while pending:
        ready = [lc for lc in pending if all(p in done for p in graph.inbound[lc["name"]])]
        if not ready:
            raise TriggerError(f"model '{graph.model.name}' has a cycle in its layer graph")
        for lc in ready:
            ordered.append(lc)
            done.add(lc["name"])
        pending = [lc for lc in pending if lc["name"] not in done]
    return ordered


def _reader_format(node: ir.Node) -> FixedFormat | None:
    """The input format a quantizer layer reading a model input fixes: a QActivation's output format,
    an HGQ cast's :attr:`~trigger.ir.quantizers.FixedCast.input_format`; None for other layers."""
    function = node.op.function if isinstance(node.op, ir.Activate) else None
    if node.cls == "QActivation" and isinstance(function, Quantizer):
        return function.output_format
    return function.input_format if isinstance(function, FixedCast) else None


def _input_decision(nodes: dict[str, ir.Node], name: str,
                    consumers: dict[str, list[str]]) -> tuple[FixedFormat, str | None, bool]:
    """The format of input ``name``, decided once for every back end: the common format the
    quantizer layers that read it fix (:func:`_reader_format`), else hls4ml's default precision
    (values are truncated to it). Then the quantizer node when exactly one reads the input, and
    whether the format is the default."""
    readers = [nodes[n] for n in consumers.get(name, [])]
    formats = {_reader_format(r) for r in readers}
    if readers and len(formats) == 1 and None not in formats:
        return formats.pop(), readers[0].name if len(readers) == 1 else None, False
    return DEFAULT_INPUT, None, True


def _output(graph: Graph, names: dict[str, str]) -> ir.Output:
    """What the (first) output is: logits before a final softmax layer, probabilities of a fused one,
    values otherwise (:func:`from_keras` tells a score computed on chip from other values)."""
    name = graph.outputs[0]
    layer = unwrap(graph.layers[name])
    if is_softmax(layer) and graph.inbound[name]:
        return ir.Output(names[graph.inbound[name][0]], "logits", cut=names[name])
    if has_fused_softmax(layer):
        return ir.Output(names[name], "probabilities")
    return ir.Output(names[name], "values")


def from_keras(model: Any) -> ir.Network:
    """The IR of a Sequential or functional Keras / QKeras model (pruning wrappers read through)."""
    graph = layer_graph(model)
    names = {name: unwrap(layer).name for name, layer in graph.layers.items()}  # a pruning wrapper: its layer
    nodes = {names[lc["name"]]: _node(graph, lc, names) for lc in _topological(graph)}
    consumers = {names[k]: [names[n] for n in v] for k, v in graph.consumers.items()}
    inputs = tuple(names[entry[0]] for entry in graph.config["input_layers"])
    decisions = [_input_decision(nodes, name, consumers) for name in inputs]
    network = ir.Network(name=graph.model.name, nodes=tuple(nodes.values()), inputs=inputs,
                         outputs=tuple(names[n] for n in graph.outputs), input_formats=tuple(d[0] for d in decisions),
                         input_quantizers=tuple(d[1] for d in decisions),
                         input_defaulted=tuple(d[2] for d in decisions), output=_output(graph, names))
    out = network.output
    if out.kind == "values" and int(np.prod(network.by_name[out.node].shape)) == 1 \
            and network.computes_reconstruction_error():
        network = replace(network, output=ir.Output(out.node, "score"))
    return network
