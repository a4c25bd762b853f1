"""Rules for activations, softmax, batch normalisation, merges, pooling and zero padding.

They follow ``nnet_activation.h``, ``nnet_batchnorm.h``, ``nnet_merge.h``, ``nnet_pooling.h`` and
their stream variants in hls4ml 1.3.0 (docs/estimator.md, *Other layers*).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trigger.firmware.estimate.products import (
    BRAM18_BITS, ROM_BRAM_MIN_BITS, constant_products, dsp_per_product, on_dsp, on_dsp_constant)
from trigger.firmware.estimate.registry import (
    Ctx, LayerEstimate, bits, in_precision, in_shape, layer_handler, out_precision, out_size,
    parallel_size, reuse_factor, type_precision, weights)
from trigger.firmware.estimate.timing import K_FF, MULT_CYCLES, fits_in_one_cycle, tree_cycles

#: Softmax pipeline depth per implementation (exp lookup, sum + inverse lookup, product; the
#: stable variant first finds and subtracts the maximum).
SOFTMAX_CYCLES = {"latency": 3, "stable": 4, "legacy": 3, "argmax": 1, "argmax_": 1}
#: Logic LUTs per bit of a max(a, b): the comparator's carry chain (1) and the 2:1 select (0.5,
#: two bits per dual-output LUT6_2, as in products.mux_luts_per_bit).
COMPARE_SELECT_LUTS_PER_BIT = 1.5
#: Activations that are a comparison and a select per element (no table).
SELECT_ACTIVATIONS = ("relu", "relu6", "hard_sigmoid", "hard_tanh", "binary_tanh", "ternary_tanh",
                      "leaky_relu", "thresholdedrelu", "prelu", "hardsigmoid")


@layer_handler("Activation", "ParametrizedActivation", "HardActivation", "PReLU", "Softmax",
               "TernaryTanh", elementwise=True)
def activation(layer: Any, ctx: Ctx) -> LayerEstimate:
    """Activations: a select per element, a lookup table, or the softmax."""
    cls = layer.class_name
    act = str(layer.get_attr("activation", cls)).lower().replace("leakyrelu", "leaky_relu")
    n = parallel_size(layer, ctx)
    in_w = bits(in_precision(layer))
    out_w = bits(out_precision(layer))
    rf = reuse_factor(layer)
    est = LayerEstimate(name=layer.name, cls=cls)
    if act in ("linear",):
        return est
    if act in SELECT_ACTIVATIONS:
        # a comparison and a select per element, merged into the neighbouring pipeline stage
        # (hls4ml baselines: Dense + relu / leaky_relu / prelu in io_parallel, 0 cycles, 18 FF)
        if act in ("leaky_relu", "prelu"):
            return _alpha_select(layer, ctx, est, n, in_w, out_w)
        est.lut_logic = n * (max(in_w, out_w) + quantizer_bits(out_precision(layer), in_w))
        return est
    if cls == "Softmax" or act == "softmax":
        return softmax(layer, ctx, est, n, in_w, rf)
    # table activations: sigmoid, tanh, elu, selu, softplus, softsign, ...
    table_size = int(layer.get_attr("table_size", 1024) or 1024)
    table_w = bits(type_precision(layer, "table_t"), 18)
    table_bits = table_size * table_w
    if table_bits >= ROM_BRAM_MIN_BITS:
        copies = math.ceil(n / (2 * rf))  # dual-port ROM: two lookups per cycle per copy
        est.BRAM_18K = copies * math.ceil(table_bits / BRAM18_BITS)
    else:
        est.lut_logic += n * table_bits // 64
    est.lut_table += n * (in_w + out_w)  # index computation, clamp and read-out (fitted factor)
    est.ff_bits = n * out_w
    est.cycles = 2
    est.interval = rf
    return est


def quantizer_bits(precision: Any, in_w: int) -> int:
    """Extra logic bits per element when a result is rounded (an incrementer over the output bits)
    and/or saturated (an overflow test over the input bits and a clamp). hls4ml's default
    truncating, wrapping types cost nothing; QKeras quantized_relu writes RND + SAT types."""
    out_w = bits(precision)
    rounding = str(getattr(precision, "rounding_mode", "TRN")).upper()
    saturation = str(getattr(precision, "saturation_mode", "WRAP")).upper()
    return (out_w if "RND" in rounding else 0) + (in_w + out_w if "SAT" in saturation else 0)


def _alpha_select(layer: Any, ctx: Ctx, est: LayerEstimate, n: int, in_w: int, out_w: int) -> LayerEstimate:
    """LeakyReLU / PReLU: x or alpha * x. alpha = 1 is the identity (baseline: LUT of the Dense
    alone), alpha = 0 a ReLU; other alphas add a constant product per element."""
    alpha = layer.weights.get("param") if hasattr(layer, "weights") else None
    if alpha is not None and getattr(alpha, "data", None) is not None:
        values, precision = np.asarray(alpha.data, dtype=float).reshape(-1), alpha.type.precision
    else:
        values = np.array([float(layer.get_attr("activ_param", 0.3) or 0.0)])
        precision = type_precision(layer, "param_t") or in_precision(layer)
    if np.all(values == 1.0):
        return est
    est.lut_logic = n * max(in_w, out_w)
    nonzero = values[values != 0]
    if nonzero.size:
        prod = constant_products(nonzero.reshape(1, -1), precision, in_w, ctx.dev, ctx.profile)
        est.lut_mult_bits = prod.lut_mult_bits * n / nonzero.size
        est.DSP = int(prod.dsp_units * n / nonzero.size)
    return est


def softmax(layer: Any, ctx: Ctx, est: LayerEstimate, n: int, in_w: int, rf: int) -> LayerEstimate:
    """Softmax: exp and inverse tables, ``n`` products (or a comparator tree for argmax)."""
    impl = str(layer.get_attr("implementation", "stable")).lower()
    exp_w = bits(type_precision(layer, "exp_table_t"), 18)
    inv_w = bits(type_precision(layer, "inv_table_t"), 18)
    acc_w = bits(type_precision(layer, "accum_t"), 18)
    exp_size = int(layer.get_attr("exp_table_size", layer.get_attr("table_size", 1024)) or 1024)
    inv_size = int(layer.get_attr("inv_table_size", layer.get_attr("table_size", 1024)) or 1024)
    if impl.startswith("argmax"):
        est.lut_logic = n * in_w * 2
        est.cycles = 1
        return est
    # n products exp(x_i) * 1/sum, on DSPs; the exp table is read n times per input (two reads
    # per block-RAM copy and cycle, RF cycles available), the inverse table once.
    est.mults = n
    est.DSP = n * dsp_per_product(exp_w, inv_w, ctx.dev)
    exp_bits, inv_bits = exp_size * exp_w, inv_size * inv_w
    est.BRAM_18K = math.ceil(n / (2 * rf)) * math.ceil(exp_bits / BRAM18_BITS) + math.ceil(inv_bits / BRAM18_BITS)
    est.lut_logic = n * (in_w + acc_w + exp_w) + (n * in_w * 2 if impl == "stable" else 0)
    est.ff_bits = K_FF * n * (exp_w + acc_w + in_w) * SOFTMAX_CYCLES.get(impl, 3)
    # nothing is shared in the softmax (the published reuse-2 designs keep its 5 DSPs), so a
    # larger II does not lengthen it
    est.cycles = SOFTMAX_CYCLES.get(impl, 3)
    est.interval = rf
    return est


@layer_handler("BatchNormalization", "ApplyAlpha", elementwise=True)
def batchnorm(layer: Any, ctx: Ctx) -> LayerEstimate:
    """Batch normalisation: constant scale products (same DSP/LUT rule) and bias adders."""
    n = parallel_size(layer, ctx)
    in_w = bits(in_precision(layer))
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    scale = weights(layer, "scale")
    n_chan = int(np.asarray(scale.data).size)
    prod = constant_products(np.asarray(scale.data).reshape(1, -1), scale.type.precision, in_w, ctx.dev,
                             ctx.profile)
    reps = max(1, n // max(1, n_chan))
    est.mults = (prod.n_dsp_ops + prod.n_lut_ops) * reps
    est.DSP = prod.dsp_units * reps
    out_w = bits(out_precision(layer))
    est.lut_mult_bits = reps * prod.lut_mult_bits
    est.lut_logic = n * out_w
    est.ff_bits = n * out_w
    est.cycles = MULT_CYCLES + 1
    return est


@layer_handler("Merge", "Dot", elementwise=True)
def merge(layer: Any, ctx: Ctx) -> LayerEstimate:
    """Merges: products of two variables (Multiply, Dot) or an adder/comparator per element."""
    op = str(layer.get_attr("op", layer.class_name)).lower()
    n = parallel_size(layer, ctx)
    w_a = bits(in_precision(layer, 0))
    w_b = bits(in_precision(layer, 1))
    out_w = bits(out_precision(layer))
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    if op in ("multiply", "dot"):
        per = n if op == "multiply" else int(np.prod(layer.get_input_variable().shape))
        est.mults = per
        if on_dsp(w_a, w_b):
            est.DSP = per * dsp_per_product(w_a, w_b, ctx.dev)
        else:
            est.lut_mult_bits += per * w_a * w_b
        if op == "dot":
            est.lut_logic += per * out_w
            est.cycles = MULT_CYCLES + tree_cycles(per, out_w, ctx.clock_eff_ns)
        else:
            est.cycles = MULT_CYCLES
        est.ff_bits = n * out_w
        return est
    # add, subtract, average, maximum, minimum: one adder/comparator per element
    est.lut_logic = n * max(w_a, w_b, out_w) * (2 if op in ("maximum", "minimum") else 1)
    est.ff_bits = n * out_w
    est.cycles = 1
    return est


@layer_handler("Pooling1D", "Pooling2D", "GlobalPooling1D", "GlobalPooling2D")
def pooling(layer: Any, ctx: Ctx) -> LayerEstimate:
    """Max/average pooling: a comparator or adder per window element, a reciprocal product for
    averages over a non-power-of-two window; io_stream: per pixel through a line buffer."""
    cls = layer.class_name
    shape = in_shape(layer)
    n_chan = shape[-1] if len(shape) > 1 else 1
    in_pixels = max(1, int(np.prod(shape)) // max(1, n_chan))
    in_w = bits(in_precision(layer))
    out_w = bits(out_precision(layer))
    is_global = cls.startswith("Global")
    window = in_pixels if is_global else \
        int(layer.get_attr("pool_height", 1) or 1) * int(layer.get_attr("pool_width", 1) or 1)
    grow = math.ceil(math.log2(window)) if window > 1 else 0
    stream = ctx.io_type == "io_stream"
    # io_parallel: every output at once; io_stream: one pixel's channels per cycle
    n_par = n_chan if stream else out_size(layer)
    ops = n_par * (1 if stream and is_global else max(0, window - 1))
    est = LayerEstimate(name=layer.name, cls=cls)
    if str(layer.get_attr("pool_op", "Max")).lower() == "average":
        est.lut_logic = ops * (in_w + grow)
        if window & (window - 1):  # not a power of two: product by the reciprocal constant
            if on_dsp_constant(in_w + grow, out_w):
                est.DSP = n_par * dsp_per_product(in_w + grow, out_w, ctx.dev)
                est.mults = n_par
            else:
                est.lut_mult_bits += n_par * (in_w + grow) * 4
    else:
        # comparator (a carry chain, one LUT per bit) + 2:1 select (a LUT6_2 holds two bits)
        est.lut_logic = ops * in_w * COMPARE_SELECT_LUTS_PER_BIT
    est.ff_bits = n_par * out_w
    tree = 1 if stream else tree_cycles(window, in_w + grow, ctx.clock_eff_ns)
    est.cycles = max(1, tree + (MULT_CYCLES if est.DSP else 0))
    if not stream and not est.DSP and fits_in_one_cycle(window, in_w + grow, ctx.clock_eff_ns, product=False):
        est.cycles, est.ff_bits = 0, 0.0  # combinational (baselines: 2- and 4-value pooling, 0 cycles)
    if stream:
        if not is_global and len(shape) > 2:
            # line buffer of (pool height - 1) input rows in shift registers
            pool_h = int(layer.get_attr("pool_height", 1) or 1)
            est.lut_logic += math.ceil((pool_h - 1) * shape[-2] * n_chan * in_w / 32)
        est.stream_cycles = in_pixels
        est.interval = in_pixels
        est.cycles += in_pixels
    return est


@layer_handler("ZeroPadding1D", "ZeroPadding2D")
def zero_padding(layer: Any, ctx: Ctx) -> LayerEstimate:
    """Zero padding: free in io_parallel, one beat per output pixel in io_stream."""
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    if ctx.io_type == "io_stream":
        n_out = out_size(layer)
        n_chan = int(layer.get_attr("n_chan", 1) or 1)
        beats = max(1, n_out // n_chan)
        est.stream_cycles = beats
        est.interval = beats
        est.cycles = beats + 1
        est.lut_logic = 50
    return est


@layer_handler("Resize", elementwise=True)
def resize(layer: Any, ctx: Ctx) -> LayerEstimate:
    """Nearest-neighbour up-sampling: wiring in io_parallel; in io_stream ``resize_nearest``
    (``nnet_image_stream.h``) holds one input row in registers and writes one beat per output
    pixel (the beats are added as for every elementwise layer)."""
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    shape = in_shape(layer)
    if ctx.io_type == "io_stream" and len(shape) > 1:
        row = shape[-2] * shape[-1] if len(shape) > 2 else shape[-1]
        est.ff_bits = row * bits(in_precision(layer))
        est.cycles = 1
    return est
