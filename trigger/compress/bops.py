"""Bit operations (BOPs) of a model, as in the quantization-aware pruning literature.

For a weight layer whose every output is a sum of ``n`` products (fan-in ``n``: the Dense input
width, or kernel height x width x input channels of a convolution) and that computes ``m`` outputs
per event, with ``b_w``-bit weights, ``b_a``-bit input activations and a fraction ``f`` of zero
weights (Baskin et al. 2021; Hawks et al., Front. AI 4 (2021) 676564):

    BOPs = m * n * ((1 - f) * b_a * b_w + b_a + b_w + log2(n))

The first term counts the multiplications that remain after pruning, the rest the accumulator
(an adder of ``b_a + b_w + log2(n)`` bits per product); it is written once, as
:func:`trigger.models.graph.bit_operations`, which the firmware report uses too. ``f`` is the
fraction of kernel entries that are zero after the layer's kernel quantizer (the zeros hls4ml
drops from the firmware, pruned or rounded). An input activation whose type is not set by a quantizer (model inputs of a float
model, the outputs of layers without an activation quantizer) is counted at ``float_bits``.
Only weight layers (Dense, Conv1D, Conv2D and their QKeras versions) are counted.
"""

from __future__ import annotations

import numpy as np

from trigger.ir import network as ir
from trigger.ir.keras import from_keras
from trigger.ir.quantizers import Quantizer
from trigger.models.graph import bit_operations

# Operations through which the type of a tensor passes unchanged.
_TYPE_PRESERVING = (ir.Identity, ir.Reshape, ir.Permute, ir.Pool, ir.GlobalPool)


class BopsReport(dict):
    """``{'layers': {name: {...}}, 'total': BOPs, 'float_bits': b}``; ``float(report)`` is the total."""

    def __float__(self) -> float:
        return float(self["total"])


def _tensor_bits(network: ir.Network, name: str, float_bits: int) -> int:
    """Bits of the output of node ``name`` as the next layer sees it."""
    node = network.by_name[name]
    op = node.op
    if isinstance(op, ir.Activate) and isinstance(op.function, Quantizer):
        return op.function.bits or float_bits
    if isinstance(op, _TYPE_PRESERVING):
        return _tensor_bits(network, node.inputs[0], float_bits)
    if isinstance(op, ir.Merge) and op.kind == "concatenate":
        return max(_tensor_bits(network, s, float_bits) for s in node.inputs)
    return float_bits


def model_bops(model, *, float_bits: int = 32) -> BopsReport:
    """Per weight layer and total bit operations of ``model`` (see the module docstring), read from
    its IR (pruning wrappers read through).

    Per layer: ``fan_in`` (n), ``outputs`` (m), ``macs`` (m*n), ``weight_bits``,
    ``activation_bits``, ``zero_fraction`` (f) and ``bops``.
    """
    network = from_keras(model)
    report: dict[str, dict] = {}
    total = 0.0
    for node in network.weight_nodes():
        if not isinstance(node.op, (ir.Dense, ir.Conv)):
            continue  # depthwise and separable convolutions are not counted (module docstring)
        kernel = node.op.kernel
        fan_in = int(np.prod(kernel.values.shape[:-1]))
        outputs = int(np.prod(node.shape))
        b_w = (kernel.quantizer.bits if kernel.quantizer is not None else 0) or float_bits
        b_a = _tensor_bits(network, node.inputs[0], float_bits) if node.inputs else float_bits
        macs = outputs * fan_in
        bops = bit_operations(macs=macs, nonzero_macs=(1.0 - kernel.zero_fraction) * macs, fan_in=fan_in,
                              activation_bits=b_a, weight_bits=b_w)
        report[node.name] = {"fan_in": fan_in, "outputs": outputs, "macs": macs, "weight_bits": b_w,
                             "activation_bits": b_a, "zero_fraction": kernel.zero_fraction, "bops": bops}
        total += bops
    return BopsReport(layers=report, total=total, float_bits=float_bits)
