"""Trace a quantized network through da4ml: the forward pass on symbolic fixed-point variables.

Each node of the IR (:mod:`trigger.ir`) becomes da4ml operations on a
:class:`da4ml.trace.FixedVariableArray` of one event (no batch axis): a Dense or a convolution is a
constant matrix-vector multiply on the node's quantized weights (da4ml's adder-graph solver, no
multipliers) plus its bias; a QKeras quantizer is exact round-half-even and saturation
(:mod:`trigger.rtl.quantizers`); pooling, merges and reshapes are what they say. A final softmax is
cut off (the firmware outputs the logits, as ``trigger synth`` does by default).

The RTL input is the IR's input format (:attr:`trigger.ir.network.Network.input_format`), decided
once for every back end: the output of the model's input quantizer when one alone reads the input
(the upstream hardware delivers it, docs/rtl.md), else hls4ml's default type the values are cast
to, the same type ``trigger synth`` reports. A node this module cannot express exactly raises one
:class:`TriggerError` naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from trigger.errors import TriggerError
from trigger.ir import network as ir
from trigger.ir.evaluate import evaluate, input_values, same_pads
from trigger.ir.formats import FixedFormat
from trigger.ir.keras import from_keras
from trigger.ir.quantizers import FixedCast, Quantizer
from trigger.rtl.quantizers import apply_qkeras, rtl_format, round_half_up


@dataclass
class Traced:
    """The traced model: input and output variables, the network and the names involved."""

    inputs: Any                 # FixedVariableArray of one event, the model's input shape
    outputs: Any                # FixedVariableArray, flattened outputs of one event
    input_format: FixedFormat   # what the upstream hardware delivers
    network: ir.Network         # the IR traced
    output_layer: str           # the layer whose output the firmware computes
    cut_softmax: bool           # True if a final softmax was cut off


class _Tracer:
    """Walks one network; ``rounding`` is :func:`apply_qkeras` (exact) or half-up."""

    def __init__(self, hwconf: Any, rounding: Callable[[Any, FixedFormat], Any]):
        self.hwconf = hwconf
        self.rounding = rounding

    def quantize(self, x: Any, quantizer: Quantizer, where: str) -> Any:
        """Apply a QKeras activation quantizer elementwise."""
        from da4ml.trace import FixedVariableArray

        fmt = rtl_format(quantizer, where)
        flat = np.array([self.rounding(v, fmt) for v in x._vars.ravel()], dtype=object)
        return FixedVariableArray(flat.reshape(x.shape), x.solver_options)

    def cast(self, x: Any, cast: FixedCast) -> Any:
        """A per-element cast (HGQ): each element quantized to its own format with the cast's rounding
        and overflow, which da4ml's quantize implements as hls4ml does (TRN/RND, WRAP/SAT/SAT_SYM);
        an element with no bits is the constant 0."""
        from da4ml.trace import FixedVariable, FixedVariableArray

        flat = [FixedVariable.from_const(0.0, self.hwconf) if k + i + f == 0 else
                v.quantize(int(k), int(i), int(f), cast.overflow, cast.rounding)
                for v, k, i, f in zip(x._vars.ravel(), cast.k.ravel(), cast.i.ravel(), cast.f.ravel())]
        return FixedVariableArray(np.array(flat, dtype=object).reshape(x.shape), x.solver_options)

    def activation(self, x: Any, function: ir.Activation, where: str) -> Any:
        """A layer's activation: a QKeras quantizer, a per-element cast, linear or relu; others are refused."""
        if function is None:
            return x
        if isinstance(function, Quantizer):
            return self.quantize(x, function, where)
        if isinstance(function, FixedCast):
            return self.cast(x, function)
        if function.name == "linear":
            return x
        if function.name == "relu":
            return np.maximum(x, 0.0)
        raise TriggerError(f"{where}: activation '{function.name}' cannot be expressed exactly in fixed point "
                           "by `trigger rtl`; use a QKeras quantizer, relu or linear")

    def node(self, node: ir.Node, inputs: list[Any]) -> Any:
        """The traced output of ``node`` from its traced inputs."""
        rule = RULES.get(type(node.op))
        if rule is None:
            detail = f": {node.op.reason}" if hasattr(node.op, "reason") else ""
            raise TriggerError(f"{node.where} is not supported by `trigger rtl`{detail} (supported: Dense, "
                               "Conv1D/2D, QKeras activations, ReLU, pooling, Add/Concatenate/Multiply, reshapes)")
        return rule(self, node, node.op, inputs)


