"""Fit the estimator's constants on the declared fit designs and measure them on held-out ones.

``python -m tools.estimator.fit [--data DIR] [--out FILE] [--check]`` rebuilds every
published design that has a ``build`` section (tests/data/published/), estimates it, and then

1. fits the linear constants of :class:`~trigger.firmware.estimate.calibration.Calibration` (LUT and FF factors, the
   post-synthesis ratios) on the designs whose record says ``role: fit``;
2. measures leave-one-source-out errors: for each source repository, the constants are refitted
   on the fit designs of the *other* sources and every design of the left-out source is estimated
   with them;
3. derives each target's uncertainty from those held-out errors (:func:`uncertainty_from`),
   writes the builtin calibration YAML and prints the error table.

The discrete rules (which products get DSPs, latency, block RAM) are not fitted here; their
held-out errors are measured all the same. ``--check`` compares with the committed file instead
of writing it (the tests use :func:`run_fit` directly).

Then, in a table of its own, the estimate against the yosys counts of the reference students
(tests/data/yosys/, :mod:`.yosys_records`): open-source synthesis of da4ml's Verilog, another kind
of evidence, which is compared with but never fitted on (``--no-yosys`` skips it; it needs da4ml).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from tools.estimator.published import PublishedDesign, load_published
from tools.estimator.yosys_records import DEFAULT_YOSYS_DATA, yosys_report
from trigger.errors import TriggerError
from trigger.firmware.estimate.calibration import (
    BUILTIN_PATH, RESOURCES, Calibration, CalibrationSample, SynthRatio, Uncertainty, csynth_figures,
    fit_linear, fit_synth_ratio, relative_errors, save_calibration, synth_resources)
from trigger.report.markdown import percent, table

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "published"
#: The uncertainty of a figure is this percentile of its held-out |error| (csynth target).
PERCENTILE = 90
#: The fit starts from one LUT per structural LUT and LUT-multiplier bit, one FF per register
#: bit and post-synthesis = C-synthesis; the ridge term of the fit pulls towards these.
PRIOR = Calibration(
    name="prior", tool="none", lut_per_mult_bit={"modern": 1.0, "vivado2019": 1.0}, lut_per_logic=1.0,
    lut_per_table_bit=1.0, lut_per_top=100.0, ff_per_bit=1.0,
    ff_per_adder_bit={"modern": 0.7, "vivado2019": 0.7}, synth_ratio=SynthRatio(DSP=1.0, LUT=1.0, FF=1.0, BRAM_18K=1.0), fit_designs=[],
    heldout_designs=[], uncertainty={t: Uncertainty(cycles=0, DSP=0, LUT=0, FF=0, BRAM_18K=0)
                                     for t in ("csynth", "synth")})


class Evaluated(BaseModel):
    """A rebuilt design: its record's role and source, and its calibration sample."""

    name: str
    source: str
    role: str
    sample: CalibrationSample


def sample_of(design: PublishedDesign, estimate: dict) -> CalibrationSample:
    """The calibration sample of a published design from its estimate and its recorded figures."""
    c = design.csynth
    csynth = {"min_cycles": c.latency_min, "max_cycles": c.latency_max, "interval": c.interval_max,
              **{key: getattr(c, key) for key in RESOURCES}}
    post = design.post_synth.model_dump() if design.post_synth else None
    return CalibrationSample(name=design.name, tool=f"{design.tool.name} {design.tool.version}",
                             features=estimate["features"],
                             csynth={k: float(v) for k, v in csynth.items()},
                             post_synth={k: float(v) for k, v in post.items()} if post else None)


def evaluate_designs(designs: Iterable[PublishedDesign], workdir: Path) -> tuple[list[Evaluated], dict[str, str]]:
    """Rebuild and estimate each design; (evaluated designs, excluded name -> reason)."""
    from tools.estimator.designs import build_design
    from trigger.firmware.estimate.model import estimate_model

    evaluated, excluded = [], {}
    for design in designs:
        if design.build is None:
            excluded[design.name] = f"not rebuilt: {design.build_note}"
            continue
        hls_model = build_design(design, workdir / design.name)
        estimate = estimate_model(hls_model, profile=design.build.profile, calibration=PRIOR).to_dict()
        warnings = sorted({layer["warning"] for layer in estimate["layers"] if "warning" in layer})
        if warnings:
            excluded[design.name] = warnings[0]
            continue
        evaluated.append(Evaluated(name=design.name, source=design.source.repo, role=design.role,
                                   sample=sample_of(design, estimate)))
    return evaluated, excluded


def fit_constants(fit_set: list[Evaluated]) -> Calibration:
    """PRIOR with its linear constants and synth ratios fitted on ``fit_set`` (weight 1 each)."""
    weighted = [(e.sample, 1.0) for e in fit_set]
    cal = PRIOR.model_copy(update=fit_linear(PRIOR, weighted))
    return cal.model_copy(update={"synth_ratio": fit_synth_ratio(PRIOR, weighted)})


