"""Rules for the constant-weight matrix products: Dense and the convolutions.

They follow ``nnet_dense_latency.h``, ``nnet_dense_resource.h``, ``nnet_conv2d_latency.h`` and
``nnet_conv_stream.h`` of hls4ml 1.3.0 (docs/estimator.md, *Dense* and *Convolutions*); layers
that hls4ml's distributed-arithmetic pass turned into da4ml adder graphs are costed from da4ml's
own figures (:mod:`trigger.firmware.estimate.da`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trigger.firmware.estimate import da
from trigger.firmware.estimate.products import (
    BRAM18_MAX_WIDTH, ROM_BRAM_MIN_DEPTH, Products, constant_products, dsp_per_product, mux_luts_per_bit,
    on_dsp_constant)
from trigger.firmware.estimate.registry import (
    Ctx, LayerEstimate, bits, in_precision, layer_handler, out_precision, reuse_factor, type_precision, weights)
from trigger.firmware.estimate.timing import MULT_CYCLES, fits_in_one_cycle, tree_cycles

#: Strategies whose weights sit in a ROM read every cycle once the reuse factor is above 1.
ROM_STRATEGIES = ("resource", "resource_unrolled", "compressed")


def matmul(layer: Any, ctx: Ctx, kernel: np.ndarray, n_in: int, n_out: int, copies: int,
           iterations: int) -> LayerEstimate:
    """A constant-weight matrix product (Dense, or a conv kernel applied ``copies`` times in
    parallel, ``iterations`` times one after another)."""
    strategy = str(layer.get_attr("strategy", "latency")).lower()
    rf = reuse_factor(layer)
    in_w = bits(in_precision(layer))
    acc_w = bits(type_precision(layer, "accum_t") or out_precision(layer))
    prod = constant_products(kernel, weights(layer).type.precision, in_w, ctx.dev, ctx.profile)
    # HLS trims adders to the bits the sum can actually reach
    add_w = min(acc_w, in_w + prod.weight_width + math.ceil(math.log2(n_in + 1)))
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    # At reuse 1 the Resource strategy's weight ROM has a single word, which HLS folds into
    # constants: it then behaves like the Latency strategy (hls4ml's conv2d Resource baselines use
    # ~half as many DSPs as products, as constant folding predicts).
    if strategy in ROM_STRATEGIES and rf > 1:
        return _rom_matmul(est, ctx, prod, (in_w, add_w, rf), n_in, n_out, copies, iterations)

    # Latency strategy: all n_in*n_out products unrolled, II = reuse factor.
    slots = math.ceil(n_in * n_out / rf)  # the ALLOCATION limit the template sets (without zeros)
    n_mult_ops = prod.n_dsp_ops + prod.n_lut_ops
    if rf > 1 and n_mult_ops > slots:
        # HLS must share: a shared multiplier sees several weights through a multiplexer, so it
        # is a full-width product.
        dsp_each = dsp_per_product(in_w, prod.weight_width, ctx.dev) \
            if on_dsp_constant(in_w, prod.weight_width) else 0
        n_units = slots
        dsp = dsp_each * n_units
        lut_mult = 0.0 if dsp_each else float(in_w * prod.weight_width * n_units)
    else:
        # Each surviving product is its own constant multiplier (pruning pays off fully only here)
        n_units = n_mult_ops
        dsp = prod.dsp_units
        lut_mult = prod.lut_mult_bits
    # With II = RF every multiplier's variable operand passes an RF-way selection (its constant
    # operand is a function of the slot counter: no multiplexer) and its result is held in a
    # register per time slot (published reuse-2 designs: ~2x the FF per multiplier of reuse 1).
    mux = n_units * in_w * mux_luts_per_bit(rf)
    n_adds = int(np.sum(prod.col_nonzero))  # bias initialises the accumulator
    # one product per output (n_in = 1): w * x + b is a DSP's multiply and post-adder (hls4ml
    # baselines Dense(64) on one input + leaky_relu(alpha = 1): 381-602 LUT in all, not 64 adders)
    lut_adds = n_adds - prod.n_dsp_ops if n_in == 1 and not (rf > 1 and n_mult_ops > slots) else n_adds
    registered = n_adds if rf == 1 else n_units * rf
    est.mults = n_units * copies
    est.DSP = int(dsp * copies)
    est.lut_mult_bits = copies * lut_mult
    est.lut_logic = copies * (mux + lut_adds * add_w)
    est.ff_adder_bits = copies * (registered + n_out) * add_w
    # Tree depth from the fan-in, not from the non-zero count: the published pruned designs are
    # not faster than the dense ones (docs/estimator.md).
    depth_cycles = MULT_CYCLES + tree_cycles(n_in + 1, add_w, ctx.clock_eff_ns)
    if rf == 1 and fits_in_one_cycle(n_in + 1, add_w, ctx.clock_eff_ns, product=n_units > 0):
        depth_cycles = 0  # combinational: chained with the neighbouring layers, no register
        est.ff_adder_bits = 0.0
    est.cycles = depth_cycles + (rf - 1) + rf * (iterations - 1)
    est.interval = rf * iterations
    return est


def _rom_matmul(est: LayerEstimate, ctx: Ctx, prod: Products, widths: tuple[int, int, int],
                n_in: int, n_out: int, copies: int, iterations: int) -> LayerEstimate:
    """Resource strategy at reuse > 1: the weights live in a ROM read every cycle, so there is no
    constant folding; every multiplier is a full-width product and zeros are not removed.
    ``widths`` is (input bits, adder bits, reuse factor); block_factor products per cycle."""
    in_w, add_w, rf = widths
    block = math.ceil(n_in * n_out / rf)
    dsp_each = dsp_per_product(in_w, prod.weight_width, ctx.dev) \
        if on_dsp_constant(in_w, prod.weight_width) else 0
    est.mults = block * copies
    est.DSP = dsp_each * block * copies
    est.lut_mult_bits = 0.0 if dsp_each else float(copies * in_w * prod.weight_width * block)
    mux = in_w * block * mux_luts_per_bit(rf)  # input selection per multiplier
    rom_width = block * prod.weight_width  # the weights, reshaped to RF words of block weights
    if rf >= ROM_BRAM_MIN_DEPTH:
        est.BRAM_18K = copies * math.ceil(rom_width / BRAM18_MAX_WIDTH) * math.ceil(rf / 512)
        rom_luts = 0
    else:  # shallow ROM: distributed (a LUT6 holds 64 x 1 bit)
        rom_luts = rom_width * math.ceil(rf / 64)
    est.lut_logic = copies * (mux + rom_luts + block * add_w + n_out * add_w)
    # multiplier outputs, the accumulators held across the RF iterations and the input held
    # for them
    est.ff_adder_bits = copies * (block + n_out) * add_w
    est.ff_bits = copies * n_in * in_w
    per_pass = rf + MULT_CYCLES + 2
    est.interval = rf * iterations
    est.cycles = per_pass + rf * (iterations - 1)
    return est


def da_layer(layer: Any, ctx: Ctx, copies: int, iterations: int) -> LayerEstimate:
    """Distributed arithmetic (hls4ml + da4ml): an adder graph, 0 DSP, LUTs from da4ml's cost."""
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    figures = da.layer_figures(layer, ctx.clock_eff_ns)
    est.lut_logic = float(figures["LUT"] * copies)
    est.lut_da = est.lut_logic
    est.ff_bits = float(figures["FF"] * copies)
    est.cycles = int(figures["cycles"]) + (iterations - 1)
    est.interval = iterations
    if figures.get("warning"):
        est.warning = figures["warning"]
    return est