# --- one rule per IR operation --------------------------------------------------------------------

def _dense(t: _Tracer, node: ir.Node, op: ir.Dense, inputs: list[Any]) -> Any:
    y = inputs[0] @ op.kernel.values
    if op.bias is not None:
        y = y + op.bias.values
    return t.activation(y, op.activation, node.where)


def _conv(t: _Tracer, node: ir.Node, op: ir.Conv, inputs: list[Any]) -> Any:
    """A convolution as one constant matrix-vector multiply per output position."""
    from da4ml.trace import FixedVariableArray

    kernel = op.kernel.values
    x = inputs[0]._vars
    spatial, strides = kernel.shape[:-2], op.strides
    if op.padding == "same":
        x = np.pad(x, same_pads(x.shape, spatial, strides) + [(0, 0)], constant_values=0.0)
    out_shape = [(x.shape[d] - spatial[d]) // strides[d] + 1 for d in range(len(spatial))]
    matrix = kernel.reshape(-1, kernel.shape[-1])
    outs = np.empty(out_shape + [kernel.shape[-1]], dtype=object)
    for pos in np.ndindex(*out_shape):
        window = tuple(slice(p * s, p * s + k) for p, s, k in zip(pos, strides, spatial))
        patch = FixedVariableArray(_as_vars(x[window].ravel(), t.hwconf), inputs[0].solver_options)
        y = patch @ matrix
        outs[pos] = (y if op.bias is None else y + op.bias.values)._vars
    return t.activation(FixedVariableArray(outs, inputs[0].solver_options), op.activation, node.where)


def _as_vars(values: np.ndarray, hwconf: Any) -> np.ndarray:
    """Object array of FixedVariables (zero padding becomes constants)."""
    from da4ml.trace import FixedVariable

    return np.array([v if isinstance(v, FixedVariable) else FixedVariable.from_const(float(v), hwconf)
                     for v in values], dtype=object)


def _pool(t: _Tracer, node: ir.Node, op: ir.Pool, inputs: list[Any]) -> Any:
    from da4ml.trace import FixedVariableArray

    if op.padding != "valid":
        raise TriggerError(f"{node.where}: pooling with padding '{op.padding}' is not supported by `trigger rtl`")
    x = inputs[0]._vars
    out_shape = [(x.shape[d] - op.size[d]) // op.strides[d] + 1 for d in range(len(op.size))]
    outs = np.empty(out_shape + [x.shape[-1]], dtype=object)
    for pos in np.ndindex(*out_shape):
        window = tuple(slice(p * s, p * s + k) for p, s, k in zip(pos, op.strides, op.size))
        part = FixedVariableArray(x[window].reshape(-1, x.shape[-1]), inputs[0].solver_options)
        outs[pos] = _reduce(part, op.kind == "max", node.where)._vars
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


def _global_pool(t: _Tracer, node: ir.Node, op: ir.GlobalPool, inputs: list[Any]) -> Any:
    if op.keepdims:
        raise TriggerError(f"{node.where}: keepdims=True is not supported by `trigger rtl`")
    flat = inputs[0].reshape(-1, inputs[0].shape[-1])
    return _reduce(flat, op.kind == "max", node.where)


def _merge(t: _Tracer, node: ir.Node, op: ir.Merge, inputs: list[Any]) -> Any:
    from da4ml.trace import FixedVariableArray

    if op.kind == "concatenate":
        axis = op.axis if op.axis < 0 else op.axis - 1  # no batch axis here
        return FixedVariableArray(np.concatenate([x._vars for x in inputs], axis=axis), inputs[0].solver_options)
    if op.kind == "subtract":
        return inputs[0] - inputs[1]
    if op.kind == "average":
        return _reduce(FixedVariableArray(np.stack([x._vars for x in inputs]), inputs[0].solver_options),
                       False, node.where)
    out = inputs[0]
    for other in inputs[1:]:
        out = out * other if op.kind == "multiply" else out + other
    return out


RULES: dict[type, Callable] = {
    ir.Identity: lambda t, node, op, ins: ins[0],
    ir.Reshape: lambda t, node, op, ins: ins[0].reshape(op.shape),
    ir.Permute: lambda t, node, op, ins: ins[0].transpose(tuple(d - 1 for d in op.dims)),
    ir.Activate: lambda t, node, op, ins: t.activation(ins[0], op.function, node.where),
    ir.Dense: _dense, ir.Conv: _conv, ir.Pool: _pool, ir.GlobalPool: _global_pool, ir.Merge: _merge,
}


# --- the walk ------------------------------------------------------------------------------------

def output_node(network: ir.Network) -> tuple[str, bool]:
    """(name of the node the firmware outputs, True if a final softmax was cut off)."""
    if len(network.outputs) != 1:
        raise TriggerError(f"model has {len(network.outputs)} outputs; `trigger rtl` converts single-output models")
    if network.output.kind == "probabilities":
        raise TriggerError(f"layer '{network.output.node}' has a fused softmax, which `trigger rtl` cannot express "
                           "exactly; put the softmax in its own Activation layer (it is cut off, the RTL gives logits)")
    return network.output.node, network.output.cut is not None


def trace_model(model: Any, *, latency_cutoff: float = -1, exact_rounding: bool = True) -> Traced:
    """Trace ``model`` (QKeras) into da4ml variables; see the module docstring.

    ``latency_cutoff`` is the adder levels per pipeline stage (da4ml's ``HWConfig``; -1 for none),
    ``exact_rounding=False`` uses da4ml's round-half-up instead (for the cost comparison only).
    """
    from da4ml.trace import FixedVariableArray, HWConfig

    network = from_keras(model)
    if len(network.inputs) != 1:
        raise TriggerError(f"model has {len(network.inputs)} inputs; `trigger rtl` converts single-input models")
    out_name, cut = output_node(network)
    fmt = network.input_format
    hwconf = HWConfig(1, -1, latency_cutoff)
    shape = network.by_name[network.inputs[0]].shape
    inputs = FixedVariableArray.from_kif(np.full(shape, fmt.k), np.full(shape, fmt.i), np.full(shape, fmt.f), hwconf)
    tracer = _Tracer(hwconf, apply_qkeras if exact_rounding else round_half_up)
    start = network.input_quantizer or network.inputs[0]  # the input arrives in its format
    values: dict[str, Any] = {start: inputs}
    for node in network.nodes:
        if node.name in values or isinstance(node.op, ir.Input):
            continue
        values[node.name] = tracer.node(node, [values[p] for p in node.inputs])
        if node.name == out_name:
            break
    return Traced(inputs=inputs, outputs=values[out_name].reshape(-1), input_format=fmt, network=network,
                  output_layer=out_name, cut_softmax=cut)


def reference_words(traced: Traced, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For events ``x``: the words the RTL input receives and the exact reference of its output, one
    row per event. An input quantizer's output is what the input receives, and the reference applies
    that quantizer to ``x`` itself; an input without one receives ``x`` cast to the input format, on
    which the reference is then evaluated."""
    received = input_values(traced.network, x)
    seen = x if traced.network.input_quantizer else received
    expected = evaluate(traced.network, seen, keep=True)[traced.output_layer]
    return received.reshape(len(x), -1), expected.reshape(len(x), -1)


def stage_levels(mean_adder_bits: float, clock_eff_ns: float) -> int:
    """Adder levels per pipeline stage at this clock, from the estimator's adder-delay model."""
    from trigger.firmware.estimate.timing import adds_per_cycle

    return adds_per_cycle(int(math.ceil(mean_adder_bits)), clock_eff_ns)
