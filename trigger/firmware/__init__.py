"""trigger.firmware: QKeras model -> hls4ml HLS project with a bit-exact C simulation.

- :func:`synthesize` is ``trigger synth``: project folder, report.json, report.md, optional build.
- :func:`convert` converts with the bit-exact configuration (:mod:`trigger.firmware.convert`).
- :func:`run_csim` compiles, runs and compares with QKeras evaluated exactly (:mod:`.csim`).
- :func:`parse_vivado_report` / :func:`read_vendor_report` read Vivado/Vitis HLS csynth.xml.
- :mod:`trigger.firmware.estimate`: latency/resource estimate without vendor tools.
TensorFlow and hls4ml are imported only when a function runs.
"""

from trigger.firmware.convert import convert, convert_model
from trigger.firmware.csim import run_csim
from trigger.firmware.synth import SynthResult, synthesize
from trigger.firmware.vendor import parse_csynth_xml, parse_vivado_report, read_vendor_report

__all__ = ["SynthResult", "convert", "convert_model", "parse_csynth_xml", "parse_vivado_report",
           "read_vendor_report", "run_csim", "synthesize"]
