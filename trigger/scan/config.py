"""The scan config (``configs/scan/<family>.yaml``): what is searched, how, and against which budget.

A scan varies a base model config (``model``) and a base firmware config (``synth``) through dotted
keys, the same keys ``trigger.config.apply_overrides`` takes on the command line: ``student.*``,
``train.*`` and ``seed`` go to the model config, ``synth.*`` to the firmware config. Every key and
both ends of every range are applied to the base configs when the scan config is loaded, so an
unknown key, a value the model config refuses or an empty range is one line naming the scan file
and the key, before any training starts.

The base configs are read once, when a scan starts, and kept in its folder (:class:`ScanManifest`):
a scan resumed after ``configs/`` changed (a promoted student rewrites its family's config) goes on
with the configs its first trials were built from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from trigger.config import (ConfigModel, ModelConfig, SynthConfig, apply_overrides, find_config, load_config,
                            resolve_repo_path, validate_config)
from trigger.errors import TriggerError

SYNTH_PREFIX = "synth."
#: The manifest of a scan folder: its scan config and base configs, as the scan started
MANIFEST = "scan.json"


class Param(ConfigModel):
    """One searched dimension: a list of ``choices``, or a range ``low``..``high`` (ints when both
    ends and the step are integers; ``log`` for a log-uniform draw)."""

    choices: list[Any] | None = Field(None, min_length=1)
    low: float | None = None
    high: float | None = None
    step: float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> "Param":
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give either 'choices' or both 'low' and 'high'")
        if self.choices is None and self.low > self.high:
            raise ValueError(f"empty range: low {self.low:g} > high {self.high:g}")
        if self.log and self.choices is None and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    @property
    def is_int(self) -> bool:
        """True for an integer range (both ends and the step are whole numbers)."""
        ends = [self.low, self.high] + ([self.step] if self.step is not None else [])
        return self.choices is None and all(float(v).is_integer() for v in ends)

    def ends(self) -> list[Any]:
        """The extreme values, checked against the base configs when the scan config is loaded."""
        if self.choices is not None:
            return list(self.choices)
        cast = int if self.is_int else float
        return [cast(self.low), cast(self.high)]


class SearchSection(ConfigModel):
    sampler: Literal["grid", "random", "tpe", "nsga2"] = "nsga2"
    trials: int = Field(60, ge=1)
    batch: int = Field(8, ge=1, description="trials proposed together and told to the sampler together "
                                            "(the NSGA-II population); fixes the proposals for a given seed")


class ObjectivesSection(ConfigModel):
    resources: Literal["combined", "separate"] = Field(
        "combined", description="combined: minimise LUT + 55 x DSP; separate: LUT, DSP and FF each")
    latency: bool = True


class ReferenceSection(ConfigModel):
    """The current reference student, drawn on the plots: its model folder (``summary.json``)."""

    model_dir: str


class ScanConfig(ConfigModel):
    """``configs/scan/<family>.yaml``: base configs, teacher, sampler, objectives and search space."""

    shipped_folder: ClassVar[str | None] = "scan"
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = Field(description="base model config (configs/<family>.yaml)")
    synth: str = Field(description="base firmware config (configs/synth/*.yaml): settings and budget")
    teacher: str = Field(description="the trained float teacher every student is distilled from")
    reference: ReferenceSection | None = None
    seed: int = 1
    calibration: str = Field("builtin", description="the estimator's calibration: `builtin` (the default, the "
                                                    "same on every worker) or a file from `trigger calibrate`")
    csim_events: int = Field(500, ge=1)
    search: SearchSection = Field(default_factory=SearchSection)
    objectives: ObjectivesSection = Field(default_factory=ObjectivesSection)
    fixed: dict[str, Any] = Field(default_factory=dict, description="overrides applied to every trial")
    space: dict[str, Param] = Field(min_length=1)
    executor: dict[str, Any] = Field(default_factory=dict, description="documentation only: the dask-jobqueue "
                                                                       "recipe for batch farms")


def split_overrides(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Dotted overrides -> (model config overrides, firmware config overrides)."""
    model = {k: v for k, v in values.items() if not k.startswith(SYNTH_PREFIX)}
    synth = {k[len(SYNTH_PREFIX):]: v for k, v in values.items() if k.startswith(SYNTH_PREFIX)}
    return model, synth


