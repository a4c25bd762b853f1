"""``trigger calibrate``: refit the estimator's constants on the user's own vendor runs.

Each project folder (written by ``trigger synth``, built with ``--build`` where the vendor tool is
installed, or with the reports of such a build copied in) gives one
:class:`~trigger.firmware.estimate.calibration.CalibrationSample`: the estimate's structural features
from ``report.json`` and the vendor's figures, C synthesis from
``<prj>/solution1/syn/report/<top>_csynth.xml`` and post-synthesis utilisation from
``vivado_synth.rpt``. Every folder is checked before anything is written; a folder without
report.json, without a vendor report or with a malformed one is one line naming the file and the
fix. The samples are added to the user's calibration file (or, the first time, to the builtin
calibration) by :func:`~trigger.firmware.estimate.calibration.refit`, and the file is replaced
atomically. A design calibrated again replaces its earlier sample.

The user's calibration file is ``$TRIGGER_CALIBRATION``, else
``~/.config/trigger/estimator_calibration.yaml``; ``trigger synth`` uses it when it exists
(:func:`~trigger.firmware.estimate.calibration.synth_calibration`), or the file given with ``--calibration``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trigger.contracts import RESOURCE_KEYS, FirmwareReport
from trigger.errors import TriggerError
from trigger.firmware.estimate.calibration import (
    Calibration, CalibrationSample, features_of, load_calibration, load_checked, refit, relative_errors,
    save_calibration, user_calibration_path)
from trigger.firmware.vendor import CSYNTH_RELATIVE, POST_SYNTH_FILE, read_post_synth_report, read_vendor_report

#: The C-synthesis figures a sample takes from the vendor report's latency block
LATENCY_KEYS = ("min_cycles", "max_cycles", "interval")


# --- one project folder -> one sample ------------------------------------------------------------

def _read_report(directory: Path) -> tuple[Path, FirmwareReport]:
    """The folder's report.json, typed; one line naming what is missing and the fix."""
    if not directory.is_dir():
        raise TriggerError(f"{directory} is not a folder; pass project folders written by `trigger synth`")
    path = directory / "report.json"
    if not path.is_file():
        raise TriggerError(f"{path} not found; pass a project folder written by `trigger synth` "
                           f"(`trigger synth MODEL.h5 --out {directory} --build`)")
    report = FirmwareReport.read(path)
    if report.estimate is None:
        raise TriggerError(f"{path} has no estimate; rerun `trigger synth` with --force to write one")
    return path, report


def _figures(block: dict | None, keys: tuple[str, ...]) -> dict[str, float] | None:
    """The numeric figures of ``block`` among ``keys`` (an unbounded 'undef' latency is left out)."""
    if block is None:
        return None
    return {k: float(v) for k in keys if isinstance((v := block.get(k)), (int, float)) and not isinstance(v, bool)}


def _check_clock(path: Path, report: FirmwareReport, vendor: dict | None) -> None:
    """The vendor report must be of this design's build: the same clock period."""
    target = ((vendor or {}).get("clock") or {}).get("target_ns")
    clock = report.config.clock_ns
    if target is not None and clock is not None and abs(float(target) - float(clock)) > 1e-6:
        raise TriggerError(f"{vendor['report_file']} was built at a {target:g} ns clock but {path} is at "
                           f"{clock:g} ns: the vendor report is not of this design; rerun `trigger synth --build` "
                           "into this folder")


def project_sample(directory: str | os.PathLike) -> CalibrationSample:
    """The calibration sample of one project folder: the estimate's features from its report.json,
    the vendor's C-synthesis and post-synthesis figures from the reports in it. Named by the
    folder's absolute path (a folder calibrated again replaces its sample)."""
    directory = Path(directory)
    path, report = _read_report(directory)
    try:
        features = features_of(report.estimate)
    except TriggerError as exc:
        raise TriggerError(f"{path}: {exc}") from None
    vendor = read_vendor_report(directory)
    post = vendor.get("post_synth") if vendor is not None else read_post_synth_report(directory)
    if vendor is None and post is None:
        raise TriggerError(f"{directory} has no vendor report ({CSYNTH_RELATIVE} or {POST_SYNTH_FILE}); run "
                           "`trigger synth --build` where Vitis/Vivado HLS is installed, or copy that build's "
                           "reports into the folder")
    _check_clock(path, report, vendor)
    csynth = None
    if vendor is not None:
        csynth = _figures(vendor["latency"], LATENCY_KEYS) | _figures(vendor["resources"], RESOURCE_KEYS)
    tools = [r["tool"] for r in (vendor, post) if r is not None and r.get("tool")]
    return CalibrationSample(name=str(directory.resolve()), tool=" + ".join(tools) or "unknown tool",
                             features=features, csynth=csynth,
                             post_synth=_figures((post or {}).get("resources"), RESOURCE_KEYS))


