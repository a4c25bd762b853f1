"""What the arithmetic and memories of a layer map to: DSP, LUT or block RAM.

The constant-product analysis follows what HLS makes of hls4ml's unrolled products of
compile-time constant weights: zeros vanish, powers of two become shifts, the remaining constants
are trimmed to their significant bits and go to a DSP or a LUT multiplier by the rule of the
:class:`ToolProfile`. Evidence for each constant is stated where it is defined and in
``docs/estimator.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from trigger.firmware.precision import bit_width, fraction_bits

#: HLS puts a constant product on a DSP only when the variable operand has at least
#: DSP_MIN_WIDE_BITS bits and the constant enough significant bits (``ToolProfile``); otherwise it
#: builds a LUT multiplier (a narrow variable times a constant is a small table). Evidence:
#: QKeras jet MLP: 6-bit activations x 6-bit weights in LUTs; QKeras SVHN CNN: 6-bit activations x
#: 16-bit output-layer weights mostly in LUTs. A product of two variables (Merge Multiply) needs
#: both operands above LUT_NARROW_BITS and one of at least DSP_MIN_WIDE_BITS.
DSP_MIN_WIDE_BITS = 10
LUT_NARROW_BITS = 3
#: Block RAM 18K geometry; table ROMs smaller than ROM_BRAM_MIN_BITS and Resource-strategy weight
#: ROMs shallower than ROM_BRAM_MIN_DEPTH words stay in LUTs (assumption, not calibrated).
BRAM18_BITS = 18 * 1024
BRAM18_MAX_WIDTH = 36
ROM_BRAM_MIN_BITS = 1024
ROM_BRAM_MIN_DEPTH = 32
#: A stream FIFO shallower than this is a shift register in LUTs, deeper ones use block RAM.
FIFO_BRAM_MIN_DEPTH = 33


@dataclass(frozen=True)
class ToolProfile:
    """What differs between HLS tool generations in which constant products become DSPs.

    A constant product (variable of ``v`` bits x constant) gets a DSP when ``v >= DSP_MIN_WIDE_BITS``
    and the constant passes the wide-variable test (``const_dsp_min_bits`` significant bits, or
    ``const_dsp_min_csd`` non-zero canonical-signed-digit digits), or when ``v > LUT_NARROW_BITS``
    and the constant has at least ``narrow_dsp_min_csd`` CSD digits. A zero threshold disables the
    test. The LUTs of a LUT multiplier per (variable bit x constant bit) are a fitted constant of
    the calibration (:mod:`.calibration`, ``lut_per_mult_bit`` per profile).
    """

    name: str
    const_dsp_min_bits: int
    const_dsp_min_csd: int
    narrow_dsp_min_csd: int
    evidence: str


PROFILES = {
    # Vivado HLS 2019.2: the four published hls4ml-tutorial jet-MLP reports. 16-bit inputs x 6-bit
    # weights are on DSPs (QKeras design: 216 DSP for its 211 non-trivial 16-bit x 6-bit products;
    # a CSD rule would give 72), 6-bit inputs x 6-bit weights in LUTs: bit length >= 4.
    "vivado2019": ToolProfile("vivado2019", 4, 0, 0, "Vivado HLS 2019.2, hls4ml-tutorial jet MLP (4 reports)"),
    # Vivado HLS 2020.1 and Vitis HLS: a 16-bit input x constant product is a DSP when the constant
    # has >= 3 non-zero CSD digits (a shift-and-add of <= 2 terms is cheaper in LUTs): conv2d
    # baselines 829 predicted for 740 / 792 DSP (bit length >= 7: 800), SVHN CNN 5,957 for 5,414
    # (bit length: 6,944), dnd MLP 16-bit x 6-bit weights 0 for 0. A narrow (4-9 bit) input gets
    # a DSP only for constants of >= 4 CSD digits: QKeras SVHN CNN 6-bit x 16-bit output layer
    # (the estimate then gives 289 DSP for 340; with the >= 10-bit rule alone 50).
    "modern": ToolProfile("modern", 0, 3, 4, "Vivado HLS 2020.1 / Vitis HLS, hls4ml baselines, SVHN CNNs, dnd MLP"),
}
DEFAULT_PROFILE = "modern"


@dataclass
class Device:
    """DSP port widths of the target part."""

    dsp_a: int  # wide DSP port (27 on DSP48E2, 25 on DSP48E1)
    dsp_b: int  # narrow DSP port (18)


def device(part: str) -> Device:
    """DSP geometry of a part name: DSP48E1 on 7-series, DSP48E2 otherwise."""
    part = (part or "").lower()
    if part.startswith("xc7") or part.startswith("xa7") or part.startswith("xq7"):
        return Device(25, 18)
    return Device(27, 18)


def dsp_per_product(width_a: int, width_b: int, dev: Device) -> int:
    """DSPs of one full-width product (a product wider than the DSP ports takes several)."""
    wide, narrow = max(width_a, width_b), min(width_a, width_b)
    return math.ceil(wide / dev.dsp_a) * math.ceil(narrow / dev.dsp_b)


def on_dsp(width_a: int, width_b: int) -> bool:
    """Product of two variables: DSP unless narrow."""
    return max(width_a, width_b) >= DSP_MIN_WIDE_BITS and min(width_a, width_b) > LUT_NARROW_BITS


def on_dsp_constant(var_width: int, weight_width: int) -> bool:
    """Product of a variable and a non-constant weight operand (shared multiplier or ROM):
    DSP only for a wide variable."""
    return var_width >= DSP_MIN_WIDE_BITS and weight_width > LUT_NARROW_BITS


def mux_luts_per_bit(ways: int) -> float:
    """LUT6s per bit of a ``ways``-input multiplexer: a LUT6 is a 4:1 mux, and a dual-output
    LUT6_2 holds two 2:1 muxes sharing their select (0.5 per bit)."""
    if ways <= 1:
        return 0.0
    return 0.5 if ways == 2 else float(math.ceil((ways - 1) / 3))


def bram18_for(depth: int, width: int) -> int:
    """Block RAM 18K count of a depth x width memory (aspect ratios 16K x 1 ... 512 x 36)."""
    modes = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
    return min(math.ceil(width / mode_w) * math.ceil(depth / mode_d) for mode_d, mode_w in modes)


@dataclass
class Products:
    """What the non-zero constant products of a weight matrix turn into."""

    n_total: int  # all weight positions (the slots the reuse factor divides)
    n_nonzero: int
    n_shift: int  # powers of two: wiring, no multiplier
    n_dsp_ops: int  # products that get a DSP
    dsp_units: int  # DSPs for those (wide products take several)
    lut_mult_bits: float  # variable bits x constant bits of the LUT multipliers (LUT = calibrated factor x this)
    n_lut_ops: int
    col_nonzero: np.ndarray  # non-zero products per output
    weight_width: int


def quantized_mantissas(weights: np.ndarray, precision: Any) -> np.ndarray:
    """Integer mantissas of the weights as hls4ml writes them (float -> ap_fixed cast)."""
    scaled = np.asarray(weights, dtype=np.float64) * (2.0 ** fraction_bits(precision))
    rounding = str(getattr(precision, "rounding_mode", "TRN")).upper()
    mant = np.round(scaled) if "RND" in rounding else np.floor(scaled + 1e-9)
    width = bit_width(precision) or 16  # the estimator counts an untyped weight as 16 bits
    signed = bool(getattr(precision, "signed", True))
    lo, hi = (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (0, 2 ** width - 1)
    return np.clip(mant, lo, hi).astype(np.int64)


def csd_digits(magnitudes: np.ndarray) -> np.ndarray:
    """Non-zero digits of each magnitude in canonical signed-digit form (e.g. 7 = 8 - 1: 2)."""
    rest = np.abs(np.asarray(magnitudes, dtype=np.int64))
    count = np.zeros_like(rest)
    while np.any(rest):
        odd = (rest & 1) == 1
        digit = np.where(odd, 2 - (rest & 3), 0)  # +1 when rest = 1 mod 4, -1 when 3 mod 4
        count += odd
        rest = (rest - digit) >> 1
    return count


def dsp_rule(in_width: int, const_bits: np.ndarray, csd: np.ndarray, profile: ToolProfile) -> np.ndarray:
    """Which constant products (of an ``in_width``-bit variable) the profile puts on a DSP."""
    wide = in_width >= DSP_MIN_WIDE_BITS
    by_bits = const_bits >= profile.const_dsp_min_bits if profile.const_dsp_min_bits else np.zeros_like(csd, bool)
    by_csd = csd >= profile.const_dsp_min_csd if profile.const_dsp_min_csd else np.zeros_like(csd, bool)
    narrow = csd >= profile.narrow_dsp_min_csd if profile.narrow_dsp_min_csd else np.zeros_like(csd, bool)
    return (wide & (by_bits | by_csd)) | ((in_width > LUT_NARROW_BITS) & narrow)


def constant_products(weights: np.ndarray, precision: Any, in_width: int,
                      dev: Device, profile: ToolProfile) -> Products:
    """Classify the products of a constant weight matrix (last axis = outputs) by what HLS
    builds for them: nothing (zero), a shift (power of two), a DSP or a LUT multiplier."""
    w2d = np.asarray(weights).reshape(-1, np.asarray(weights).shape[-1]) if np.ndim(weights) > 1 \
        else np.asarray(weights).reshape(-1, 1)
    mant = quantized_mantissas(w2d, precision)
    nz = mant != 0
    mag = np.abs(mant[nz])
    lowbit = mag & -mag
    odd = mag // lowbit
    shift = odd == 1
    # HLS trims a constant to its significant high bits (plus sign); only a power of two
    # becomes a shift (LLVM turns mul by 2^n into shl), other constants stay multipliers.
    const_bits = np.floor(np.log2(np.maximum(mag, 1))).astype(np.int64) + 2
    weight_width = bit_width(precision) or 16
    if weight_width <= 2:  # binary / ternary weights: a select or negation, never a multiplier
        shift = np.ones_like(shift)
    csd = csd_digits(mag)
    dsp_mask = (~shift) & dsp_rule(in_width, const_bits, csd, profile)
    lut_mask = (~shift) & (~dsp_mask)
    wide = np.maximum(const_bits[dsp_mask], in_width)
    narrow = np.minimum(const_bits[dsp_mask], in_width)
    dsp_units = int(np.sum(np.ceil(wide / dev.dsp_a) * np.ceil(narrow / dev.dsp_b)))
    lut_bits = float(in_width * np.sum(const_bits[lut_mask]))
    return Products(n_total=int(mant.size), n_nonzero=int(nz.sum()), n_shift=int(shift.sum()),
                    n_dsp_ops=int(dsp_mask.sum()), dsp_units=dsp_units, lut_mult_bits=lut_bits,
                    n_lut_ops=int(lut_mask.sum()), col_nonzero=nz.sum(axis=0),
                    weight_width=weight_width)
