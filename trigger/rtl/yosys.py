"""Open-source synthesis counts: yosys ``synth_xilinx`` on the generated Verilog.

The figures are cell counts after technology mapping, before place and route (``source: yosys``):
LUT1..LUT6 as LUT, every flip-flop primitive as FF, CARRY4/CARRY8 as CARRY, MUXF7/8/9 as MUXF, and
the longest path in logic levels (``ltp`` on every cell but the ``FD*`` flip-flops: cells, LUTs and
each CARRY4 of a chain, on the longest path between flip-flops or ports). Inverters (INV) are
listed apart; a vendor tool folds them into LUTs. The design is flattened and mapped without I/O or
clock buffers: the figures are those of the core as it sits inside a larger trigger design.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from trigger.errors import TriggerError
from trigger.rtl import tools

NOTE = "open-source synthesis (yosys synth_xilinx) before place and route"
_FF = re.compile(r"^FD[CPRSE]E?$|^FD[CPRS]$|^FDRE$|^FDSE$|^FDCE$|^FDPE$")
_LTP = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")


def script(files: list[Path], top: str, family: str, out: Path) -> str:
    """The yosys script, run in ``out``: read, synthesise, write the statistics (JSON) and the longest
    path. Paths are relative to ``out``: YoWASP maps the host's /tmp to a private folder, so an
    absolute path under /tmp would not be found."""
    sources = " ".join(os.path.relpath(f, out) for f in files)
    return "\n".join([f"read_verilog {sources}",
                      f"synth_xilinx -family {family} -top {top} -flatten -noiopad -noclkbuf",
                      "tee -q -o stat.json stat -json", "tee -q -o ltp.txt ltp -noff t:FD* %n", ""])


def classify(cells: dict[str, int]) -> dict[str, int]:
    """LUT, FF, CARRY, MUXF and INV totals from yosys's cell counts by type."""
    totals = {"LUT": 0, "FF": 0, "CARRY": 0, "MUXF": 0, "INV": 0}
    for cell, n in cells.items():
        if re.fullmatch(r"LUT[1-6]", cell):
            totals["LUT"] += n
        elif _FF.match(cell):
            totals["FF"] += n
        elif cell.startswith("CARRY"):
            totals["CARRY"] += n
        elif cell.startswith("MUXF"):
            totals["MUXF"] += n
        elif cell == "INV":
            totals["INV"] += n
    return totals


def read_results(out: Path, top: str) -> tuple[dict[str, int], int]:
    """(cell counts of the top design, longest path in cells) from the files the script wrote."""
    stat = json.loads((out / "stat.json").read_text())
    modules = stat.get("modules", {})
    design = stat.get("design") or modules.get(f"\\{top}") or next(iter(modules.values()), {})
    cells = {name.lstrip("\\$"): int(n) for name, n in design.get("num_cells_by_type", {}).items()}
    lengths = [int(n) for n in _LTP.findall((out / "ltp.txt").read_text())]
    if not cells or not lengths:
        raise TriggerError(f"yosys wrote no cell statistics or longest path to {out}; see {out / 'yosys.log'}")
    return cells, max(lengths)


def synthesize(files: list[Path], top: str, out: Path, timeout_s: float,
               family: str = tools.YOSYS_FAMILY) -> dict:
    """Run yosys on ``files`` in ``out``; the :class:`trigger.rtl.report.YosysFigures` fields."""
    out.mkdir(parents=True, exist_ok=True)
    ys = out / "synth.ys"
    ys.write_text(script(files, top, family, out))
    start = time.perf_counter()
    tools.run_yosys(ys.name, out, timeout_s)
    seconds = time.perf_counter() - start
    cells, levels = read_results(out, top)
    return {**classify(cells), "logic_levels": levels, "cells": cells, "family": family,
            "seconds": round(seconds, 2), "note": NOTE, "source": "yosys"}
