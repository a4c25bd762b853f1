"""Latency and resource estimate of an hls4ml model without vendor tools.

The estimate is a model of what Vivado/Vitis HLS makes of the C++ that hls4ml 1.3.0 writes for each
layer (``nnet_dense_latency.h``, ``nnet_dense_resource.h``, ``nnet_conv2d_latency.h``,
``nnet_conv_stream.h``, ``nnet_activation.h``, ...): which products survive constant propagation
of the weights (zeros vanish, powers of two become shifts), which of them become DSPs and which
LUT multipliers, how many the reuse factor lets HLS share, how deep the adder trees are at the
clock, and which tables go to block RAM. The model, its few fitted constants and its measured
errors against published Vivado HLS reports are written down in ``docs/estimator.md``.

Entry point: :func:`estimate_model` (an hls4ml ``ModelGraph`` -> :class:`Estimate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from trigger.errors import TriggerError

METHOD_NAME = "trigger analytic HLS model v1"
METHOD = f"{METHOD_NAME} (docs/estimator.md)"

# --- Constants of the model. Physical ones are stated; fitted ones say what they were fitted on. ---
#: An adder of w bits takes T_ADD_BASE_NS + T_ADD_PER_BIT_NS * w (routing + carry chain); with the
#: 5 ns clock and 12.5 % uncertainty this packs 5 levels of 16-bit adders per cycle. Chosen so that
#: the published ap_fixed<16,6> reuse-1 jet MLP (13 cycles) is met; not refitted per design.
T_ADD_BASE_NS = 0.5
T_ADD_PER_BIT_NS = 0.02
#: Cycles of the product stage (DSP with its output register, or a registered LUT multiplier).
MULT_CYCLES = 1
#: HLS puts a constant product on a DSP only when the variable operand has at least
#: DSP_MIN_WIDE_BITS bits and the constant enough significant bits (``ToolProfile``); otherwise it
#: builds a LUT multiplier (a narrow variable times a constant is a small table). Evidence:
#: QKeras jet MLP: 6-bit activations x 6-bit weights in LUTs; QKeras SVHN CNN: 6-bit activations x
#: 16-bit output-layer weights mostly in LUTs. A product of two variables (Merge Multiply) needs
#: both operands above LUT_NARROW_BITS and one of at least DSP_MIN_WIDE_BITS.
DSP_MIN_WIDE_BITS = 10
LUT_NARROW_BITS = 3


@dataclass(frozen=True)
class ToolProfile:
    """What differs between HLS tool generations in how they map constant products."""

    name: str
    #: a constant needs at least this many significant bits (sign included) to get a DSP
    const_dsp_min_bits: int
    #: LUTs the C-synthesis estimate charges per (variable bit x constant bit) of a LUT multiplier
    k_lut_mult: float
    evidence: str


PROFILES = {
    # Vivado HLS 2019.2: the four published hls4ml-tutorial jet-MLP reports. 16-bit inputs x 6-bit
    # weights (221 DSP for ~256 products) are on DSPs, so the threshold is low; k_lut_mult fitted
    # (to 2 %) on the LUT total of the QKeras design, whose hidden layers are 6 x 6-bit LUT products.
    "vivado2019": ToolProfile("vivado2019", 4, 3.2,
                              "Vivado HLS 2019.2, hls4ml-tutorial jet MLP (4 reports)"),
    # Vivado HLS 2020.1 and Vitis HLS 2024.1: hls4ml's own conv2d synthesis baselines (16-bit
    # input x N(0, 0.05) weights: 740 and 792 DSP for 1536 products, i.e. only the constants of
    # 7+ bits) and the QKeras SVHN CNN (16-bit x 6-bit weights of its first conv: 27 DSP of ~216).
    # k_lut_mult = 1.0 lies between what the two conv2d baselines need (Vivado 2020.1: 86,819
    # LUT, Vitis 2024.1: 61,308 LUT; the estimate is 73,120, -16 % / +19 %).
    "modern": ToolProfile("modern", 7, 1.0,
                          "Vivado HLS 2020.1 / Vitis HLS 2024.1, hls4ml conv2d baselines"),
}
DEFAULT_PROFILE = "modern"
#: Flip-flops per adder bit of the products' accumulation (pipeline registers between the adder
#: stages and the layer output). Fitted on the FF total of the published ap_fixed<16,6> reuse-1 MLP.
K_FF = 0.7
#: A stream FIFO shallower than this is a shift register in LUTs, deeper ones use block RAM.
FIFO_BRAM_MIN_DEPTH = 33
#: Block RAM 18K geometry; table ROMs smaller than ROM_BRAM_MIN_BITS and Resource-strategy weight
#: ROMs shallower than ROM_BRAM_MIN_DEPTH words stay in LUTs (assumption, not calibrated).
BRAM18_BITS = 18 * 1024
BRAM18_MAX_WIDTH = 36
ROM_BRAM_MIN_BITS = 1024
ROM_BRAM_MIN_DEPTH = 32
#: Softmax pipeline depth per implementation (exp lookup, sum + inverse lookup, product; the
#: stable variant first finds and subtracts the maximum).
SOFTMAX_CYCLES = {"latency": 3, "stable": 4, "legacy": 3, "argmax": 1, "argmax_": 1}

FREE_CLASSES = {
    "Input", "InputLayer", "Reshape", "Flatten", "Permute", "Transpose", "Dropout", "Repack",
    "Concatenate", "Constant", "Linear", "Identity", "Cropping1D", "Cropping2D", "Clone",
    "BroadcastStream",
}


@dataclass
class LayerEstimate:
    """Estimated cost of one hls4ml layer."""

    name: str
    cls: str
    cycles: int = 0
    interval: int = 1
    mults: int = 0
    DSP: int = 0
    LUT: int = 0
    FF: int = 0
    BRAM_18K: int = 0
    #: cycles of a streaming layer that overlap with the other layers (io_stream dataflow)
    stream_cycles: int = 0
    warning: str | None = None

    def to_dict(self) -> dict:
        out = {"name": self.name, "class": self.cls, "cycles": int(self.cycles),
               "interval": int(self.interval), "mults": int(self.mults), "DSP": int(self.DSP),
               "LUT": int(self.LUT), "FF": int(self.FF), "BRAM_18K": int(self.BRAM_18K)}
        if self.warning:
            out["warning"] = self.warning
        return out


@dataclass
class Estimate:
    """Whole-model estimate: latency at the clock and summed resources, with per-layer detail."""

    clock_ns: float
    io_type: str
    min_cycles: int
    max_cycles: int
    interval: int
    layers: list[LayerEstimate] = field(default_factory=list)
    method: str = METHOD

    @property
    def resources(self) -> dict[str, int]:
        return {key: int(sum(getattr(layer, key) for layer in self.layers))
                for key in ("DSP", "LUT", "FF", "BRAM_18K")}

    @property
    def ns(self) -> float:
        return float(self.max_cycles * self.clock_ns)

    def to_dict(self) -> dict:
        """The dict the firmware stage writes into report.json (labelled ``source: estimate``)."""
        return {
            "source": "estimate",
            "method": self.method,
            "latency": {"min_cycles": int(self.min_cycles), "max_cycles": int(self.max_cycles),
                        "interval": int(self.interval), "ns": round(self.ns, 3)},
            "resources": self.resources,
            "layers": [layer.to_dict() for layer in self.layers],
        }


# --- precision helpers -----------------------------------------------------------------------------

def _width(precision: Any, default: int = 16) -> int:
    return int(getattr(precision, "width", default) or default)


def _frac_bits(precision: Any) -> int:
    width = getattr(precision, "width", None)
    integer = getattr(precision, "integer", None)
    if width is None:
        return 0
    if integer is None:  # IntegerPrecisionType
        return 0
    return int(width - integer)


def _type_precision(layer: Any, attr: str) -> Any | None:
    named = layer.get_attr(attr)
    return getattr(named, "precision", None)


def _in_precision(layer: Any, index: int = 0) -> Any:
    names = list(getattr(layer, "inputs", []) or [])
    if index and index < len(names):
        var = layer.get_input_variable(names[index])
    else:
        var = layer.get_input_variable()
    return var.type.precision


def _in_shape(layer: Any) -> list[int]:
    return [int(s) for s in layer.get_input_variable().shape]


def _out_var(layer: Any) -> Any:
    return layer.get_output_variable()


def _out_precision(layer: Any) -> Any:
    return _out_var(layer).type.precision


def _out_size(layer: Any) -> int:
    return int(np.prod(_out_var(layer).shape))


def _parallel_size(layer: Any, ctx: "_Ctx") -> int:
    """Elements processed at once: the whole tensor in io_parallel, one packed pixel (the last
    dimension) per cycle in io_stream."""
    shape = [int(v) for v in _out_var(layer).shape]
    if ctx.io_type == "io_stream" and len(shape) > 1:
        return shape[-1]
    return int(np.prod(shape))


def _mux_luts_per_bit(ways: int) -> int:
    """LUT6s per bit of a ``ways``-input multiplexer (a LUT6 is a 4:1 mux; 2:1 costs one too)."""
    return 0 if ways <= 1 else math.ceil((ways - 1) / 3)


def _adds_per_cycle(width: int, clock_eff_ns: float) -> int:
    return max(1, int(clock_eff_ns // (T_ADD_BASE_NS + T_ADD_PER_BIT_NS * width)))


def _tree_cycles(n_terms: int, width: int, clock_eff_ns: float) -> int:
    """Cycles of a balanced adder tree summing n_terms values of ``width`` bits."""
    if n_terms <= 1:
        return 0
    depth = math.ceil(math.log2(n_terms))
    return math.ceil(depth / _adds_per_cycle(width, clock_eff_ns))


@dataclass
class _Device:
    dsp_a: int  # wide DSP port (27 on DSP48E2, 25 on DSP48E1)
    dsp_b: int  # narrow DSP port (18)


def _device(part: str) -> _Device:
    part = (part or "").lower()
    if part.startswith("xc7") or part.startswith("xa7") or part.startswith("xq7"):
        return _Device(25, 18)
    return _Device(27, 18)


def _dsp_per_product(width_a: int, width_b: int, dev: _Device) -> int:
    wide, narrow = max(width_a, width_b), min(width_a, width_b)
    return math.ceil(wide / dev.dsp_a) * math.ceil(narrow / dev.dsp_b)


def _on_dsp(width_a: int, width_b: int) -> bool:
    """Product of two variables: DSP unless narrow."""
    return max(width_a, width_b) >= DSP_MIN_WIDE_BITS and min(width_a, width_b) > LUT_NARROW_BITS


def _on_dsp_constant(var_width: int, weight_width: int) -> bool:
    """Product of a variable and a non-constant weight operand (shared multiplier or ROM):
    DSP only for a wide variable."""
    return var_width >= DSP_MIN_WIDE_BITS and weight_width > LUT_NARROW_BITS


# --- constant products -------------------------------------------------------------------------

@dataclass
class _Products:
    """What the non-zero constant products of a weight matrix turn into."""

    n_total: int  # all weight positions (the slots the reuse factor divides)
    n_nonzero: int
    n_shift: int  # powers of two: wiring, no multiplier
    n_dsp_ops: int  # products that get a DSP
    dsp_units: int  # DSPs for those (wide products take several)
    lut_mult_luts: float  # LUTs of the LUT multipliers
    n_lut_ops: int
    col_nonzero: np.ndarray  # non-zero products per output
    weight_width: int


def _quantized_mantissas(weights: np.ndarray, precision: Any) -> np.ndarray:
    """Integer mantissas of the weights as hls4ml writes them (float -> ap_fixed cast)."""
    frac = _frac_bits(precision)
    scaled = np.asarray(weights, dtype=np.float64) * (2.0 ** frac)
    rounding = str(getattr(precision, "rounding_mode", "TRN")).upper()
    mant = np.round(scaled) if "RND" in rounding else np.floor(scaled + 1e-9)
    width = _width(precision)
    signed = bool(getattr(precision, "signed", True))
    lo, hi = (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (0, 2 ** width - 1)
    return np.clip(mant, lo, hi).astype(np.int64)


def _constant_products(weights: np.ndarray, precision: Any, in_width: int,
                       dev: _Device, profile: ToolProfile) -> _Products:
    w2d = np.asarray(weights).reshape(-1, np.asarray(weights).shape[-1]) if np.ndim(weights) > 1 \
        else np.asarray(weights).reshape(-1, 1)
    mant = _quantized_mantissas(w2d, precision)
    nz = mant != 0
    mag = np.abs(mant[nz])
    lowbit = mag & -mag
    odd = mag // lowbit
    shift = odd == 1
    # HLS trims a constant to its significant high bits (plus sign); only a power of two
    # becomes a shift (LLVM turns mul by 2^n into shl), other constants stay multipliers.
    const_bits = np.floor(np.log2(np.maximum(mag, 1))).astype(np.int64) + 2
    weight_width = _width(precision)
    if weight_width <= 2:  # binary / ternary weights: a select or negation, never a multiplier
        shift = np.ones_like(shift)
    dsp_mask = (~shift) & (in_width >= DSP_MIN_WIDE_BITS) & (const_bits >= profile.const_dsp_min_bits)
    lut_mask = (~shift) & (~dsp_mask)
    wide = np.maximum(const_bits[dsp_mask], in_width)
    narrow = np.minimum(const_bits[dsp_mask], in_width)
    dsp_units = int(np.sum(np.ceil(wide / dev.dsp_a) * np.ceil(narrow / dev.dsp_b)))
    lut_luts = float(profile.k_lut_mult * in_width * np.sum(const_bits[lut_mask]))
    return _Products(n_total=int(mant.size), n_nonzero=int(nz.sum()), n_shift=int(shift.sum()),
                     n_dsp_ops=int(dsp_mask.sum()), dsp_units=dsp_units, lut_mult_luts=lut_luts,
                     n_lut_ops=int(lut_mask.sum()), col_nonzero=nz.sum(axis=0),
                     weight_width=weight_width)


# --- per-layer models ----------------------------------------------------------------------------

@dataclass
class _Ctx:
    clock_ns: float
    clock_eff_ns: float
    io_type: str
    dev: _Device
    profile: ToolProfile


def _matmul(layer: Any, ctx: _Ctx, weights: np.ndarray, n_in: int, n_out: int, copies: int,
            iterations: int) -> LayerEstimate:
    """A constant-weight matrix product (Dense, or a conv kernel applied ``copies`` times in
    parallel, ``iterations`` times one after another)."""
    name, cls = layer.name, layer.class_name
    strategy = str(layer.get_attr("strategy", "latency")).lower()
    rf = int(layer.get_attr("reuse_factor", 1) or 1)
    in_prec = _in_precision(layer)
    in_w = _width(in_prec)
    w_prec = layer.get_weights("weight").type.precision
    acc_prec = _type_precision(layer, "accum_t") or _out_precision(layer)
    acc_w = _width(acc_prec)
    prod = _constant_products(weights, w_prec, in_w, ctx.dev, ctx.profile)
    # HLS trims adders to the bits the sum can actually reach
    add_w = min(acc_w, in_w + prod.weight_width + math.ceil(math.log2(n_in + 1)))
    est = LayerEstimate(name=name, cls=cls)

    # At reuse 1 the Resource strategy's weight ROM has a single word, which HLS folds into
    # constants: it then behaves like the Latency strategy (hls4ml's conv2d Resource baselines use
    # ~half as many DSPs as products, as constant folding predicts).
    if strategy in ("resource", "resource_unrolled", "compressed") and rf > 1:
        # Weights live in a ROM read every cycle: no constant folding, so every multiplier is a
        # full-width product and zeros are not removed. block_factor products per cycle.
        block = math.ceil(n_in * n_out / rf)
        dsp_each = _dsp_per_product(in_w, prod.weight_width, ctx.dev) \
            if _on_dsp_constant(in_w, prod.weight_width) else 0
        est.mults = block * copies
        est.DSP = dsp_each * block * copies
        lut_mult = 0 if dsp_each else ctx.profile.k_lut_mult * in_w * prod.weight_width * block
        mux = in_w * block * _mux_luts_per_bit(rf)  # input selection per multiplier
        rom_width = block * prod.weight_width  # the weights, reshaped to RF words of block weights
        if rf >= ROM_BRAM_MIN_DEPTH:
            est.BRAM_18K = copies * math.ceil(rom_width / BRAM18_MAX_WIDTH) * math.ceil(rf / 512)
            rom_luts = 0
        else:  # shallow ROM: distributed (a LUT6 holds 64 x 1 bit)
            rom_luts = rom_width * math.ceil(rf / 64)
        est.LUT = int(copies * (lut_mult + mux + rom_luts + block * add_w + n_out * add_w))
        # multiplier outputs, the accumulators held across the RF iterations and the input held
        # for them
        est.FF = int(copies * (K_FF * (block + n_out) * add_w + n_in * in_w))
        per_pass = rf + MULT_CYCLES + 2
        est.interval = rf * iterations
        est.cycles = per_pass + rf * (iterations - 1)
        return est

    # Latency strategy: all n_in*n_out products unrolled, II = reuse factor.
    slots = math.ceil(n_in * n_out / rf)  # the ALLOCATION limit the template sets (without zeros)
    n_mult_ops = prod.n_dsp_ops + prod.n_lut_ops
    if rf > 1 and n_mult_ops > slots:
        # HLS must share: a shared multiplier sees several weights through a multiplexer, so it
        # is a full-width product.
        dsp_each = _dsp_per_product(in_w, prod.weight_width, ctx.dev) \
            if _on_dsp_constant(in_w, prod.weight_width) else 0
        n_units = slots
        dsp = dsp_each * n_units
        lut_mult = 0.0 if dsp_each else ctx.profile.k_lut_mult * in_w * prod.weight_width * n_units
    else:
        # Each surviving product is its own constant multiplier (pruning pays off fully only here)
        n_units = n_mult_ops
        dsp = prod.dsp_units
        lut_mult = prod.lut_mult_luts
    # With II = RF every multiplier's operands pass an RF-way selection and its result is held
    # in a register per time slot (published reuse-2 designs: ~2x the FF per multiplier of
    # reuse 1, ~32 extra LUTs per 16x16 multiplier).
    mux = n_units * (in_w + prod.weight_width) * _mux_luts_per_bit(rf)
    n_adds = int(np.sum(prod.col_nonzero))  # bias initialises the accumulator
    registered = n_adds if rf == 1 else n_units * rf
    est.mults = n_units * copies
    est.DSP = int(dsp * copies)
    est.LUT = int(copies * (lut_mult + mux + n_adds * add_w))
    est.FF = int(copies * K_FF * (registered + n_out) * add_w)
    # Tree depth from the fan-in, not from the non-zero count: the published pruned designs are
    # not faster than the dense ones (docs/estimator.md).
    depth_cycles = MULT_CYCLES + _tree_cycles(n_in + 1, add_w, ctx.clock_eff_ns)
    est.cycles = depth_cycles + (rf - 1) + rf * (iterations - 1)
    est.interval = rf * iterations
    return est


def _da_layer(layer: Any, ctx: _Ctx, est: LayerEstimate, n_in: int, n_out: int, copies: int,
              iterations: int) -> LayerEstimate:
    """Distributed arithmetic (hls4ml + da4ml): an adder graph, 0 DSP, LUTs from da4ml's cost."""
    from trigger.firmware import da

    figures = da.layer_figures(layer, ctx.clock_eff_ns)
    est.mults = 0
    est.DSP = 0
    est.LUT = int(figures["LUT"] * copies)
    est.FF = int(figures["FF"] * copies)
    est.cycles = int(figures["cycles"]) + (iterations - 1)
    est.interval = iterations
    if figures.get("warning"):
        est.warning = figures["warning"]
    return est