def is_da(layer: Any) -> bool:
    """True when hls4ml's DA pass has replaced the layer's weights by an adder graph."""
    return str(layer.get_attr("strategy", "")).lower() == "distributed_arithmetic"


@layer_handler("Dense")
def dense(layer: Any, ctx: Ctx) -> LayerEstimate:
    """Dense: one matrix product; io_stream adds the read and write of the packed stream words."""
    n_in = int(layer.get_attr("n_in"))
    n_out = int(layer.get_attr("n_out"))
    if is_da(layer):
        est = da_layer(layer, ctx, copies=1, iterations=1)
    else:
        kernel = np.asarray(weights(layer).data).reshape(n_in, n_out)
        est = matmul(layer, ctx, kernel, n_in, n_out, copies=1, iterations=1)
    if ctx.io_type == "io_stream":
        est.cycles += 1  # read and write of the packed stream words
    return est


@layer_handler("Conv1D", "Conv2D", "Conv2DBatchnorm", "PointwiseConv1D", "PointwiseConv2D")
def conv(layer: Any, ctx: Ctx) -> LayerEstimate:
    """Convolution: the kernel as a matrix product, per pixel partition (io_parallel) or per
    input pixel through a line buffer (io_stream)."""
    n_filt = int(layer.get_attr("n_filt"))
    out_h = int(layer.get_attr("out_height", 1) or 1)
    out_w = int(layer.get_attr("out_width", 1) or 1)
    n_pixels_total = out_h * out_w
    if is_da(layer):
        return _da_conv(layer, ctx, n_pixels_total)
    kernel = np.asarray(weights(layer).data).reshape(-1, n_filt)
    n_in = kernel.shape[0]
    if ctx.io_type == "io_stream":
        return _stream_conv(layer, ctx, kernel, n_in, n_filt)
    n_partitions = int(layer.get_attr("n_partitions", n_pixels_total) or n_pixels_total)
    n_pixels = max(1, n_pixels_total // max(1, n_partitions))
    est = matmul(layer, ctx, kernel, n_in, n_filt, copies=n_pixels, iterations=n_partitions)
    est.cycles += 1  # fill_buffer (im2col) stage
    return est


def _da_conv(layer: Any, ctx: Ctx, n_pixels_total: int) -> LayerEstimate:
    """A DA convolution: da4ml's kernel graph per pixel copy, once per partition (or input pixel)."""
    n_partitions = int(layer.get_attr("n_partitions", n_pixels_total) or n_pixels_total)
    if ctx.io_type == "io_stream":
        n_partitions = int(layer.get_attr("in_height", 1) or 1) * int(layer.get_attr("in_width", 1) or 1)
    n_pixels = 1 if ctx.io_type == "io_stream" else max(1, n_pixels_total // max(1, n_partitions))
    est = da_layer(layer, ctx, copies=n_pixels, iterations=n_partitions)
    if ctx.io_type == "io_stream":
        est.stream_cycles = n_partitions
    return est


def _stream_conv(layer: Any, ctx: Ctx, kernel: np.ndarray, n_in: int, n_filt: int) -> LayerEstimate:
    """io_stream convolution: one kernel product per output pixel through the line buffer,
    II = reuse factor."""
    in_h = int(layer.get_attr("in_height", 1) or 1)
    in_w = int(layer.get_attr("in_width", 1) or 1)
    est = matmul(layer, ctx, kernel, n_in, n_filt, copies=1, iterations=1)
    beats = in_h * in_w * reuse_factor(layer)
    est.stream_cycles = beats
    est.interval = beats
    est.cycles = est.cycles + beats
    filt_h = int(layer.get_attr("filt_height", 1) or 1)
    n_chan = int(layer.get_attr("n_chan", 1) or 1)
    in_prec_w = bits(in_precision(layer))
    # line buffer: (filter height - 1) rows of the input in ap_shift_reg, i.e. SRL32 LUTs,
    # plus the filter window in registers
    lb_bits = (filt_h - 1) * in_w * n_chan * in_prec_w
    est.lut_logic += math.ceil(lb_bits / 32)
    est.ff_bits += filt_h * (int(layer.get_attr("filt_width", 1) or 1)) * n_chan * in_prec_w
    return est
