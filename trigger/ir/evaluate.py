"""The exact evaluator: a :class:`~trigger.ir.network.Network` computed in float64, node by node.

QKeras computes in float32 (``quantized_relu`` even casts its input to float32 before rounding), so
wherever the exact fixed-point value of a layer needs more than 24 significant bits the QKeras
output itself is rounded. float64 holds every value of these fixed-point networks exactly (they
need far fewer than 53 significant bits), so this evaluation is the reference firmware is compared
with. A node it cannot compute raises :class:`~trigger.ir.quantizers.Unsupported` naming it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from trigger.ir import network as ir
from trigger.ir.quantizers import FixedCast, Quantizer, Unsupported


def activate(x: np.ndarray, function: ir.Activation, where: str) -> np.ndarray:
    """A layer's activation applied exactly: a quantizer or cast, linear, relu or softmax."""
    if function is None:
        return x
    if isinstance(function, (Quantizer, FixedCast)):
        return function.apply(x, where)
    if function.name == "linear":
        return x
    if function.name == "relu":
        return np.maximum(x, 0.0)
    if function.name == "softmax":
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
    raise Unsupported(f"{where}: activation {function.name}")


def same_pads(shape: tuple[int, ...], spatial: tuple[int, ...], strides: tuple[int, ...]) -> list[tuple[int, int]]:
    """Keras's 'same' padding (before, after) of each spatial axis of a per-event ``shape``."""
    pads = []
    for d, k in enumerate(spatial):
        out = -(-shape[d] // strides[d])
        total = max((out - 1) * strides[d] + k - shape[d], 0)
        pads.append((total // 2, total - total // 2))
    return pads


def convolve(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...], padding: str) -> np.ndarray:
    """N-d convolution (channels last) by gathering patches; exact in float64."""
    spatial = kernel.shape[:-2]
    nd = len(spatial)
    if padding == "same":
        x = np.pad(x, [(0, 0)] + same_pads(x.shape[1:], spatial, strides) + [(0, 0)])
    out_shape = [(x.shape[1 + d] - spatial[d]) // strides[d] + 1 for d in range(nd)]
    result = np.zeros([x.shape[0]] + out_shape + [kernel.shape[-1]], dtype=np.float64)
    for offset in np.ndindex(*spatial):
        slices = tuple(slice(offset[d], offset[d] + strides[d] * (out_shape[d] - 1) + 1, strides[d])
                       for d in range(nd))
        result += x[(slice(None),) + slices + (slice(None),)] @ kernel[offset]
    return result


def _dense(node: ir.Node, op: ir.Dense, ins: list[np.ndarray]) -> np.ndarray:
    y = ins[0] @ op.kernel.values
    return activate(y if op.bias is None else y + op.bias.values, op.activation, node.where)


def _conv_node(node: ir.Node, op: ir.Conv, ins: list[np.ndarray]) -> np.ndarray:
    y = convolve(ins[0], op.kernel.values, op.strides, op.padding)
    return activate(y if op.bias is None else y + op.bias.values, op.activation, node.where)


def _depthwise(node: ir.Node, op: ir.Depthwise, ins: list[np.ndarray]) -> np.ndarray:
    """Each channel with its own kernels (output channel c*m + j for depth multiplier m), then the
    pointwise (1x1) convolution of a separable one, bias, activation."""
    x, kernel = ins[0], op.depthwise.values
    y = np.concatenate([convolve(x[..., c:c + 1], kernel[..., c:c + 1, :], op.strides, op.padding)
                        for c in range(kernel.shape[-2])], axis=-1)
    if op.pointwise is not None:
        y = y @ op.pointwise.values.reshape(-1, op.pointwise.values.shape[-1])
    if op.bias is not None:
        y = y + op.bias.values
    return activate(y, op.activation, node.where)


def pool(node: ir.Node, op: ir.Pool, ins: list[np.ndarray]) -> np.ndarray:
    """Max or average pooling over windows (valid padding only), exact."""
    if op.padding != "valid":
        raise Unsupported(f"{node.where}: pooling with padding '{op.padding}'")
    x = ins[0]
    nd = len(op.size)
    out_shape = [(x.shape[1 + d] - op.size[d]) // op.strides[d] + 1 for d in range(nd)]
    parts = []
    for offset in np.ndindex(*op.size):
        slices = tuple(slice(offset[d], offset[d] + op.strides[d] * (out_shape[d] - 1) + 1, op.strides[d])
                       for d in range(nd))
        parts.append(x[(slice(None),) + slices + (slice(None),)])
    stacked = np.stack(parts)
    return stacked.max(axis=0) if op.kind == "max" else stacked.sum(axis=0) / len(parts)


def _global_pool(node: ir.Node, op: ir.GlobalPool, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    axes = tuple(range(1, x.ndim - 1))
    if op.kind == "max":
        return x.max(axis=axes, keepdims=op.keepdims)
    return x.sum(axis=axes, keepdims=op.keepdims) / np.prod([x.shape[a] for a in axes])


def _merge(node: ir.Node, op: ir.Merge, ins: list[np.ndarray]) -> np.ndarray:
    if op.kind == "concatenate":
        return np.concatenate(ins, axis=op.axis)
    if op.kind == "subtract":
        return ins[0] - ins[1]
    if op.kind == "multiply":
        out = ins[0]
        for other in ins[1:]:
            out = out * other
        return out
    total = np.sum(ins, axis=0)
    return total / len(ins) if op.kind == "average" else total


def _batchnorm(node: ir.Node, op: ir.BatchNorm, ins: list[np.ndarray]) -> np.ndarray:
    return (ins[0] - op.mean) / np.sqrt(op.variance + op.epsilon) * op.gamma + op.beta


def _opaque(node: ir.Node, op: ir.Opaque, ins: list[np.ndarray]) -> np.ndarray:
    raise Unsupported(f"{node.where}: {op.reason}")


#: the evaluator's one rule per IR operation
RULES: dict[type, Callable] = {
    ir.Identity: lambda node, op, ins: ins[0],
    ir.Activate: lambda node, op, ins: activate(ins[0], op.function, node.where),
    ir.Dense: _dense, ir.Conv: _conv_node, ir.Depthwise: _depthwise, ir.Pool: pool,
    ir.GlobalPool: _global_pool,
    ir.Reshape: lambda node, op, ins: ins[0].reshape((ins[0].shape[0],) + op.shape),
    ir.Permute: lambda node, op, ins: np.transpose(ins[0], (0,) + op.dims),
    ir.Merge: _merge, ir.BatchNorm: _batchnorm, ir.Opaque: _opaque,
}


def evaluate(network: ir.Network, x: np.ndarray | list[np.ndarray], *, keep: bool = False) -> dict[str, np.ndarray]:
    """``{node name: output}`` of the network's outputs (in order) and, with ``keep``, of every node
    (the first node where the firmware differs is found from these). Exact, float64."""
    xs = x if isinstance(x, (list, tuple)) else [x]
    values = {name: np.asarray(arr, dtype=np.float64) for name, arr in zip(network.inputs, xs)}
    kept: dict[str, np.ndarray] = {}
    for node in network.nodes:
        if isinstance(node.op, ir.Input):
            continue
        rule = RULES.get(type(node.op))
        if rule is None:
            raise Unsupported(f"{node.where}: {getattr(node.op, 'reason', 'not evaluated exactly')}")
        values[node.name] = rule(node, node.op, [values[n] for n in node.inputs])
        if keep:
            kept[node.name] = values[node.name]
    return {**kept, **{name: values[name] for name in network.outputs}}


def input_values(network: ir.Network, x: np.ndarray) -> np.ndarray:
    """The values the firmware's input receives for ``x``: the input quantizer's output where the
    model has one that alone reads the input, else ``x`` cast to :attr:`Network.input_format`."""
    if network.input_quantizer is not None:
        node = network.by_name[network.input_quantizer]
        return activate(np.asarray(x, dtype=np.float64), node.op.function, node.where)
    return network.input_format.cast(x)
