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

from trigger.compress.quantize import quantizer_bits
from trigger.models.graph import bit_operations, kernel, layer_graph, unwrap, weight_layers

# Layers through which the type of a tensor passes unchanged.
_TYPE_PRESERVING = {"Flatten", "Reshape", "Permute", "Dropout", "MaxPooling1D", "MaxPooling2D",
                    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "AveragePooling1D", "AveragePooling2D",
                    "GlobalAveragePooling1D", "GlobalAveragePooling2D"}


class BopsReport(dict):
    """``{'layers': {name: {...}}, 'total': BOPs, 'float_bits': b}``; ``float(report)`` is the total."""

    def __float__(self) -> float:
        return float(self["total"])


def _output_elements(layer) -> int:
    try:
        shape = layer.output_shape
    except AttributeError:  # a layer shared by several models with different shapes
        shape = layer.get_output_shape_at(0)
    return int(np.prod([d for d in shape[1:]]))


def model_bops(model, *, float_bits: int = 32) -> BopsReport:
    """Per weight layer and total bit operations of ``model`` (see the module docstring).

    Per layer: ``fan_in`` (n), ``outputs`` (m), ``macs`` (m*n), ``weight_bits``,
    ``activation_bits``, ``zero_fraction`` (f) and ``bops``.
    """
    graph = layer_graph(model)

    def tensor_bits(name: str) -> int:
        """Bits of the output of layer ``name`` as the next layer sees it."""
        layer = unwrap(graph.layers[name])
        cls = type(layer).__name__
        if cls == "QActivation":
            return quantizer_bits(layer.quantizer) or float_bits
        if cls in _TYPE_PRESERVING:
            return tensor_bits(graph.inbound[name][0])
        if cls == "Concatenate":
            return max(tensor_bits(s) for s in graph.inbound[name])
        return float_bits

    report: dict[str, dict] = {}
    total = 0.0
    for layer in weight_layers(graph.model):
        inner = unwrap(layer)
        k = kernel(layer, quantized=True)
        fan_in = int(np.prod(k.shape[:-1]))
        outputs = _output_elements(layer)
        b_w = quantizer_bits(getattr(inner, "kernel_quantizer_internal", None)) or float_bits
        srcs = graph.inbound[layer.name]
        b_a = tensor_bits(srcs[0]) if srcs else float_bits
        zero_fraction = float(np.mean(k == 0))
        macs = outputs * fan_in
        bops = bit_operations(macs=macs, nonzero_macs=(1.0 - zero_fraction) * macs, fan_in=fan_in,
                              activation_bits=b_a, weight_bits=b_w)
        report[inner.name] = {"fan_in": fan_in, "outputs": outputs, "macs": macs, "weight_bits": b_w,
                              "activation_bits": b_a, "zero_fraction": zero_fraction, "bops": bops}
        total += bops
    return BopsReport(layers=report, total=total, float_bits=float_bits)
