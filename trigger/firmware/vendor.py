"""Vendor HLS tools: finding them, running C synthesis, reading their csynth.xml reports.

Vivado HLS and Vitis HLS write ``<project>/<prj>/solution1/syn/report/<top>_csynth.xml`` (the file
hls4ml's ``parse_vivado_report`` reads). Its schema: ``UserAssignments`` (Part, TopModelName,
TargetClockPeriod, ClockUncertainty), ``PerformanceEstimates`` (``SummaryOfTimingAnalysis/
EstimatedClockPeriod``; ``SummaryOfOverallLatency`` with Best-/Worst-caseLatency in cycles and
Interval-min/-max) and ``AreaEstimates`` (``Resources`` and ``AvailableResources`` with BRAM_18K,
DSP48E (Vivado) or DSP (Vitis), FF, LUT, URAM). Latencies can be ``undef`` when the tool cannot bound
them (dataflow with data-dependent loops); those are reported as None, never guessed. Beside the
top's report HLS writes one ``<module>_csynth.xml`` per synthesized function (same schema): the
hls4ml layer functions carry their layer's config struct in the name (``config<N>``), which is how
the per-layer comparison finds them (:func:`read_module_reports`). With ``vsynth``, hls4ml's Vivado
run writes the post-synthesis utilisation to ``<project>/vivado_synth.rpt``
(:func:`parse_vivado_synth_rpt`).
"""

from __future__ import annotations

import os
import re
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


def percent_of_part(used: dict, available: dict | None) -> dict:
    """Each resource of ``used`` in percent of the part's ``available`` (where both are known)."""
    return {k: round(100.0 * used[k] / available[k], 2) for k in RESOURCE_KEYS
            if isinstance(used.get(k), (int, float)) and available and available.get(k)}


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
    return _with_modules(parse_csynth_xml(path)) if path.is_file() else None


