"""Clock and adder-delay model: how many adder levels fit in a cycle.

Shared by the layer handlers of this package and by :mod:`trigger.firmware.da` (which packs
da4ml's adder levels into cycles with the same model). It imports nothing from the rest of the
estimator, so ``da`` can use it without loading the layer handlers (which import ``da``).
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
#: Flip-flops per adder bit of the products' accumulation (pipeline registers between the adder
#: stages and the layer output). Fitted on the FF total of the published ap_fixed<16,6> reuse-1 MLP.
K_FF = 0.7
#: hls4ml's default ClockUncertainty, as a fraction of the period.
DEFAULT_UNCERTAINTY = 0.125
#: The effective clock (period minus uncertainty) is never taken below this (ns).
MIN_CLOCK_EFF_NS = 0.5


def adds_per_cycle(width: int, clock_eff_ns: float) -> int:
    """Adder levels of ``width`` bits that fit in one cycle of ``clock_eff_ns`` (at least one)."""
    return max(1, int(clock_eff_ns // (T_ADD_BASE_NS + T_ADD_PER_BIT_NS * width)))


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
