"""The estimator's fitted constants, their uncertainty, and refitting them on a user's own reports.

The layer rules compute structure (products, adder bits, register bits, tables, FIFOs); a
:class:`Calibration` holds the few linear factors that turn that structure into the figures of a
C-synthesis report (``csynth`` target) and the ratios from there to a Vivado post-synthesis report
(``synth`` target), together with the held-out uncertainty of each figure. The builtin calibration
(``calibration.yaml`` next to this module) is written by ``python -m tools.estimator.fit``
from the published designs in ``tests/data/published/`` (docs/estimator.md, *Calibration*).

A calibration stores the features and figures of the designs it was fitted on (``fit_data``), so
:func:`refit` can add a user's own designs (features from ``report.json``'s ``estimate``, figures
from the vendor report) without rebuilding the published ones.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trigger.contracts import EstimateReport
from trigger.errors import TriggerError
from trigger.runtime import atomic_path

#: The environment variable naming the user's calibration file
ENV_VAR = "TRIGGER_CALIBRATION"
#: The user's calibration file when ``$TRIGGER_CALIBRATION`` is not set
DEFAULT_USER_FILE = Path("~/.config/trigger/estimator_calibration.yaml")
SCHEMA_VERSION = 1
BUILTIN_PATH = Path(__file__).with_name("calibration.yaml")
RESOURCES = ("DSP", "LUT", "FF", "BRAM_18K")
M = TypeVar("M", bound=BaseModel)
Target = Literal["csynth", "synth"]
#: A user's sample counts this many times a published design in :func:`refit` (the user's tool
#: version is the one the refit calibration is for; the published designs keep the fit stable).
USER_SAMPLE_WEIGHT = 10.0
#: Ridge strength pulling each fitted factor's log towards its prior value's: it decides factors
#: the fit designs do not constrain (e.g. a profile without LUT multipliers in the fit).
RIDGE = 0.05
#: Feature names (:func:`features_of`); a profile's LUT-multiplier bits are ``lut_mult_bits.<profile>``.
LUT_LOGIC, LUT_TABLE, FF_BITS, MULT_BITS = "lut_logic", "lut_table", "ff_bits", "lut_mult_bits"
#: the pipeline-register bits of products and adder trees are ``ff_adder_bits.<profile>``; ``top``
#: is 1 for every design (the top level's fixed control logic)
FF_ADDER_BITS, TOP = "ff_adder_bits", "top"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Uncertainty(_Strict):
    """Half-width of the expected error: ``cycles`` absolute, the resources relative (0.25 = 25 %)."""

    cycles: int = Field(ge=0)
    DSP: float = Field(ge=0)
    LUT: float = Field(ge=0)
    FF: float = Field(ge=0)
    BRAM_18K: float = Field(ge=0)


class SynthRatio(_Strict):
    """Vivado post-synthesis figure / C-synthesis figure, per resource."""

    DSP: float = Field(gt=0)
    LUT: float = Field(gt=0)
    FF: float = Field(gt=0)
    BRAM_18K: float = Field(gt=0)


class CalibrationSample(BaseModel):
    """One design with known figures: the estimator's features and the vendor's numbers."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tool: str
    features: dict[str, float]
    #: keys min_cycles, max_cycles, interval, DSP, LUT, FF, BRAM_18K (any subset)
    csynth: dict[str, float] | None = None
    #: keys DSP, LUT, FF, BRAM_18K (any subset)
    post_synth: dict[str, float] | None = None
    #: weight in the fit (a published design 1; :func:`refit` gives a user's design USER_SAMPLE_WEIGHT,
    #: kept when the calibration is refitted again)
    weight: float = Field(default=1.0, gt=0)


class Calibration(_Strict):
    """The fitted constants of the estimator and the uncertainty of its figures."""

    schema_version: int = SCHEMA_VERSION
    name: str
    #: the tool (and versions) the constants are fitted for
    tool: str
    #: LUTs per (variable bit x constant bit) of a LUT multiplier, per tool profile
    lut_per_mult_bit: dict[str, float]
    #: LUTs per structural logic LUT (adder/comparator/mux bits, SRLs, tables)
    lut_per_logic: float = Field(gt=0)
    #: LUTs per index/output bit of a table activation (sigmoid, tanh, elu, ...)
    lut_per_table_bit: float = Field(gt=0)
    #: LUTs of the top level's fixed control logic (per design; there is no such FF term:
    #: hls4ml's one-element io_parallel baselines have 18 FF in all)
    lut_per_top: float = Field(ge=0)
    #: FFs per structural register bit (inputs, FIFOs, activations)
    ff_per_bit: float = Field(gt=0)
    #: FFs per pipeline-register bit of the products and adder trees, per tool profile
    ff_per_adder_bit: dict[str, float]
    synth_ratio: SynthRatio
    fit_designs: list[str]
    heldout_designs: list[str]
    uncertainty: dict[Target, Uncertainty]
    #: what the synth ratios and the uncertainties rest on, in words (shown in docs and reports)
    note: str = ""
    #: features and figures of the fit designs (what :func:`refit` refits on)
    fit_data: list[CalibrationSample] = Field(default_factory=list)