def read_vendor_report(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The C-synthesis report of a project folder: the standard location first, then any
    ``*_prj/solution*/syn/report/*_csynth.xml`` (another project or solution name); None if absent.
    It carries the per-module reports beside it (``modules``, :func:`read_module_reports`) and
    Vivado's post-synthesis utilisation (``post_synth``, :func:`read_post_synth_report`) if present."""
    found = parse_vivado_report(out_dir)
    if found is None:
        candidates = sorted(Path(out_dir).glob("*_prj/solution*/syn/report/*_csynth.xml"))
        tops = [c for c in candidates if _is_top(c)] or candidates
        found = _with_modules(parse_csynth_xml(tops[0])) if tops else None
    post = read_post_synth_report(out_dir)
    if found is not None and post is not None:
        found["post_synth"] = post
    return found


def _is_top(path: Path) -> bool:
    """True for the top function's report (``<project>_prj/.../<project>_csynth.xml``)."""
    project = path.parents[3].name.removesuffix("_prj") if len(path.parents) > 3 else None
    return path.name == f"{project}_csynth.xml"


def _with_modules(report: dict[str, Any]) -> dict[str, Any]:
    report["modules"] = read_module_reports(report["report_file"], report.get("top"))
    return report


#: ``config<N>`` in an HLS module name: the config struct hls4ml writes for the layer of index N
#: (``dense_latency_..._config2_s``, ``relu_..._relu_config3_s``)
CONFIG_INDEX = re.compile(r"config(\d+)(?:_|$)")


def read_module_reports(top_report: str | os.PathLike, top: str | None = None) -> list[dict[str, Any]]:
    """The per-module C-synthesis reports HLS writes beside the top's (``<module>_csynth.xml`` in
    ``syn/report/``): one entry per module with its ``name``, ``config`` (the hls4ml layer index
    from ``config<N>`` in its name, None for a helper module), latency and resources."""
    top_report = Path(top_report)
    modules = []
    for path in sorted(top_report.parent.glob("*_csynth.xml")):
        if path == top_report:
            continue
        report = parse_csynth_xml(path)
        name = report.get("top") or path.name.removesuffix("_csynth.xml")
        if name == top:
            continue
        match = CONFIG_INDEX.search(name)
        modules.append({"name": name, "config": int(match.group(1)) if match else None,
                        "latency": report["latency"],
                        "resources": {k: report["resources"].get(k) for k in RESOURCE_KEYS}})
    return modules


# --- post-synthesis utilisation (Vivado report_utilization) -----------------------------------------

#: Where hls4ml's ``vivado_synth.tcl`` writes ``report_utilization`` (the project folder)
POST_SYNTH_FILE = "vivado_synth.rpt"
#: utilisation-table rows read, by the name in the first column (without a trailing ``*``):
#: UltraScale(+) names first, 7-series second
POST_SYNTH_ROWS = {"LUT": ("CLB LUTs", "Slice LUTs"), "FF": ("Register as Flip Flop",), "DSP": ("DSPs",),
                   "RAMB36": ("RAMB36/FIFO",), "RAMB18": ("RAMB18",)}


def _utilisation_rows(text: str) -> dict[str, tuple[float | int | None, float | int | None]]:
    """(used, available) of the first table row of each name in :data:`POST_SYNTH_ROWS`."""
    wanted = {name: key for key, names in POST_SYNTH_ROWS.items() for name in names}
    found: dict[str, tuple] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else []
        key = wanted.get(cells[0].rstrip("*").strip()) if len(cells) >= 4 else None
        if key is not None and key not in found:
            found[key] = (_number(cells[1]), _number(cells[-2]))  # Used ... Available | Util%
    return found


def parse_vivado_synth_rpt(path: str | os.PathLike) -> dict[str, Any]:
    """Vivado's post-synthesis utilisation report (``report_utilization``, hls4ml's
    ``vivado_synth.rpt``): LUT (CLB or Slice LUTs), FF (Register as Flip Flop), DSP (DSPs) and
    BRAM_18K (RAMB18 + 2 x RAMB36), used and available. A file without the LUT and FF rows is a
    one-line :class:`TriggerError`."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise TriggerError(f"{path} cannot be read ({exc.strerror or exc}); rerun the Vivado synthesis") from None
    rows = _utilisation_rows(text)
    if "LUT" not in rows or "FF" not in rows:
        raise TriggerError(f"{path} is not a Vivado utilisation report (no 'CLB LUTs'/'Slice LUTs' and 'Register as "
                           "Flip Flop' rows); rerun the Vivado synthesis (`report_utilization -file vivado_synth.rpt`)")

    def bram(column: int) -> int | float | None:
        """Used: RAMB18 + 2 x RAMB36; available: the part's RAMB18 sites (= 2 x its RAMB36 sites)."""
        r36, r18 = rows.get("RAMB36", (None, None))[column], rows.get("RAMB18", (None, None))[column]
        if r36 is None and r18 is None:
            return None
        return 2 * (r36 or 0) + (r18 or 0) if column == 0 else max(2 * (r36 or 0), r18 or 0)

    version = re.search(r"Tool Version\s*:\s*Vivado v\.?(\S+)", text)
    device = re.search(r"\|\s*Device\s*:\s*(\S+)", text)
    used = {k: rows.get(k, (None, None))[0] for k in ("DSP", "LUT", "FF")} | {"BRAM_18K": bram(0)}
    avail = {k: rows.get(k, (None, None))[1] for k in ("DSP", "LUT", "FF")} | {"BRAM_18K": bram(1)}
    resources = {k: used[k] for k in RESOURCE_KEYS}
    available = {k: avail[k] for k in RESOURCE_KEYS if avail[k] is not None}
    return {"source": "vendor", "target": "synth",
            "tool": "Vivado" + (f" {version.group(1)}" if version else ""), "report_file": str(path),
            "part": device.group(1) if device else None, "resources": resources, "available": available,
            "percent_of_part": percent_of_part(resources, available)}


def read_post_synth_report(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The post-synthesis utilisation of a project folder (``<out_dir>/vivado_synth.rpt``), or None."""
    path = Path(out_dir) / POST_SYNTH_FILE
    return parse_vivado_synth_rpt(path) if path.is_file() else None
