"""Verilog from a traced model (da4ml's code generator), its Verilator emulator and its simulation.

da4ml writes the project (``src/`` Verilog, ``sim/`` a C++ binder and its makefile) and builds the
Verilated design as a shared library that clocks events through the pipeline; we call that library
on the input words and read the output words back exactly (integers, scaled by powers of two).
"""

from __future__ import annotations

import ctypes
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trigger.errors import TriggerError
from trigger.rtl import tools


@dataclass
class Logic:
    """The traced logic: combinational (``comb``) and pipelined (``pipe``), with the stage size."""

    comb: Any
    pipe: Any
    levels_per_stage: int

    @property
    def cycles(self) -> int:
        """Latency in clock cycles: one register layer per pipeline stage."""
        return len(self.pipe.solutions)

    @property
    def adder_levels(self) -> int:
        """Adder levels of the deepest output of the combinational logic."""
        return int(math.ceil(max(self.comb.out_latency)))


def combinational(traced: Any) -> Any:
    """da4ml's combinational logic (``CombLogic``) of a traced model."""
    from da4ml.trace import comb_trace

    return comb_trace(traced.inputs, traced.outputs)


def mean_adder_bits(comb: Any) -> float:
    """Mean adder width of the logic (da4ml's cost / number of adders)."""
    n_adders = sum(1 for op in comb.ops if op.opcode in (0, 1))
    return float(comb.cost) / n_adders if n_adders else 16.0


def make_logic(comb: Any, levels_per_stage: int) -> Logic:
    """The logic split into pipeline stages of ``levels_per_stage`` adder levels."""
    from da4ml.trace import to_pipeline

    return Logic(comb=comb, pipe=to_pipeline(comb, levels_per_stage, verbose=False),
                 levels_per_stage=levels_per_stage)


def write_project(logic: Logic, name: str, path: Path, clock_ns: float) -> Any:
    """Write the Verilog project to ``path`` (da4ml's layout); returns the VerilogModel."""
    from da4ml.codegen import VerilogModel

    model = VerilogModel(logic.pipe, name, path, latency_cutoff=logic.levels_per_stage, clock_period=clock_ns)
    model.write()
    makefile = path / "sim" / "build_binder.mk"
    text = makefile.read_text()
    makefile.write_text(re.sub(r"^slow: CFLAGS \+= -O$", f"slow: CFLAGS += {tools.VERILATOR_OPT}", text,
                               flags=re.MULTILINE))
    return model


#: Modules da4ml's code generator writes to ``src/static`` whatever the design; a top module of the
#: same name would clash with them (tests/test_rtl.py checks the list against a generated project).
STATIC_MODULES = frozenset({"lookup_table", "multiplier", "mux", "negative", "shift_adder"})
#: Verilog-2005 keywords and the SystemVerilog ones Verilator also reserves in .v files it lints as
#: SystemVerilog; none can name a module.
VERILOG_KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign default
defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1 if
ifnone incdir include initial inout input instance integer join large liblist library localparam
macromodule medium module nand negedge nmos nor noshowcancelled not notif0 notif1 or output parameter
pmos posedge primitive pull0 pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent rcmos real
realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small
specify specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1
triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
alias always_comb always_ff always_latch assert assume bit break byte chandle class clocking const
constraint context continue cover do endclass endinterface endpackage endprogram enum export extends
extern final import inside int interface logic longint modport new null package packed program
property rand randc ref return sequence shortint shortreal static string struct super this type
typedef union unique var virtual void
""".split())


def reserved_name(name: str) -> bool:
    """Whether ``name`` cannot be the design's top module (a Verilog keyword or a da4ml module)."""
    return name in VERILOG_KEYWORDS or name in STATIC_MODULES


def verilog_files(path: Path, name: str) -> list[Path]:
    """The Verilog sources of the design (top, stages, the static modules it instantiates)."""
    src = path / "src"
    own = [src / f"{name}.v", *sorted(src.glob(f"{name}_stage*.v"))]
    text = "\n".join(p.read_text() for p in own)
    static = [p for p in sorted((src / "static").glob("*.v")) if re.search(rf"\b{p.stem}\b\s*#?\s*\(", text)]
    return own + static


def build_emulator(model: Any, n_jobs: int) -> None:
    """Verilate and compile the design into a shared library (da4ml's makefile)."""
    env = tools.verilator_env()
    flags = f"-Wall -MAKEFLAGS {tools.VERILATOR_MAKEFLAGS} -MAKEFLAGS OPT_FAST={tools.VERILATOR_OPT}"
    try:
        model._compile(nproc=n_jobs, _env={**env, "VERILATOR_FLAGS": flags})
    except RuntimeError as exc:
        raise TriggerError(f"the Verilator build failed ({exc}); the Verilog is in {model._path}/src") from None


def simulate(model: Any, words: np.ndarray, comb: Any) -> np.ndarray:
    """Clock ``words`` (events x inputs, already on the input grid) through the Verilated
    pipeline; returns the outputs as float64 (exact: integers times powers of two)."""
    from da4ml.codegen.rtl.rtl_model import at_path, get_io_kifs

    kifs_in, kifs_out = get_io_kifs(comb)
    f_in = int(np.max(kifs_in[2]))
    k_out, i_out, f_out = (int(np.max(a)) for a in kifs_out)
    if int(np.max(kifs_in.sum(axis=0))) > 32 or k_out + i_out + f_out > 32:
        raise TriggerError("an input or output of the design is wider than 32 bits, which da4ml's "
                           "emulator cannot carry; narrow the output quantizer")
    n_events = len(words)
    inp = np.ascontiguousarray(np.floor(words.reshape(-1) * 2.0 ** f_in), dtype=np.int32)
    out = np.empty(n_events * comb.shape[1], dtype=np.int32)
    with at_path(model._path / "src" / "memfiles"):
        model._lib.inference(inp.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                             out.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), n_events, 1)
    width = k_out + i_out + f_out
    signed = (out.astype(np.int64) + k_out * 2 ** (i_out + f_out)) % 2 ** width - k_out * 2 ** (i_out + f_out)
    return signed.reshape(n_events, -1).astype(np.float64) * 2.0 ** -f_out
