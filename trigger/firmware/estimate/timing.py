"""Clock and adder-delay model: how many adder levels fit in a cycle.

Shared by the layer handlers of this package and by :mod:`.da` (which packs da4ml's adder levels
into cycles with the same model).
"""

from __future__ import annotations

import math
from typing import Any

#: An adder of w bits takes T_ADD_BASE_NS + T_ADD_PER_BIT_NS * w (routing + carry chain); with the
#: 5 ns clock and 12.5 % uncertainty this packs 5 levels of 16-bit adders per cycle. Chosen so that
#: the published ap_fixed<16,6> reuse-1 jet MLP (13 cycles) is met; not refitted per design.
T_ADD_BASE_NS = 0.5
T_ADD_PER_BIT_NS = 0.02
#: Cycles of the product stage (DSP with its output register, or a registered LUT multiplier).
MULT_CYCLES = 1
#: Combinational delay of a constant product (DSP48 without its pipeline registers, or a LUT
#: multiplier), ns. Assumption, checked against hls4ml's baselines: a Dense layer with one input
#: (product + bias, 2.5 + 0.82 ns) is reported with 0 cycles at 5 ns (relu/leaky_relu/prelu
#: designs, Vivado HLS 2020.1 and Vitis HLS 2023.1/2024.1), so it must fit in 4.375 ns.
T_MULT_NS = 2.5
#: Flip-flops per adder bit of a pipelined accumulation, used by da4ml's FF estimate
#: (trigger.firmware.estimate.da) and the softmax. Fitted in v1 on the FF total of the published
#: ap_fixed<16,6> reuse-1 jet MLP; the Dense/Conv rules use the calibration's fitted
#: ``ff_per_adder_bit`` instead (docs/estimator.md).
K_FF = 0.7
#: hls4ml's default ClockUncertainty, as a fraction of the period.
DEFAULT_UNCERTAINTY = 0.125
#: The effective clock (period minus uncertainty) is never taken below this (ns).
MIN_CLOCK_EFF_NS = 0.5


def adds_per_cycle(width: int, clock_eff_ns: float) -> int:
    """Adder levels of ``width`` bits that fit in one cycle of ``clock_eff_ns`` (at least one)."""
    return max(1, int(clock_eff_ns // adder_delay_ns(width)))


def adder_delay_ns(width: int) -> float:
    """Delay of one adder level of ``width`` bits (routing + carry chain)."""
    return T_ADD_BASE_NS + T_ADD_PER_BIT_NS * width


def fits_in_one_cycle(n_terms: int, width: int, clock_eff_ns: float, product: bool) -> bool:
    """True when a (product and) adder tree of ``n_terms`` fits in one cycle: HLS then chains it
    combinationally with its neighbours and the layer adds no cycle and no register (hls4ml
    baselines: Dense with one input + ReLU, 0 cycles and 18 FF; pooling over 2 or 4 values, 0
    cycles)."""
    depth = math.ceil(math.log2(n_terms)) if n_terms > 1 else 0
    return (T_MULT_NS if product else 0.0) + depth * adder_delay_ns(width) <= clock_eff_ns


def tree_cycles(n_terms: int, width: int, clock_eff_ns: float) -> int:
    """Cycles of a balanced adder tree summing ``n_terms`` values of ``width`` bits."""
    if n_terms <= 1:
        return 0
    depth = math.ceil(math.log2(n_terms))
    return math.ceil(depth / adds_per_cycle(width, clock_eff_ns))


def parse_uncertainty(value: Any, period: float) -> float:
    """hls4ml's ClockUncertainty: '12.5%' of the period or an absolute value in ns."""
    if value is None:
        return DEFAULT_UNCERTAINTY * period
    text = str(value).strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100.0 * period
    try:
        return float(text)
    except ValueError:  # unreadable setting: hls4ml's default rather than a crash
        return DEFAULT_UNCERTAINTY * period


def effective_clock_ns(period: float, uncertainty: float) -> float:
    """The part of the period adders may use: period minus uncertainty, floored."""
    return max(MIN_CLOCK_EFF_NS, period - uncertainty)