def read_yaml_record(path: Path, schema: type[M], what: str, whole: str = "(file)") -> M:
    """A YAML mapping validated against ``schema``; any problem is one :class:`TriggerError` line
    naming ``what``, the file and the key (``whole`` when the error concerns the whole record)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: bytes that are not UTF-8 text
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise TriggerError(f"{what} {path}: cannot read YAML ({reason})") from None
    if not isinstance(raw, dict):
        raise TriggerError(f"{what} {path}: expected a mapping of keys, got {type(raw).__name__}")
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"]) or whole
        raise TriggerError(f"{what} {path}: key {key}: {err['msg']}") from None


def load_calibration(path: str | os.PathLike | None = None) -> Calibration:
    """A calibration file (None: the builtin one, read once per process and shared: do not
    modify it, use ``model_copy``); a bad file is one TriggerError line naming it and the key."""
    if path is None:
        return _builtin_calibration()
    return _read_calibration(Path(path))


@functools.lru_cache(maxsize=1)
def _builtin_calibration() -> Calibration:
    """The builtin calibration file, parsed once."""
    return _read_calibration(BUILTIN_PATH)


def _read_calibration(file: Path) -> Calibration:
    """Parse and validate one calibration file."""
    cal = read_yaml_record(file, Calibration, "calibration file")
    if cal.schema_version != SCHEMA_VERSION:
        raise TriggerError(f"calibration file {file}: key schema_version: {cal.schema_version} is not "
                           f"the supported {SCHEMA_VERSION}")
    return cal


def save_calibration(cal: Calibration, path: str | os.PathLike) -> None:
    """Write ``cal`` as YAML, atomically (replacing an existing file)."""
    text = yaml.safe_dump(cal.model_dump(mode="json"), sort_keys=False, width=100)
    with atomic_path(path, force=True) as tmp:
        tmp.write_text(text)


def features_of(estimate: EstimateReport) -> dict[str, float]:
    """The structural features of an estimate (``features`` of report.json's ``estimate``)."""
    features = estimate.features
    if LUT_LOGIC not in features:
        raise TriggerError("estimate has no 'features' (written by trigger >= the calibrated estimator); "
                           "rerun `trigger synth` to record them")
    return {str(key): float(value) for key, value in features.items()}


# --- predictions ---------------------------------------------------------------------------------

def lut_from(cal: Calibration, features: dict[str, float]) -> float:
    """C-synthesis LUT of a design (or layer) from its structural features."""
    mult = sum(factor * features.get(f"{MULT_BITS}.{profile}", 0.0)
               for profile, factor in cal.lut_per_mult_bit.items())
    return (cal.lut_per_logic * features.get(LUT_LOGIC, 0.0) + cal.lut_per_top * features.get(TOP, 0.0)
            + cal.lut_per_table_bit * features.get(LUT_TABLE, 0.0) + mult)


def ff_from(cal: Calibration, features: dict[str, float]) -> float:
    """C-synthesis FF of a design (or layer) from its structural features."""
    adders = sum(factor * features.get(f"{FF_ADDER_BITS}.{profile}", 0.0)
                 for profile, factor in cal.ff_per_adder_bit.items())
    return cal.ff_per_bit * features.get(FF_BITS, 0.0) + adders


def csynth_figures(cal: Calibration, features: dict[str, float]) -> dict[str, float]:
    """What the C-synthesis report would say: latency as modelled, LUT and FF calibrated."""
    return {"max_cycles": features.get("cycles", 0.0), "interval": features.get("interval", 0.0),
            "DSP": features.get("DSP", 0.0), "LUT": lut_from(cal, features),
            "FF": ff_from(cal, features), "BRAM_18K": features.get("BRAM_18K", 0.0)}


def synth_resources(cal: Calibration, csynth: dict[str, float]) -> dict[str, int]:
    """Post-synthesis resources from the C-synthesis ones (the ratios of the calibration)."""
    ratio = cal.synth_ratio.model_dump()
    return {key: int(round(ratio[key] * float(csynth[key]))) for key in RESOURCES}


# --- fitting -------------------------------------------------------------------------------------

def robust_log_fit(rows: list[tuple[np.ndarray, float, float]], prior: np.ndarray) -> np.ndarray:
    """Factors c minimising sum w * rho(log(x.c / y)) + RIDGE * sum log(c / prior)^2.

    ``rows`` are (x, y, w). Log errors treat x2 and /2 alike and keep a large design from
    dominating small ones; rho is soft-L1 (about |r| beyond a factor e^0.3), so a design the
    structure gets badly wrong does not drag every factor with it. Deterministic (start = prior).
    """
    from scipy.optimize import least_squares

    usable = [(x, y, w) for x, y, w in rows if y > 0 and float(np.dot(x, prior)) > 0]
    if not usable:
        return prior.copy()
    x = np.array([r[0] for r in usable])
    y = np.array([r[1] for r in usable])
    w = np.sqrt(np.array([r[2] for r in usable]))

    def residuals(log_c: np.ndarray) -> np.ndarray:
        pred = np.maximum(x @ np.exp(log_c), 1e-9)
        return np.concatenate([w * np.log(pred / y), math.sqrt(RIDGE) * (log_c - np.log(prior))])

    result = least_squares(residuals, np.log(prior), loss="soft_l1", f_scale=0.3, method="trf")
    return np.exp(result.x)


def fit_linear(base: Calibration, samples: list[tuple[CalibrationSample, float]]) -> dict:
    """LUT and FF factors fitted on the (sample, weight) pairs' C-synthesis figures."""
    profiles = sorted(base.lut_per_mult_bit)
    names = [LUT_LOGIC, LUT_TABLE, TOP] + [f"{MULT_BITS}.{p}" for p in profiles]
    prior = np.array([base.lut_per_logic, base.lut_per_table_bit, base.lut_per_top]
                     + [base.lut_per_mult_bit[p] for p in profiles])
    lut_rows = [(np.array([s.features.get(n, 0.0) for n in names]), float(s.csynth["LUT"]), w)
                for s, w in samples if s.csynth and s.csynth.get("LUT")]
    lut = robust_log_fit(lut_rows, prior)
    ff_profiles = sorted(base.ff_per_adder_bit)
    ff_names = [FF_BITS] + [f"{FF_ADDER_BITS}.{p}" for p in ff_profiles]
    ff_prior = np.array([base.ff_per_bit] + [base.ff_per_adder_bit[p] for p in ff_profiles])
    ff_rows = [(np.array([s.features.get(n, 0.0) for n in ff_names]), float(s.csynth["FF"]), w)
               for s, w in samples if s.csynth and s.csynth.get("FF")]
    ff = robust_log_fit(ff_rows, ff_prior)
    r = lambda v: round(float(v), 4)  # noqa: E731
    return {"lut_per_logic": r(lut[0]), "lut_per_table_bit": r(lut[1]), "lut_per_top": r(lut[2]),
            "lut_per_mult_bit": {p: r(v) for p, v in zip(profiles, lut[3:])},
            "ff_per_bit": r(ff[0]), "ff_per_adder_bit": {p: r(v) for p, v in zip(ff_profiles, ff[1:])}}


def fit_synth_ratio(base: Calibration, samples: list[tuple[CalibrationSample, float]]) -> SynthRatio:
    """Weighted geometric mean of post-synthesis / C-synthesis over the samples that have both
    (the base ratio where no sample has a non-zero pair for a resource)."""
    ratio = base.synth_ratio.model_dump()
    for key in RESOURCES:
        pairs = [(math.log(s.post_synth[key] / s.csynth[key]), w) for s, w in samples
                 if s.csynth and s.post_synth and s.csynth.get(key) and s.post_synth.get(key)]
        if pairs:
            total = sum(w for _, w in pairs)
            ratio[key] = round(math.exp(sum(v * w for v, w in pairs) / total), 4)
    return SynthRatio(**ratio)


def _check_sample(sample: CalibrationSample) -> None:
    """A sample must carry features and at least one vendor figure."""
    usable = any(v for v in (sample.csynth or {}).values()) or any(v for v in (sample.post_synth or {}).values())
    if not usable or LUT_LOGIC not in sample.features:
        raise TriggerError(f"calibration sample {sample.name}: no usable figures (needs the estimate's "
                           "features and a C-synthesis or post-synthesis report)")


def refit(base: Calibration, samples: list[CalibrationSample], name: str) -> Calibration:
    """``base`` refitted on its own fit designs plus ``samples`` (weighted USER_SAMPLE_WEIGHT).

    The discrete rules (DSP thresholds, latency) are kept; LUT/FF factors and the synth ratios are
    refitted. The uncertainty is the base's, widened to the largest relative error the refitted
    constants leave on the user's samples (an in-sample figure: there is no held-out user design).
    """
    for sample in samples:
        _check_sample(sample)
    samples = [s.model_copy(update={"weight": USER_SAMPLE_WEIGHT}) for s in samples]
    weighted = [(s, s.weight) for s in base.fit_data + samples]
    fitted = base.model_copy(update=fit_linear(base, weighted))
    fitted = fitted.model_copy(update={"synth_ratio": fit_synth_ratio(base, weighted)})
    tools = sorted({s.tool for s in samples})
    return fitted.model_copy(update={
        "name": name, "tool": ", ".join(tools) or base.tool,
        "fit_designs": base.fit_designs + [s.name for s in samples],
        "fit_data": base.fit_data + samples,
        "uncertainty": widened_uncertainty(fitted, samples),
        "note": f"refit of {base.name} on {len(samples)} user design(s), weight {USER_SAMPLE_WEIGHT:g} each"})


def relative_errors(cal: Calibration, sample: CalibrationSample) -> dict[str, dict[str, float]]:
    """Per target, the estimate's error on a sample: cycles absolute, resources relative."""
    pred = csynth_figures(cal, sample.features)
    out: dict[str, dict[str, float]] = {}
    if sample.csynth:
        errs = {key: pred[key] / sample.csynth[key] - 1 for key in RESOURCES if sample.csynth.get(key)}
        if "max_cycles" in sample.csynth:
            errs["cycles"] = pred["max_cycles"] - sample.csynth["max_cycles"]
        out["csynth"] = errs
    if sample.post_synth:
        synth = synth_resources(cal, pred)
        out["synth"] = {key: synth[key] / sample.post_synth[key] - 1 for key in RESOURCES
                        if sample.post_synth.get(key)}
    return out


def widened_uncertainty(cal: Calibration, samples: list[CalibrationSample]) -> dict[Target, Uncertainty]:
    """The calibration's uncertainty, widened to cover its errors on ``samples``."""
    out = {}
    for target, unc in cal.uncertainty.items():
        values = unc.model_dump()
        for sample in samples:
            for key, err in relative_errors(cal, sample).get(target, {}).items():
                bound = math.ceil(abs(err)) if key == "cycles" else round(abs(err), 3)
                values[key] = max(values[key], bound)
        out[target] = Uncertainty(**values)
    return out


# --- which calibration `trigger synth` uses ----------------------------------------------------

def user_calibration_path() -> Path:
    """``$TRIGGER_CALIBRATION`` if set, else ``~/.config/trigger/estimator_calibration.yaml``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_USER_FILE.expanduser()


def load_checked(path: Path, fix: str) -> Calibration:
    """A calibration file; a bad one is one line naming it, what is wrong and ``fix``."""
    try:
        return load_calibration(path)
    except TriggerError as exc:
        raise TriggerError(f"{exc}; {fix}") from None


#: ``--calibration builtin``: the builtin calibration even when the user's file exists (e.g. for
#: reproducible reference builds)
BUILTIN = "builtin"


def synth_calibration(path: str | os.PathLike | None) -> Path | None:
    """The calibration file ``trigger synth`` uses, checked before any work: ``path`` (from
    ``--calibration``) if given, None for :data:`BUILTIN`; else the user's file
    (:func:`user_calibration_path`) if it exists, else None (the builtin calibration)."""
    if str(path) == BUILTIN:
        return None
    if path is not None:
        path = Path(path)
        load_checked(path, "pass a file written by `trigger calibrate`, or leave out --calibration for the builtin one")
        return path
    user = user_calibration_path()
    if user.is_file():
        load_checked(user, f"rerun `trigger calibrate` to rewrite it, or remove it (or point ${ENV_VAR} elsewhere) to "
                    "use the builtin calibration")
        return user
    return None
