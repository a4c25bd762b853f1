"""Vendor HLS tools: finding them, running C synthesis, reading their csynth.xml reports.

Vivado HLS and Vitis HLS write ``<project>/<prj>/solution1/syn/report/<top>_csynth.xml`` (the file
hls4ml's ``parse_vivado_report`` reads). Its schema: ``UserAssignments`` (Part, TopModelName,
TargetClockPeriod, ClockUncertainty), ``PerformanceEstimates`` (``SummaryOfTimingAnalysis/
EstimatedClockPeriod``; ``SummaryOfOverallLatency`` with Best-/Worst-caseLatency in cycles and
Interval-min/-max) and ``AreaEstimates`` (``Resources`` and ``AvailableResources`` with BRAM_18K,
DSP48E (Vivado) or DSP (Vitis), FF, LUT, URAM). Latencies can be ``undef`` when the tool cannot bound
them (dataflow with data-dependent loops); those are reported as None, never guessed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from trigger.contracts import RESOURCE_KEYS
from trigger.errors import ToolNotFoundError, TriggerError
from trigger.runtime import log

#: executables that run C synthesis, per hls4ml backend, in order of preference
TOOLS: dict[str, tuple[str, ...]] = {"Vitis": ("vitis-run", "vitis_hls"), "Vivado": ("vivado_hls",)}
CSYNTH_RELATIVE = Path("myproject_prj") / "solution1" / "syn" / "report" / "myproject_csynth.xml"


def find_tool(backend: str) -> str | None:
    """The first C-synthesis executable of ``backend`` on PATH, or None."""
    for name in TOOLS.get(backend, ()):
        if shutil.which(name):
            return name
    return None


def require_tool(backend: str) -> str:
    """The tool for ``backend``, or :class:`ToolNotFoundError` (one line naming what is missing)."""
    tool = find_tool(backend)
    if tool is None:
        names = " or ".join(f"`{t}`" for t in TOOLS.get(backend, ()))
        raise ToolNotFoundError(f"--build needs {backend} HLS ({names}) on PATH and none was found; the project "
                                "and report.json (with the estimate) are written, run the build where the tool is "
                                f"installed: {INSTALL_HINT[backend]}")
    return tool


#: how to get each backend's tool onto PATH, for the one-line errors
INSTALL_HINT = {
    "Vitis": "install AMD Vitis (its HLS component) and `source <install>/settings64.sh`",
    "Vivado": "install Xilinx Vivado HLS (2020.1 or older) and `source <install>/settings64.sh`",
}


def warn_missing_tool(backend: str) -> bool:
    """Before the minutes of conversion and C simulation of a ``--build``: a log line if ``backend``'s
    tool is missing (the run goes on, writes the project, and :func:`require_tool` fails at the end
    in one line). True if the tool is there."""
    if find_tool(backend) is not None:
        return True
    names = " or ".join(TOOLS.get(backend, ()))
    log.warning("--build: no %s on PATH; the project and report will be written, then the build step "
                "stops with an error. To build: %s", names, INSTALL_HINT[backend])
    return False


def run_csynth(hls_model, backend: str, project_dir: str | os.PathLike) -> dict[str, Any]:
    """Run C synthesis of the written project in ``project_dir`` and return its parsed report.

    hls4ml 1.3.0 drives Vitis through ``vitis-run`` and Vivado through ``vivado_hls``; an older Vitis
    HLS that only has ``vitis_hls`` runs the same ``build_prj.tcl`` directly.
    """
    tool = require_tool(backend)
    project_dir = Path(project_dir)
    hls_model.config.config["OutputDir"] = str(project_dir)
    log.info("running C synthesis with %s in %s (this takes minutes)", tool, project_dir)
    if tool == "vitis_hls":
        (project_dir / "build_opt.tcl").write_text(
            "array set opt {\n    reset 0\n    csim 0\n    synth 1\n    cosim 0\n    validation 0\n"
            "    export 0\n    vsynth 0\n    fifo_opt 0\n}\n")
        with open(project_dir / "build_stdout.log", "w") as out, open(project_dir / "build_stderr.log", "w") as err:
            proc = subprocess.run([tool, "-f", "build_prj.tcl"], cwd=project_dir, stdout=out, stderr=err)
        if proc.returncode != 0:
            raise TriggerError(f"{tool} failed (exit {proc.returncode}); see {project_dir}/build_stdout.log")
    else:
        try:
            if backend == "Vitis":
                hls_model.build(csim=False, synth=True, cosim=False, export=False, vsynth=False, log_to_stdout=False)
            else:
                hls_model.build(csim=False, synth=True, cosim=False, export=False, vsynth=False)
        except Exception as exc:  # hls4ml raises bare Exceptions for failed builds
            raise TriggerError(f"C synthesis with {tool} failed: {str(exc).splitlines()[0][:200]}; "
                               f"see the logs in {project_dir}") from None
    report = read_vendor_report(project_dir)
    if report is None:
        raise TriggerError(f"{tool} finished but wrote no {CSYNTH_RELATIVE}; see the logs in {project_dir}")
    return report


def _text(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    return found.text.strip() if found is not None and found.text is not None else None


def _number(value: str | None) -> float | int | None:
    """An integer or float from the report, None for missing or 'undef'."""
    if value is None:
        return None
    value = value.strip().split()[0] if value.strip() else ""
    try:
        f = float(value)
    except ValueError:
        return None
    return int(f) if f.is_integer() else f


def _resources(node: ET.Element | None) -> dict[str, int | float | None]:
    out: dict[str, Any] = {}
    if node is None:
        return out
    for child in node:
        key = "DSP" if child.tag in ("DSP48E", "DSP") else child.tag
        out[key] = _number(child.text)
    return out


def parse_csynth_xml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse one ``*_csynth.xml`` (Vivado HLS or Vitis HLS) into the latency/resources of report.json.

    Raises :class:`TriggerError` for a file that is not a csynth report.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise TriggerError(f"{path} is not a readable csynth.xml ({exc}); rerun the C synthesis") from None
    perf = root.find("PerformanceEstimates")
    area = root.find("AreaEstimates")
    if root.tag != "profile" or perf is None or area is None:
        raise TriggerError(f"{path} is not an HLS csynth.xml report (no PerformanceEstimates/AreaEstimates)")
    user = root.find("UserAssignments")
    overall = perf.find("SummaryOfOverallLatency")
    target = _number(_text(user, "TargetClockPeriod"))
    best = _number(_text(overall, "Best-caseLatency"))
    worst = _number(_text(overall, "Worst-caseLatency"))
    resources = _resources(area.find("Resources"))
    available = _resources(area.find("AvailableResources"))
    version = _text(root, "ReportVersion/Version")
    dsp_tag = "DSP48E" if area.find("Resources/DSP48E") is not None else "DSP"
    return {
        "source": "vendor",
        "tool": ("Vivado HLS" if dsp_tag == "DSP48E" else "Vitis HLS") + (f" {version}" if version else ""),
        "report_file": str(path),
        "part": _text(user, "Part"),
        "top": _text(user, "TopModelName"),
        "clock": {"target_ns": target, "uncertainty_ns": _number(_text(user, "ClockUncertainty")),
                  "estimated_ns": _number(_text(perf, "SummaryOfTimingAnalysis/EstimatedClockPeriod"))},
        "latency": {"min_cycles": best, "max_cycles": worst,
                    "interval": _number(_text(overall, "Interval-min")),
                    "interval_max": _number(_text(overall, "Interval-max")),
                    "ns": (worst * target) if isinstance(worst, (int, float)) and target else None},
        "resources": {k: resources.get(k) for k in (*RESOURCE_KEYS, "URAM") if k in resources},
        "available": {k: available.get(k) for k in (*RESOURCE_KEYS, "URAM") if k in available},
    }


def parse_vivado_report(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The C-synthesis report of the project in ``out_dir`` (``myproject_prj/solution1``), or None."""
    path = Path(out_dir) / CSYNTH_RELATIVE
    return parse_csynth_xml(path) if path.is_file() else None


def read_vendor_report(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The C-synthesis report of a project folder: the standard location first, then any
    ``*_prj/solution*/syn/report/*_csynth.xml`` (another project or solution name); None if absent."""
    found = parse_vivado_report(out_dir)
    if found is not None:
        return found
    candidates = sorted(Path(out_dir).glob("*_prj/solution*/syn/report/*_csynth.xml"))
    return parse_csynth_xml(candidates[0]) if candidates else None