def _is_da(layer: Any) -> bool:
    return str(layer.get_attr("strategy", "")).lower() == "distributed_arithmetic"


def _dense(layer: Any, ctx: _Ctx) -> LayerEstimate:
    n_in = int(layer.get_attr("n_in"))
    n_out = int(layer.get_attr("n_out"))
    if _is_da(layer):  # hls4ml's DA pass has replaced the weights by an adder graph
        est = _da_layer(layer, ctx, LayerEstimate(name=layer.name, cls=layer.class_name),
                        n_in, n_out, copies=1, iterations=1)
        if ctx.io_type == "io_stream":
            est.cycles += 1
        return est
    weights = layer.get_weights("weight").data
    weights = np.asarray(weights).reshape(n_in, n_out)
    est = _matmul(layer, ctx, weights, n_in, n_out, copies=1, iterations=1)
    if ctx.io_type == "io_stream":
        est.cycles += 1  # read and write of the packed stream words
    return est


def _conv(layer: Any, ctx: _Ctx) -> LayerEstimate:
    n_filt = int(layer.get_attr("n_filt"))
    out_h = int(layer.get_attr("out_height", 1) or 1)
    out_w = int(layer.get_attr("out_width", 1) or 1)
    n_pixels_total = out_h * out_w
    if _is_da(layer):
        n_partitions = int(layer.get_attr("n_partitions", n_pixels_total) or n_pixels_total)
        if ctx.io_type == "io_stream":
            n_partitions = int(layer.get_attr("in_height", 1) or 1) * int(layer.get_attr("in_width", 1) or 1)
        n_pixels = 1 if ctx.io_type == "io_stream" else max(1, n_pixels_total // max(1, n_partitions))
        est = _da_layer(layer, ctx, LayerEstimate(name=layer.name, cls=layer.class_name),
                        0, n_filt, copies=n_pixels, iterations=n_partitions)
        if ctx.io_type == "io_stream":
            est.stream_cycles = n_partitions
        return est
    weights = np.asarray(layer.get_weights("weight").data)
    kernel = weights.reshape(-1, n_filt)
    n_in = kernel.shape[0]
    if ctx.io_type == "io_stream":
        # One kernel product per output pixel through the line buffer, II = reuse factor.
        in_h = int(layer.get_attr("in_height", 1) or 1)
        in_w = int(layer.get_attr("in_width", 1) or 1)
        est = _matmul(layer, ctx, kernel, n_in, n_filt, copies=1, iterations=1)
        rf = int(layer.get_attr("reuse_factor", 1) or 1)
        beats = in_h * in_w
        est.stream_cycles = beats * rf
        est.interval = beats * rf
        est.cycles = est.cycles + beats * rf
        # line buffer: (filter height - 1) rows of the input kept in shift registers / BRAM
        filt_h = int(layer.get_attr("filt_height", 1) or 1)
        n_chan = int(layer.get_attr("n_chan", 1) or 1)
        in_prec_w = _width(_in_precision(layer))
        # line buffer: (filter height - 1) rows of the input in ap_shift_reg, i.e. SRL32 LUTs,
        # plus the filter window in registers
        lb_bits = (filt_h - 1) * in_w * n_chan * in_prec_w
        est.LUT += math.ceil(lb_bits / 32)
        est.FF += filt_h * (int(layer.get_attr("filt_width", 1) or 1)) * n_chan * in_prec_w
        return est
    n_partitions = int(layer.get_attr("n_partitions", n_pixels_total) or n_pixels_total)
    n_pixels = max(1, n_pixels_total // max(1, n_partitions))
    est = _matmul(layer, ctx, kernel, n_in, n_filt, copies=n_pixels, iterations=n_partitions)
    est.cycles += 1  # fill_buffer (im2col) stage
    return est


def _activation(layer: Any, ctx: _Ctx) -> LayerEstimate:
    name, cls = layer.name, layer.class_name
    act = str(layer.get_attr("activation", cls)).lower()
    n = _parallel_size(layer, ctx)
    in_w = _width(_in_precision(layer))
    out_w = _width(_out_precision(layer))
    rf = int(layer.get_attr("reuse_factor", 1) or 1)
    est = LayerEstimate(name=name, cls=cls)
    if act in ("linear",):
        return est
    if act in ("relu", "relu6", "hard_sigmoid", "hard_tanh", "binary_tanh", "ternary_tanh",
               "leaky_relu", "thresholdedrelu", "prelu", "hardsigmoid"):
        # a comparison and a select per element, merged into the neighbouring pipeline stage
        est.LUT = n * max(in_w, out_w)
        if act in ("leaky_relu", "prelu"):
            est.LUT += n * in_w  # constant product by alpha in LUTs
            est.cycles = 1
            est.FF = n * out_w
        return est
    if cls == "Softmax" or act == "softmax":
        return _softmax(layer, ctx, est, n, in_w, rf)
    # table activations: sigmoid, tanh, elu, selu, softplus, softsign, ...
    table_size = int(layer.get_attr("table_size", 1024) or 1024)
    table_w = _width(_type_precision(layer, "table_t"), 18)
    table_bits = table_size * table_w
    if table_bits >= ROM_BRAM_MIN_BITS:
        copies = math.ceil(n / (2 * rf))  # dual-port ROM: two lookups per cycle per copy
        est.BRAM_18K = copies * math.ceil(table_bits / BRAM18_BITS)
    else:
        est.LUT += n * table_bits // 64
    est.LUT += n * (in_w + out_w)  # index computation and clamp
    est.FF = n * out_w
    est.cycles = 2
    est.interval = rf
    return est


def _softmax(layer: Any, ctx: _Ctx, est: LayerEstimate, n: int, in_w: int, rf: int) -> LayerEstimate:
    impl = str(layer.get_attr("implementation", "stable")).lower()
    exp_w = _width(_type_precision(layer, "exp_table_t"), 18)
    inv_w = _width(_type_precision(layer, "inv_table_t"), 18)
    acc_w = _width(_type_precision(layer, "accum_t"), 18)
    exp_size = int(layer.get_attr("exp_table_size", layer.get_attr("table_size", 1024)) or 1024)
    inv_size = int(layer.get_attr("inv_table_size", layer.get_attr("table_size", 1024)) or 1024)
    if impl.startswith("argmax"):
        est.LUT = n * in_w * 2
        est.cycles = 1
        return est
    # n products exp(x_i) * 1/sum, on DSPs; the exp table is read n times per input (two reads
    # per block-RAM copy and cycle, RF cycles available), the inverse table once.
    est.mults = n
    est.DSP = n * _dsp_per_product(exp_w, inv_w, ctx.dev)
    exp_bits, inv_bits = exp_size * exp_w, inv_size * inv_w
    est.BRAM_18K = math.ceil(n / (2 * rf)) * math.ceil(exp_bits / BRAM18_BITS) + math.ceil(inv_bits / BRAM18_BITS)
    est.LUT = n * (in_w + acc_w + exp_w) + (n * in_w * 2 if impl == "stable" else 0)
    est.FF = int(K_FF * n * (exp_w + acc_w + in_w) * SOFTMAX_CYCLES.get(impl, 3))
    # nothing is shared in the softmax (the published reuse-2 designs keep its 5 DSPs), so a
    # larger II does not lengthen it
    est.cycles = SOFTMAX_CYCLES.get(impl, 3)
    est.interval = rf
    return est


def _batchnorm(layer: Any, ctx: _Ctx) -> LayerEstimate:
    n = _parallel_size(layer, ctx)
    in_w = _width(_in_precision(layer))
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    scale = layer.get_weights("scale")
    n_chan = int(np.asarray(scale.data).size)
    prod = _constant_products(np.asarray(scale.data).reshape(1, -1), scale.type.precision, in_w, ctx.dev,
                              ctx.profile)
    reps = max(1, n // max(1, n_chan))
    est.mults = (prod.n_dsp_ops + prod.n_lut_ops) * reps
    est.DSP = prod.dsp_units * reps
    out_w = _width(_out_precision(layer))
    est.LUT = int(reps * prod.lut_mult_luts + n * out_w)
    est.FF = n * out_w
    est.cycles = MULT_CYCLES + 1
    return est


def _merge(layer: Any, ctx: _Ctx) -> LayerEstimate:
    op = str(layer.get_attr("op", layer.class_name)).lower()
    n = _parallel_size(layer, ctx)
    w_a = _width(_in_precision(layer, 0))
    w_b = _width(_in_precision(layer, 1))
    out_w = _width(_out_precision(layer))
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    if op in ("multiply", "dot"):
        per = n if op == "multiply" else int(np.prod(layer.get_input_variable().shape))
        est.mults = per
        if _on_dsp(w_a, w_b):
            est.DSP = per * _dsp_per_product(w_a, w_b, ctx.dev)
        else:
            est.LUT += int(per * ctx.profile.k_lut_mult * w_a * w_b)
        if op == "dot":
            est.LUT += per * out_w
            est.cycles = MULT_CYCLES + _tree_cycles(per, out_w, ctx.clock_eff_ns)
        else:
            est.cycles = MULT_CYCLES
        est.FF = n * out_w
        return est
    # add, subtract, average, maximum, minimum: one adder/comparator per element
    est.LUT = n * max(w_a, w_b, out_w) * (2 if op in ("maximum", "minimum") else 1)
    est.FF = n * out_w
    est.cycles = 1
    return est


def _pooling(layer: Any, ctx: _Ctx) -> LayerEstimate:
    cls = layer.class_name
    est = LayerEstimate(name=layer.name, cls=cls)
    in_shape = _in_shape(layer)
    n_chan = in_shape[-1] if len(in_shape) > 1 else 1
    n_out = _out_size(layer)
    n_in = int(np.prod(in_shape))
    in_pixels = max(1, n_in // max(1, n_chan))
    in_w = _width(_in_precision(layer))
    out_w = _width(_out_precision(layer))
    pool_op = str(layer.get_attr("pool_op", "Max")).lower()
    is_global = cls.startswith("Global")
    window = in_pixels if is_global else \
        int(layer.get_attr("pool_height", 1) or 1) * int(layer.get_attr("pool_width", 1) or 1)
    grow = math.ceil(math.log2(window)) if window > 1 else 0
    stream = ctx.io_type == "io_stream"
    # io_parallel: every output at once; io_stream: one pixel's channels per cycle
    n_par = n_chan if stream else n_out
    ops = n_par * (1 if stream and is_global else max(0, window - 1))
    if pool_op == "average":
        est.LUT = ops * (in_w + grow)
        if window & (window - 1):  # not a power of two: product by the reciprocal constant
            if _on_dsp_constant(in_w + grow, out_w):
                est.DSP = n_par * _dsp_per_product(in_w + grow, out_w, ctx.dev)
                est.mults = n_par
            else:
                est.LUT += int(n_par * ctx.profile.k_lut_mult * (in_w + grow) * 4)
    else:
        est.LUT = ops * in_w * 2  # comparator + select
    est.FF = n_par * out_w
    tree = 1 if stream else _tree_cycles(window, in_w + grow, ctx.clock_eff_ns)
    est.cycles = max(1, tree + (MULT_CYCLES if est.DSP else 0))
    if stream:
        if not is_global and len(in_shape) > 2:
            # line buffer of (pool height - 1) input rows in shift registers
            pool_h = int(layer.get_attr("pool_height", 1) or 1)
            est.LUT += math.ceil((pool_h - 1) * in_shape[-2] * n_chan * in_w / 32)
        est.stream_cycles = in_pixels
        est.interval = in_pixels
        est.cycles += in_pixels
    return est


def _zero_padding(layer: Any, ctx: _Ctx) -> LayerEstimate:
    est = LayerEstimate(name=layer.name, cls=layer.class_name)
    if ctx.io_type == "io_stream":
        n_out = _out_size(layer)
        n_chan = int(layer.get_attr("n_chan", 1) or 1)
        beats = max(1, n_out // n_chan)
        est.stream_cycles = beats
        est.interval = beats
        est.cycles = beats + 1
        est.LUT = 50
    return est


_HANDLERS: dict[str, Callable[[Any, _Ctx], LayerEstimate]] = {
    "Dense": _dense,
    "Conv1D": _conv, "Conv2D": _conv, "Conv2DBatchnorm": _conv, "PointwiseConv1D": _conv,
    "PointwiseConv2D": _conv,
    "Activation": _activation, "ParametrizedActivation": _activation, "HardActivation": _activation,
    "PReLU": _activation, "Softmax": _activation, "TernaryTanh": _activation,
    "BatchNormalization": _batchnorm, "ApplyAlpha": _batchnorm,
    "Merge": _merge, "Dot": _merge,
    "Pooling1D": _pooling, "Pooling2D": _pooling, "GlobalPooling1D": _pooling,
    "GlobalPooling2D": _pooling,
    "ZeroPadding1D": _zero_padding, "ZeroPadding2D": _zero_padding,
}


_ELEMENTWISE = (_activation, _merge, _batchnorm)


#: Subclasses of handled layers whose hardware differs; listed so they warn instead of being
#: estimated as their base class.
NOT_MODELLED = ("Depthwise", "Separable", "Einsum", "GarNet", "LayerNormalization", "Embedding",
                "SimpleRNN", "LSTM", "GRU", "TimeDistributed", "Bidirectional")


def _handler_for(layer: Any) -> Callable[[Any, _Ctx], LayerEstimate] | None:
    names = [k.__name__ for k in type(layer).__mro__[:1]] + [getattr(layer, "class_name", "")]
    if any(word in name for name in names for word in NOT_MODELLED) or _is_free(layer):
        return None  # estimate_model lists free layers at zero cost, the rest with a warning
    for klass in type(layer).__mro__:
        handler = _HANDLERS.get(klass.__name__)
        if handler is not None:
            return handler
    return _HANDLERS.get(getattr(layer, "class_name", ""))


def _is_free(layer: Any) -> bool:
    names = {k.__name__ for k in type(layer).__mro__} | {getattr(layer, "class_name", "")}
    return bool(names & FREE_CLASSES)


def _parse_uncertainty(value: Any, period: float) -> float:
    """hls4ml's ClockUncertainty: '12.5%' of the period or an absolute value in ns."""
    if value is None:
        return 0.125 * period
    text = str(value).strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100.0 * period
    try:
        return float(text)
    except ValueError:
        return 0.125 * period


def estimate_model(hls_model: Any, profile: str = DEFAULT_PROFILE) -> Estimate:
    """Estimate latency and resources of a converted hls4ml model (no compile, no vendor tool).

    Reads strategy, reuse factor, IO type, clock period, precisions and weights from the graph and
    its config. Layers the model does not know are listed with zero cost and a ``warning``.
    ``profile`` names the HLS tool generation whose DSP/LUT mapping is modelled (:data:`PROFILES`:
    ``"modern"`` for Vivado HLS >= 2020.1 and Vitis HLS, the default; ``"vivado2019"`` for
    Vivado HLS 2019.2, which the published jet-MLP reports come from).
    """
    if profile not in PROFILES:
        raise TriggerError(f"unknown estimator profile {profile!r}; choose one of {sorted(PROFILES)}")
    config = hls_model.config
    period = float(config.get_config_value("ClockPeriod") or 5)
    uncertainty = _parse_uncertainty(config.get_config_value("ClockUncertainty"), period)
    io_type = str(config.get_config_value("IOType") or "io_parallel")
    ctx = _Ctx(clock_ns=period, clock_eff_ns=max(0.5, period - uncertainty), io_type=io_type,
               dev=_device(str(config.get_config_value("Part") or "")), profile=PROFILES[profile])
    layers: list[LayerEstimate] = []
    for layer in hls_model.get_layers():
        handler = _handler_for(layer)
        if handler is not None:
            try:
                est = handler(layer, ctx)
                if io_type == "io_stream" and handler in _ELEMENTWISE and est.stream_cycles == 0:
                    # one packed pixel per cycle through the stream
                    shape = [int(s) for s in _out_var(layer).shape]
                    beats = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                    est.stream_cycles = beats
                    est.interval = max(est.interval, beats)
                    est.cycles += beats
                layers.append(est)
                continue
            except (KeyError, AttributeError, TypeError, ValueError) as err:
                if _is_free(layer):
                    layers.append(LayerEstimate(name=layer.name, cls=layer.class_name))
                    continue
                layers.append(LayerEstimate(
                    name=layer.name, cls=layer.class_name,
                    warning=f"not estimated ({type(err).__name__}: {err}); counted as zero cost"))
                continue
        if _is_free(layer):
            layers.append(LayerEstimate(name=layer.name, cls=layer.class_name))
        else:
            layers.append(LayerEstimate(
                name=layer.name, cls=layer.class_name,
                warning=f"layer class {layer.class_name} is not modelled; counted as zero cost"))
    if io_type == "io_stream":
        # dataflow: layers overlap; the longest stream dominates, the others add their depth
        depths = [max(0, lay.cycles - lay.stream_cycles) for lay in layers]
        longest = max((lay.stream_cycles for lay in layers), default=0)
        total = sum(depths) + longest
        interval = max((lay.interval for lay in layers), default=1)
        # FIFOs between layers
        _add_fifos(hls_model, layers)
    else:
        total = sum(lay.cycles for lay in layers)
        interval = max((lay.interval for lay in layers), default=1)
    return Estimate(clock_ns=period, io_type=io_type, min_cycles=int(total), max_cycles=int(total),
                    interval=int(max(1, interval)), layers=layers,
                    method=f"{METHOD_NAME}, profile {profile} (docs/estimator.md)")


def _bram18_for(depth: int, width: int) -> int:
    """Block RAM 18K count of a depth x width memory (aspect ratios 16K x 1 ... 512 x 36)."""
    modes = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
    return min(math.ceil(width / mode_w) * math.ceil(depth / mode_d) for mode_d, mode_w in modes)


def _add_fifos(hls_model: Any, layers: list[LayerEstimate]) -> None:
    """Charge the inter-layer stream FIFOs of io_stream to the layer that writes them."""
    backend = str(hls_model.config.get_config_value("Backend") or "Vivado").lower()
    packed = backend.startswith("vitis")
    by_name = {lay.name: lay for lay in layers}
    for layer in hls_model.get_layers():
        est = by_name.get(layer.name)
        if est is None or _is_free(layer):
            continue
        try:
            var = layer.get_output_variable()
        except Exception:  # noqa: BLE001 - layers without outputs have no FIFO
            continue
        shape = [int(v) for v in var.shape]
        n_chan = shape[-1] if shape else 1
        pragma = getattr(var, "pragma", None)  # ('stream', depth) on hls4ml stream variables
        if isinstance(pragma, tuple) and len(pragma) > 1 and pragma[1]:
            depth = int(pragma[1])
        else:
            depth = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        width = _width(var.type.precision)
        # Vivado HLS splits the nnet::array of a stream into one FIFO per channel (the published
        # 2020.1 reports list layerN_out_V_data_<c>_V FIFOs); Vitis HLS keeps one packed FIFO.
        fifos, fifo_width = (1, n_chan * width) if packed else (n_chan, width)
        if depth >= FIFO_BRAM_MIN_DEPTH:
            est.BRAM_18K += fifos * _bram18_for(depth, fifo_width)
        else:  # shift-register FIFO: SRL32 LUTs
            est.LUT += fifos * fifo_width * math.ceil(depth / 32)
            est.FF += fifos * fifo_width
