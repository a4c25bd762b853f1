"""The fixed-point format of every tensor of a network, from the range of each value.

Each element of each node's output gets an interval [low, high] that holds every value it can take
for inputs in the network's input format, and the tensor gets the fraction bits its values can
have (a product adds fraction bits, a sum keeps the finest, a quantizer sets its own). The format
of a tensor (:func:`tensor_formats`) is the narrowest one that holds the whole interval on that
grid: the word an exact firmware needs there. Intervals are exact bounds for each element given
independent inputs (a Dense output's bound is reached by some input), not estimates.

A node whose values are not on a binary grid (a softmax, a float scale, an average over a count
that is not a power of two) has no format: it and everything computed from it get None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from trigger.ir import network as ir
from trigger.ir.evaluate import convolve, pool
from trigger.ir.formats import FixedFormat, fraction_bits
from trigger.ir.quantizers import FixedCast, Quantizer


@dataclass(frozen=True, eq=False)
class Range:
    """Per-element bounds of a tensor (per-event shape) and the fraction bits of its values."""

    low: np.ndarray
    high: np.ndarray
    f: int

    @property
    def format(self) -> FixedFormat:
        """The narrowest format holding [low, high] on the grid 2^-f (a container: nothing is rounded
        or clipped into it, so its modes are hls4ml's defaults, TRN and WRAP)."""
        lo, hi = float(np.min(self.low, initial=0.0)), float(np.max(self.high, initial=0.0))
        k = int(lo < 0)
        i = 0
        while -(2.0 ** i) * k > lo or 2.0 ** i - 2.0 ** -self.f < hi:
            i += 1
        return FixedFormat(k, i, self.f, rounding="TRN", overflow="WRAP")


def _activate(r: Range | None, function: ir.Activation) -> Range | None:
    if r is None or function is None:
        return r
    if isinstance(function, FixedCast):
        return Range(*function.bounds(r.low, r.high), function.format.f)
    if isinstance(function, Quantizer):  # every QKeras quantizer is monotone: bounds map to bounds
        fmt = function.output_format
        if fmt is None:
            return None
        return Range(function.apply(r.low), function.apply(r.high), fmt.f)
    if function.name == "linear":
        return r
    if function.name == "relu":
        return Range(np.maximum(r.low, 0.0), np.maximum(r.high, 0.0), r.f)
    return None  # softmax, tanh, ...: not on a binary grid


def _linear(r: Range, weights: ir.Weights, bias: ir.Weights | None, apply: Callable) -> Range:
    """Bounds of ``apply(x, W) + b`` for x in [low, high]: positive weights take the low end to the
    low bound, negative weights the high end."""
    pos, neg = np.maximum(weights.values, 0.0), np.minimum(weights.values, 0.0)
    low = apply(r.low, pos) + apply(r.high, neg)
    high = apply(r.high, pos) + apply(r.low, neg)
    f = r.f + fraction_bits(weights.values)
    if bias is not None:
        low, high, f = low + bias.values, high + bias.values, max(f, fraction_bits(bias.values))
    return Range(low, high, f)


def _batched(fn: Callable) -> Callable:
    """``fn`` on one event's array through the batch-first evaluator functions."""
    return lambda x, w: fn(x[None], w)[0]


def _dense(node: ir.Node, op: ir.Dense, ins: list[Range]) -> Range | None:
    return _activate(_linear(ins[0], op.kernel, op.bias, lambda x, w: x @ w), op.activation)


def _conv_node(node: ir.Node, op: ir.Conv, ins: list[Range]) -> Range | None:
    conv = _batched(lambda x, w: convolve(x, w, op.strides, op.padding))
    return _activate(_linear(ins[0], op.kernel, op.bias, conv), op.activation)


def _depthwise(node: ir.Node, op: ir.Depthwise, ins: list[Range]) -> Range | None:
    def depthwise(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.concatenate([convolve(x[None, ..., c:c + 1], w[..., c:c + 1, :], op.strides, op.padding)[0]
                               for c in range(w.shape[-2])], axis=-1)

    r = _linear(ins[0], op.depthwise, None, depthwise)
    if op.pointwise is not None:
        r = _linear(r, op.pointwise, None, lambda x, w: x @ w.reshape(-1, w.shape[-1]))
    if op.bias is not None:
        r = Range(r.low + op.bias.values, r.high + op.bias.values, max(r.f, fraction_bits(op.bias.values)))
    return _activate(r, op.activation)


def _mean_bits(n: int) -> int | None:
    """Fraction bits a mean over ``n`` values adds (None if 1/n is not a binary fraction)."""
    return None if n & (n - 1) else n.bit_length() - 1


def _pool(node: ir.Node, op: ir.Pool, ins: list[Range]) -> Range | None:
    r = ins[0]
    extra = 0 if op.kind == "max" else _mean_bits(int(np.prod(op.size)))
    if extra is None or op.padding != "valid":
        return None
    def one(x: np.ndarray) -> np.ndarray:
        return pool(node, op, [x[None]])[0]

    return Range(one(r.low), one(r.high), r.f + extra)


def _global_pool(node: ir.Node, op: ir.GlobalPool, ins: list[Range]) -> Range | None:
    r = ins[0]
    axes = tuple(range(r.low.ndim - 1))
    n = int(np.prod([r.low.shape[a] for a in axes]))
    extra = 0 if op.kind == "max" else _mean_bits(n)
    if extra is None:
        return None
    reduce = np.max if op.kind == "max" else np.mean
    return Range(reduce(r.low, axis=axes, keepdims=op.keepdims), reduce(r.high, axis=axes, keepdims=op.keepdims),
                 r.f + extra)


def _merge(node: ir.Node, op: ir.Merge, ins: list[Range]) -> Range | None:
    f = max(r.f for r in ins)
    if op.kind == "concatenate":
        axis = op.axis if op.axis < 0 else op.axis - 1  # per event: no batch axis
        return Range(np.concatenate([r.low for r in ins], axis), np.concatenate([r.high for r in ins], axis), f)
    if op.kind == "subtract":
        return Range(ins[0].low - ins[1].high, ins[0].high - ins[1].low, f)
    if op.kind == "multiply":
        out = ins[0]
        for r in ins[1:]:
            corners = np.stack([out.low * r.low, out.low * r.high, out.high * r.low, out.high * r.high])
            out = Range(corners.min(axis=0), corners.max(axis=0), out.f + r.f)
        return out
    low, high = sum(r.low for r in ins), sum(r.high for r in ins)
    if op.kind == "add":
        return Range(low, high, f)
    extra = _mean_bits(len(ins))
    return None if extra is None else Range(low / len(ins), high / len(ins), f + extra)


def _reshape(shape: Callable) -> Callable:
    return lambda node, op, ins: Range(shape(ins[0].low, op), shape(ins[0].high, op), ins[0].f)


RULES: dict[type, Callable] = {
    ir.Identity: lambda node, op, ins: ins[0],
    ir.Activate: lambda node, op, ins: _activate(ins[0], op.function),
    ir.Dense: _dense, ir.Conv: _conv_node, ir.Depthwise: _depthwise, ir.Pool: _pool,
    ir.GlobalPool: _global_pool, ir.Merge: _merge,
    ir.Reshape: _reshape(lambda x, op: x.reshape(op.shape)),
    ir.Permute: _reshape(lambda x, op: np.transpose(x, tuple(d - 1 for d in op.dims))),
}


def tensor_ranges(network: ir.Network) -> dict[str, Range | None]:
    """{node: its output's :class:`Range`, or None where the values are not on a binary grid}."""
    ranges: dict[str, Range | None] = {}
    for node in network.nodes:
        if isinstance(node.op, ir.Input):
            fmt = network.input_formats[network.inputs.index(node.name)]
            ranges[node.name] = Range(np.full(node.shape, fmt.low), np.full(node.shape, fmt.high), fmt.f)
            continue
        ins = [ranges[n] for n in node.inputs]
        rule = RULES.get(type(node.op))
        ranges[node.name] = None if rule is None or any(r is None for r in ins) else rule(node, node.op, ins)
    return ranges


def tensor_formats(network: ir.Network) -> dict[str, FixedFormat | None]:
    """{node: the narrowest format holding every value of its output} (see the module docstring)."""
    return {name: None if r is None else r.format for name, r in tensor_ranges(network).items()}