class BaseConfigs(ConfigModel):
    """The base model and firmware configs a scan varies, as they were when the scan started."""

    model: ModelConfig
    synth: SynthConfig


def read_base(scan: ScanConfig) -> BaseConfigs:
    """The base configs named by a scan config, read from ``configs/`` now."""
    return BaseConfigs(model=load_config(resolve_repo_path(scan.model), ModelConfig),
                       synth=load_config(resolve_repo_path(scan.synth), SynthConfig))


class ScanManifest(ConfigModel):
    """``DIR/scan.json``: what a scan folder was started with. A resume must match ``scan`` (without
    the trial count, which may grow) and ``data``; ``base`` is what every trial is built from."""

    schema_version: Literal[2] = 2
    scan: dict[str, Any] = Field(description="the scan config as JSON, without search.trials")
    data: str
    base: BaseConfigs

    @classmethod
    def build(cls, scan: ScanConfig, data: Path, base: BaseConfigs) -> "ScanManifest":
        body = scan.model_dump(mode="json")
        body["search"] = {k: v for k, v in body["search"].items() if k != "trials"}
        return cls(scan=body, data=str(data), base=base)

    def scan_config(self, *, source: str) -> ScanConfig:
        """The recorded scan config (validated again; ``search.trials`` set to 1)."""
        return recorded_scan_config(self.scan, source=source)


def recorded_scan_config(body: dict[str, Any], *, source: str) -> ScanConfig:
    """A scan config as a manifest records it (no ``search.trials``), validated, with 1 trial."""
    return validate_config({**body, "search": {**body["search"], "trials": 1}}, ScanConfig, source=source)


def trial_configs(scan: ScanConfig, base: BaseConfigs, values: dict[str, Any], *,
                  source: str) -> tuple[ModelConfig, SynthConfig]:
    """The model and firmware configs of one trial: the base configs with ``fixed`` and ``values``."""
    model_over, synth_over = split_overrides({**scan.fixed, **values})
    model = apply_overrides(base.model, model_over, source=source)
    synth = apply_overrides(base.synth, {**synth_over, "max_csim_events": scan.csim_events}, source=source)
    return model, synth


def load_scan_config(path: str | Path) -> ScanConfig:
    """Read and validate a scan config (a file, or a shipped scan config's name); each space key is
    tried at both ends on the base configs."""
    path = find_config(path, ScanConfig)
    scan = load_config(path, ScanConfig)
    base = read_base(scan)
    for key, param in scan.space.items():
        for value in param.ends():
            trial_configs(scan, base, {key: value},
                          source=f"{path}: space key '{key}' (value {json.dumps(value)})")
    if scan.search.sampler == "grid":
        for key, param in scan.space.items():
            if param.choices is None and param.step is None:
                raise TriggerError(f"{path}: space key '{key}': the grid sampler needs 'choices' or a 'step'")
    return scan


def read_manifest(path: Path, base: BaseConfigs | None = None) -> ScanManifest:
    """A folder's manifest. One written before the base configs were recorded in it (schema 1) gets
    ``base``, or the configs as they are today."""
    try:
        raw = json.loads(path.read_text())
    except ValueError as exc:
        raise TriggerError(f"{path} is not readable JSON ({exc}); restore it or start the scan in another --out") \
            from None
    if isinstance(raw, dict) and "base" not in raw and isinstance(raw.get("scan"), dict):
        raw = {**raw, "base": base or read_base(recorded_scan_config(raw["scan"], source=str(path)))}
    return validate_config(raw, ScanManifest, source=str(path))


def load_scan(out_dir: str | Path) -> ScanManifest:
    """The manifest of a scan folder: its scan config (``.scan_config()``) and base configs."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise TriggerError(f"{out_dir} is not a scan folder (no {MANIFEST}); pass the --out of `trigger scan`")
    return read_manifest(path)
