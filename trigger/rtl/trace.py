"""Trace a QKeras model through da4ml: the forward pass on symbolic fixed-point variables.

Each layer of the Keras graph (:func:`trigger.models.graph.layer_graph`) becomes da4ml operations
on a :class:`da4ml.trace.FixedVariableArray` of one event (no batch axis): a Dense or a convolution
is a constant matrix-vector multiply on the layer's quantized weights (da4ml's adder-graph solver,
no multipliers) plus its bias; a QKeras quantizer is exact round-half-even and saturation
(:mod:`trigger.rtl.quantizers`); pooling, merges and reshapes are what they say. A final softmax is
cut off (the firmware outputs the logits, as ``trigger synth`` does by default).

The model's first layer after the input must be its input quantizer (a ``QActivation`` with
``quantized_bits``): the RTL input is that quantizer's output format, which the upstream hardware
delivers (docs/rtl.md). A layer this module cannot express exactly raises one
:class:`TriggerError` naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from trigger.errors import TriggerError
from trigger.firmware.reference import quantized_weights
from trigger.models.graph import Graph, is_softmax, layer_graph
from trigger.rtl.quantizers import FixedFormat, apply_qkeras, qkeras_format, round_half_up

#: Layers that pass their input through unchanged at inference.
IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "InputLayer")


@dataclass
class Traced:
    """The traced model: input and output variables, the input format and the names involved."""

    inputs: Any                 # FixedVariableArray of one event, the model's input shape
    outputs: Any                # FixedVariableArray, flattened outputs of one event
    input_format: FixedFormat   # what the upstream hardware delivers (the input quantizer's format)
    input_quantizer: Any        # the QKeras input quantizer object (applied exactly in numpy)
    output_layer: str           # the Keras layer whose output the firmware computes
    cut_softmax: bool           # True if a final softmax was cut off


class _Tracer:
    """Walks one model's graph; ``rounding`` is :func:`apply_qkeras` (exact) or half-up."""

    def __init__(self, graph: Graph, hwconf: Any, rounding: Callable[[Any, FixedFormat], Any]):
        self.graph = graph
        self.hwconf = hwconf
        self.rounding = rounding

    def quantize(self, x: Any, quantizer: Any, where: str) -> Any:
        """Apply a QKeras activation quantizer elementwise."""
        from da4ml.trace import FixedVariableArray

        fmt = qkeras_format(quantizer, where)
        flat = np.array([self.rounding(v, fmt) for v in x._vars.ravel()], dtype=object)
        return FixedVariableArray(flat.reshape(x.shape), x.solver_options)

    def activation(self, x: Any, activation: Any, where: str) -> Any:
        """A layer's activation: a QKeras quantizer, linear or relu; others are refused."""
        if activation is None:
            return x
        if type(activation).__name__.startswith("quantized_") or hasattr(activation, "bits"):
            return self.quantize(x, activation, where)
        name = getattr(activation, "__name__", type(activation).__name__)
        if name == "linear":
            return x
        if name == "relu":
            return np.maximum(x, 0.0)
        raise TriggerError(f"{where}: activation '{name}' cannot be expressed exactly in fixed point by "
                           "`trigger rtl`; use a QKeras quantizer, relu or linear")

    def layer(self, name: str, inputs: list[Any]) -> Any:
        """The traced output of layer ``name`` from its traced inputs."""
        layer = self.graph.layers[name]
        cls = type(layer).__name__
        where = f"layer '{name}' ({cls})"
        for handlers in (_SHAPE_LAYERS, _ARITHMETIC_LAYERS):
            handler = handlers.get(cls)
            if handler is not None:
                return handler(self, layer, inputs, where)
        raise TriggerError(f"{where} is not supported by `trigger rtl` (supported: Dense, Conv1D/2D, "
                           "QKeras activations, ReLU, pooling, Add/Concatenate/Multiply, reshapes)")


# --- layer handlers ------------------------------------------------------------------------------

def _weights(layer: Any) -> list[np.ndarray]:
    cls = type(layer).__name__
    return quantized_weights(layer) if cls.startswith("Q") else \
        [w.astype(np.float64) for w in layer.get_weights()]


def _dense(t: _Tracer, layer: Any, inputs: list[Any], where: str) -> Any:
    w = _weights(layer)
    y = inputs[0] @ w[0]
    if layer.use_bias:
        y = y + w[1]
    return t.activation(y, layer.activation, where)


