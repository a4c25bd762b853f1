"""trigger.firmware: QKeras model -> hls4ml HLS project with a bit-exact C simulation.

- :func:`convert` converts with the bit-exact configuration (:mod:`trigger.firmware.convert`).
- :func:`run_csim` compiles, runs and compares with QKeras evaluated exactly (:mod:`.csim`).
- :func:`parse_vivado_report` / :func:`read_vendor_report` read Vivado/Vitis HLS csynth.xml.
- :mod:`trigger.firmware.estimate`: latency/resource estimate without vendor tools.
- :mod:`trigger.firmware.synth`: the per-layer table, latency/resource sources, the Level-1 budget.
``trigger synth`` itself is :func:`trigger.stages.synthesize`. TensorFlow and hls4ml are imported
only when a function runs.
"""

from trigger.firmware.convert import convert, convert_model
from trigger.firmware.csim import run_csim
from trigger.firmware.vendor import parse_csynth_xml, parse_vivado_report, read_vendor_report

__all__ = ["convert", "convert_model", "parse_csynth_xml", "parse_vivado_report", "read_vendor_report",
           "run_csim"]