def leave_one_source_out(evaluated: list[Evaluated]) -> dict[str, dict[str, dict[str, float]]]:
    """design -> target -> figure -> error, each with constants fitted without the design's source."""
    errors = {}
    for source in sorted({e.source for e in evaluated}):
        cal = fit_constants([e for e in evaluated if e.role == "fit" and e.source != source])
        for e in evaluated:
            if e.source == source:
                errors[e.name] = relative_errors(cal, e.sample)
    return errors


def uncertainty_from(errors: dict[str, dict[str, dict[str, float]]]) -> dict[str, Uncertainty]:
    """csynth: the PERCENTILE-th percentile of the held-out |errors| per figure; synth: the
    largest held-out |error| (few designs), and never less than the csynth one."""
    def spread(target: str, key: str, stat) -> float:
        values = [abs(e[target][key]) for e in errors.values() if key in e.get(target, {})]
        return float(stat(values)) if values else 0.0

    pct = lambda v: np.percentile(v, PERCENTILE, method="higher")  # noqa: E731
    csynth = {key: round(spread("csynth", key, pct), 3) for key in RESOURCES}
    cycles = int(math.ceil(spread("csynth", "cycles", pct)))
    synth = {key: round(max(csynth[key], spread("synth", key, max)), 3) for key in RESOURCES}
    return {"csynth": Uncertainty(cycles=cycles, **csynth), "synth": Uncertainty(cycles=cycles, **synth)}


def run_fit(data: Path = DEFAULT_DATA, workdir: Path | None = None) -> tuple[Calibration, dict, dict]:
    """(builtin calibration, leave-one-source-out errors, excluded designs) from the data set."""
    designs = load_published(data)
    with tempfile.TemporaryDirectory() as tmp:
        evaluated, excluded = evaluate_designs(designs, Path(workdir or tmp))
    fit_set = [e for e in evaluated if e.role == "fit"]
    if not fit_set:
        raise TriggerError(f"published designs in {data}: no rebuildable design has role: fit")
    errors = leave_one_source_out(evaluated)
    cal = fit_constants(fit_set).model_copy(update={
        "name": "builtin", "tool": "builtin: " + ", ".join(sorted({e.sample.tool for e in fit_set})),
        "fit_designs": [e.name for e in fit_set],
        "heldout_designs": [e.name for e in evaluated if e.role != "fit"],
        "uncertainty": uncertainty_from(errors),
        "note": (f"fitted on {len(fit_set)} published designs ({sum(e.sample.post_synth is not None for e in fit_set)}"
                 f" with post-synthesis figures); uncertainty: csynth = {PERCENTILE}th percentile, synth = "
                 "largest, of the leave-one-source-out errors (docs/estimator.md)"),
        "fit_data": [e.sample for e in fit_set]})
    return cal, errors, excluded


def error_table(cal: Calibration, errors: dict, excluded: dict[str, str]) -> str:
    """The held-out error table (markdown): one row per design, then the uncertainty."""
    role = {name: "fit" for name in cal.fit_designs}
    fmt = lambda v, key: "" if v is None else (f"{v:+.0f}" if key == "cycles" else percent(v))  # noqa: E731
    rows = [[name, role.get(name, "heldout"),
             *(fmt(errors[name].get("csynth", {}).get(k), k) for k in ("cycles", *RESOURCES)),
             *(fmt(errors[name].get("synth", {}).get(k), k) for k in ("LUT", "FF"))] for name in sorted(errors)]
    lines = table(["design", "role", "cycles", "DSP", "LUT", "FF", "BRAM", "synth LUT", "synth FF"], rows)
    lines += ["", "Excluded: " + ("; ".join(f"{n} ({why})" for n, why in sorted(excluded.items())) or "none")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: fit, print the table, write (or --check) the builtin calibration."""
    parser = argparse.ArgumentParser(prog="python -m tools.estimator.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=BUILTIN_PATH)
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    parser.add_argument("--yosys-data", type=Path, default=DEFAULT_YOSYS_DATA,
                        help="yosys records of the reference students (tests/data/yosys)")
    parser.add_argument("--no-yosys", action="store_true",
                        help="skip the comparison with the yosys records (it converts each student with da4ml)")
    args = parser.parse_args(argv)
    cal, errors, excluded = run_fit(args.data)
    print(error_table(cal, errors, excluded))
    print("\nuncertainty:", {t: u.model_dump() for t, u in cal.uncertainty.items()})
    if not args.no_yosys:
        print("\nOpen-source synthesis (yosys, before place and route) of da4ml's Verilog of the reference "
              "students, against the synth target; compared, never fitted:\n")
        print(yosys_report(cal, args.yosys_data))
    if args.check:
        from trigger.firmware.estimate.calibration import load_calibration

        same = load_calibration(args.out) == cal
        print(f"{args.out}: {'up to date' if same else 'differs from the fit'}")
        return 0 if same else 1
    save_calibration(cal, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