def _conv(t: _Tracer, layer: Any, inputs: list[Any], where: str) -> Any:
    """A convolution as one constant matrix-vector multiply per output position."""
    from da4ml.trace import FixedVariableArray

    cfg = layer.get_config()
    if any(d != 1 for d in np.atleast_1d(cfg.get("dilation_rate", 1))) or cfg.get("groups", 1) != 1:
        raise TriggerError(f"{where}: dilation or groups are not supported by `trigger rtl`")
    if layer.padding not in ("valid", "same"):
        raise TriggerError(f"{where}: padding '{layer.padding}' is not supported by `trigger rtl`")
    w = _weights(layer)
    x = inputs[0]._vars
    spatial, strides = w[0].shape[:-2], tuple(layer.strides)
    if layer.padding == "same":
        x = np.pad(x, _same_pads(x.shape, spatial, strides) + [(0, 0)], constant_values=0.0)
    out_shape = [(x.shape[d] - spatial[d]) // strides[d] + 1 for d in range(len(spatial))]
    matrix = w[0].reshape(-1, w[0].shape[-1])
    outs = np.empty(out_shape + [w[0].shape[-1]], dtype=object)
    for pos in np.ndindex(*out_shape):
        window = tuple(slice(p * s, p * s + k) for p, s, k in zip(pos, strides, spatial))
        patch = FixedVariableArray(_as_vars(x[window].ravel(), t.hwconf), inputs[0].solver_options)
        y = patch @ matrix
        outs[pos] = (y + w[1] if layer.use_bias else y)._vars
    return t.activation(FixedVariableArray(outs, inputs[0].solver_options), layer.activation, where)


def _same_pads(shape: tuple[int, ...], spatial: tuple[int, ...], strides: tuple[int, ...]) -> list:
    pads = []
    for d, k in enumerate(spatial):
        out = -(-shape[d] // strides[d])
        total = max((out - 1) * strides[d] + k - shape[d], 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _as_vars(values: np.ndarray, hwconf: Any) -> np.ndarray:
    """Object array of FixedVariables (zero padding becomes constants)."""
    from da4ml.trace import FixedVariable

    return np.array([v if isinstance(v, FixedVariable) else FixedVariable.from_const(float(v), hwconf)
                     for v in values], dtype=object)


def _pool(t: _Tracer, layer: Any, inputs: list[Any], where: str) -> Any:
    from da4ml.trace import FixedVariableArray

    if layer.padding != "valid":
        raise TriggerError(f"{where}: pooling with padding '{layer.padding}' is not supported by `trigger rtl`")
    pool, strides = tuple(layer.pool_size), tuple(layer.strides)
    x = inputs[0]._vars
    out_shape = [(x.shape[d] - pool[d]) // strides[d] + 1 for d in range(len(pool))]
    outs = np.empty(out_shape + [x.shape[-1]], dtype=object)
    for pos in np.ndindex(*out_shape):
        window = tuple(slice(p * s, p * s + k) for p, s, k in zip(pos, strides, pool))
        part = FixedVariableArray(x[window].reshape(-1, x.shape[-1]), inputs[0].solver_options)
        outs[pos] = _reduce(part, "Max" in type(layer).__name__, where)._vars
    return FixedVariableArray(outs, inputs[0].solver_options)


def _reduce(part: Any, is_max: bool, where: str) -> Any:
    """Max or mean over the first axis; a mean over a count that is not a power of two is refused
    (its division is not exact in fixed point)."""
    n = part.shape[0]
    out = part[0]
    for j in range(1, n):
        out = np.maximum(out, part[j]) if is_max else out + part[j]
    if is_max:
        return out
    if n & (n - 1):
        raise TriggerError(f"{where}: an average over {n} values (not a power of two) is not exact in "
                           "fixed point; use a power-of-two pool or sum pooling")
    return out * (1.0 / n)


def _global_pool(t: _Tracer, layer: Any, inputs: list[Any], where: str) -> Any:
    x = inputs[0]
    if layer.get_config().get("keepdims", False):
        raise TriggerError(f"{where}: keepdims=True is not supported by `trigger rtl`")
    flat = x.reshape(-1, x.shape[-1])
    return _reduce(flat, "Max" in type(layer).__name__, where)


def _merge(t: _Tracer, layer: Any, inputs: list[Any], where: str) -> Any:
    from da4ml.trace import FixedVariableArray

    cls = type(layer).__name__
    if cls == "Concatenate":
        axis = layer.axis if layer.axis < 0 else layer.axis - 1  # no batch axis here
        return FixedVariableArray(np.concatenate([x._vars for x in inputs], axis=axis), inputs[0].solver_options)
    if cls == "Subtract":
        return inputs[0] - inputs[1]
    if cls == "Average":
        return _reduce(FixedVariableArray(np.stack([x._vars for x in inputs]), inputs[0].solver_options),
                       False, where)
    out = inputs[0]
    for other in inputs[1:]:
        out = out * other if cls == "Multiply" else out + other
    return out


def _relu(t: _Tracer, layer: Any, inputs: list[Any], where: str) -> Any:
    cfg = layer.get_config()
    if cfg.get("max_value") or cfg.get("negative_slope") or cfg.get("threshold"):
        raise TriggerError(f"{where}: ReLU with max_value, negative_slope or threshold is not supported "
                           "by `trigger rtl`; use a plain ReLU or quantized_relu")
    return np.maximum(inputs[0], 0.0)


_SHAPE_LAYERS: dict[str, Callable] = {
    **{cls: (lambda t, layer, ins, where: ins[0]) for cls in IDENTITY},
    "Flatten": lambda t, layer, ins, where: ins[0].reshape(-1),
    "Reshape": lambda t, layer, ins, where: ins[0].reshape(tuple(layer.target_shape)),
    "Permute": lambda t, layer, ins, where: ins[0].transpose(tuple(d - 1 for d in layer.dims)),
}
_ARITHMETIC_LAYERS: dict[str, Callable] = {
    "QActivation": lambda t, layer, ins, where: t.activation(ins[0], layer.quantizer, where),
    "Activation": lambda t, layer, ins, where: t.activation(ins[0], layer.activation, where),
    "ReLU": _relu,
    **{cls: _dense for cls in ("QDense", "Dense")},
    **{cls: _conv for cls in ("QConv1D", "QConv2D", "Conv1D", "Conv2D")},
    **{cls: _pool for cls in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")},
    **{cls: _global_pool for cls in ("GlobalAveragePooling1D", "GlobalAveragePooling2D",
                                     "GlobalMaxPooling1D", "GlobalMaxPooling2D")},
    **{cls: _merge for cls in ("Add", "Subtract", "Multiply", "Average", "Concatenate")},
}


# --- the walk ------------------------------------------------------------------------------------

def input_quantizer(graph: Graph) -> tuple[str, Any, FixedFormat]:
    """(layer name, quantizer, format) of the model's input quantizer, or a TriggerError."""
    inputs = [lc["name"] for lc in graph.config["layers"] if lc["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise TriggerError(f"model has {len(inputs)} inputs; `trigger rtl` converts single-input models")
    readers = graph.consumers.get(inputs[0], [])
    first = graph.layers[readers[0]] if len(readers) == 1 else None
    quantizer = getattr(first, "quantizer", None)
    if first is None or type(first).__name__ != "QActivation" or type(quantizer).__name__ != "quantized_bits":
        raise TriggerError("`trigger rtl` needs the model's input read by one QActivation(quantized_bits(...)) "
                           "(its input quantizer, which fixes the RTL input format); add one and retrain")
    return first.name, quantizer, qkeras_format(quantizer, f"input quantizer '{first.name}'")


def output_layer(graph: Graph) -> tuple[str, bool]:
    """(name of the layer the firmware outputs, True if a final softmax was cut off)."""
    if len(graph.outputs) != 1:
        raise TriggerError(f"model has {len(graph.outputs)} outputs; `trigger rtl` converts single-output models")
    name = graph.outputs[0]
    if is_softmax(graph.layers[name]):
        return graph.inbound[name][0], True
    if "softmax" in str(getattr(getattr(graph.layers[name], "activation", None), "__name__", "")):
        raise TriggerError(f"layer '{name}' has a fused softmax, which `trigger rtl` cannot express exactly; "
                           "put the softmax in its own Activation layer (it is cut off, the RTL gives logits)")
    return name, False


def trace_model(model: Any, *, latency_cutoff: float = -1, exact_rounding: bool = True) -> Traced:
    """Trace ``model`` (QKeras) into da4ml variables; see the module docstring.

    ``latency_cutoff`` is the adder levels per pipeline stage (da4ml's ``HWConfig``; -1 for none),
    ``exact_rounding=False`` uses da4ml's round-half-up instead (for the cost comparison only).
    """
    from da4ml.trace import FixedVariableArray, HWConfig

    graph = layer_graph(model)
    q_name, quantizer, fmt = input_quantizer(graph)
    out_name, cut = output_layer(graph)
    hwconf = HWConfig(1, -1, latency_cutoff)
    shape = tuple(model.input_shape[1:])
    inputs = FixedVariableArray.from_kif(np.full(shape, fmt.k), np.full(shape, fmt.i), np.full(shape, fmt.f), hwconf)
    tracer = _Tracer(graph, hwconf, apply_qkeras if exact_rounding else round_half_up)
    values: dict[str, Any] = {q_name: inputs}  # the input arrives quantized
    for lc in graph.config["layers"]:
        name = lc["name"]
        if name in values or lc["class_name"] == "InputLayer":
            continue
        values[name] = tracer.layer(name, [values[p] for p in graph.inbound[name]])
        if name == out_name:
            break
    outputs = values[out_name]
    return Traced(inputs=inputs, outputs=outputs.reshape(-1), input_format=fmt, input_quantizer=quantizer,
                  output_layer=out_name, cut_softmax=cut)


def stage_levels(mean_adder_bits: float, clock_eff_ns: float) -> int:
    """Adder levels per pipeline stage at this clock, from the estimator's adder-delay model."""
    from trigger.firmware.estimate.timing import adds_per_cycle

    return adds_per_cycle(int(math.ceil(mean_adder_bits)), clock_eff_ns)
