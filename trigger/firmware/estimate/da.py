"""Distributed-arithmetic (DA) figures from da4ml, as hls4ml 1.3.0 uses it.

With ``Strategy='distributed_arithmetic'`` (reuse factor 1) hls4ml's
``vivado:distributed_arithmetic_codegen`` pass runs da4ml at conversion time: each Dense/Conv kernel
becomes a constant-matrix-vector adder graph (no multipliers, 0 DSP). The pass stores da4ml's own
cost of the graph in the layer attribute ``da_kernel_cost`` (with ``HWConfig(1, -1, -1)`` that is
the summed bit width of all adders, i.e. LUTs on a Xilinx carry chain) and writes the graph as
C++ with each operation's adder depth in a trailing ``// <latency>`` comment. We read both.

da4ml is an optional extra (``pip install -e '.[da]'``); it needs numba, whose first use in a fresh
environment compiles for minutes (later calls take seconds; docs/estimator.md has the timings).
"""

from __future__ import annotations

import math
import re
from typing import Any

from trigger.firmware.estimate.timing import K_FF, adds_per_cycle

_LATENCY_COMMENT = re.compile(r"//\s*([0-9]+(?:\.[0-9]+)?)\s*$")
#: Adder bit width at which da4ml charges one LUT per bit (the cost unit with HWConfig(1, -1, -1)).
LUT_PER_COST_UNIT = 1.0


def graph_stats(source: str) -> tuple[int, float]:
    """Number of adder operations and the deepest adder level in da4ml's generated C++."""
    n_ops, depth = 0, 0.0
    for line in source.splitlines():
        match = _LATENCY_COMMENT.search(line)
        if match:
            n_ops += 1
            depth = max(depth, float(match.group(1)))
    return n_ops, depth


def layer_figures(layer: Any, clock_eff_ns: float) -> dict:
    """LUT, FF and cycles of one DA layer from the attributes hls4ml's DA pass left on it.

    ``clock_eff_ns`` is the clock period minus its uncertainty; the adder levels are packed into
    cycles with the same adder delay model as the rest of the estimator.
    """
    cost = layer.get_attr("da_kernel_cost")
    source = layer.get_attr("da_codegen")
    if cost is None or source is None:
        return {"LUT": 0, "FF": 0, "cycles": 0,
                "warning": "distributed arithmetic layer without da4ml figures "
                           "(hls4ml's DA pass did not run); counted as zero cost"}
    code = getattr(source, "code", str(source))
    n_ops, depth = graph_stats(code)
    lut = float(cost) * LUT_PER_COST_UNIT
    mean_width = lut / n_ops if n_ops else 16.0
    levels = int(math.ceil(depth))
    cycles = math.ceil(levels / adds_per_cycle(int(round(mean_width)), clock_eff_ns)) if levels else 0
    # pipeline registers: about one adder level's worth of bits at every cycle boundary
    level_bits = lut / levels if levels else 0.0
    ff = K_FF * level_bits * max(cycles, 1)
    return {"LUT": int(round(lut)), "FF": int(round(ff)), "cycles": int(cycles),
            "adder_ops": n_ops, "adder_depth": levels}