# --- the stage --------------------------------------------------------------------------------------

@dataclass
class CalibrateResult:
    """What ``trigger calibrate`` wrote: the file, the calibration before and after, the samples."""

    out: Path
    base_source: str
    before: Calibration
    after: Calibration
    samples: list[CalibrationSample]

    def summary(self) -> str:
        """The old vs new constants and each design's error before and after, for the command line."""
        lines = [f"wrote {self.out}: calibration '{self.after.name}' for {self.after.tool}, refit of "
                 f"{self.base_source} on {len(self.samples)} design(s) of yours", "",
                 f"{'constant':<28} {'before':>10} {'after':>10}"]
        old, new = constants(self.before), constants(self.after)
        lines += [f"{key:<28} {old.get(key, float('nan')):>10.4g} {new[key]:>10.4g}" for key in new]
        lines += ["", "error per design (estimate vs vendor; cycles absolute, resources relative): before -> after"]
        for sample in self.samples:
            lines.append(f"  {sample.name}")
            lines += [f"    {line}" for line in error_lines(self.before, self.after, sample)]
        return "\n".join(lines)


def constants(cal: Calibration) -> dict[str, float]:
    """The fitted constants and uncertainties of a calibration, flat (``lut_per_logic``,
    ``synth_ratio.LUT``, ``uncertainty.csynth.cycles``, ...): every numeric field, in the
    calibration's own order."""
    return _numbers(cal.model_dump(exclude={"schema_version", "fit_data"}))


def _numbers(tree: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _numbers(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def error_lines(before: Calibration, after: Calibration, sample: CalibrationSample) -> list[str]:
    """One line per target: each figure's error under ``before`` -> under ``after``."""
    old, new = relative_errors(before, sample), relative_errors(after, sample)
    lines = []
    for target, errors in new.items():
        cells = [f"{key} {_err(key, old.get(target, {}).get(key))} -> {_err(key, value)}"
                 for key, value in errors.items()]
        lines.append(f"{target}: " + ", ".join(cells))
    return lines


def _err(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:+.0f}" if key == "cycles" else f"{100 * value:+.0f} %"


def _check_tool(path: Path, base: Calibration, samples: list[CalibrationSample]) -> None:
    """A user's file is for one tool version: reports of another are refused (one line)."""
    known = set(base.tool.split(", "))
    other = sorted({s.tool for s in samples} - known)
    if other:
        raise TriggerError(f"{path} is calibrated for {base.tool} but {', '.join(other)} made these reports; "
                           "calibrate them into a file of their own with --out FILE (one file per tool version) "
                           "and pass it to `trigger synth --calibration FILE`")


def calibrate(projects: list[str | os.PathLike], *, out: str | os.PathLike | None = None) -> CalibrateResult:
    """Add the designs of ``projects`` (folders written by ``trigger synth`` with vendor reports) to
    the calibration file ``out`` (default :func:`user_calibration_path`) and refit it: starting from
    that file if it exists (it must be for the same tool version), else from the builtin calibration.
    Every folder and the existing file are checked before the file is replaced (atomically); any
    problem is one line and nothing is written."""
    out = Path(out).expanduser() if out is not None else user_calibration_path()
    if out.is_dir():
        raise TriggerError(f"{out} is a folder; pass the calibration file to write with --out FILE.yaml")
    samples = [project_sample(p) for p in projects]
    if out.is_file():
        base = load_checked(out, "fix or remove it, or write another file with --out")
        base_source = str(out)
        _check_tool(out, base, samples)
    else:
        base, base_source = load_calibration(None), "the builtin calibration"
    names = {s.name for s in samples}
    kept = base.model_copy(update={"fit_data": [s for s in base.fit_data if s.name not in names],
                                   "fit_designs": [n for n in base.fit_designs if n not in names]})
    after = refit(kept, samples, name="user calibration")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_calibration(after, out)
    return CalibrateResult(out=out, base_source=base_source, before=base, after=after, samples=samples)
