"""The calibration data set: published hls4ml designs with a committed synthesis report.

One YAML file per design in ``tests/data/published/`` (schema in docs/estimator.md, "Calibration
data set"): where the report comes from (repository, 40-hex commit, path), tool, part, clock,
the hls4ml configuration as far as it is known, the C-synthesis figures and, where a
``vivado_synth.rpt`` was published, the post-synthesis figures. Numbers only, with their source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trigger.errors import TriggerError

Count = Field(ge=0, strict=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    repo: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    report: str = Field(min_length=1)
    post_synth_report: str | None = None
    post_synth_tool: str | None = None
    model: str | None = None
    note: str = ""


class Tool(_Strict):
    name: Literal["Vivado HLS", "Vitis HLS"]
    version: str


class HlsConfig(_Strict):
    strategy: Literal["Latency", "Resource"] | None = None
    reuse_factor: int | None = Field(default=None, ge=1)
    precision: str | None = None
    io_type: Literal["io_parallel", "io_stream"] | None = None


class CSynth(_Strict):
    latency_min: int = Count
    latency_max: int = Count
    interval_min: int = Count
    interval_max: int = Count
    DSP: int = Count
    LUT: int = Field(gt=0, strict=True)
    FF: int = Field(gt=0, strict=True)
    BRAM_18K: int = Count


class PostSynth(_Strict):
    LUT: int = Field(gt=0, strict=True)
    FF: int = Field(gt=0, strict=True)
    DSP: int = Count
    BRAM_18K: int = Count


class PublishedDesign(_Strict):
    """One published design: provenance, configuration and the synthesis figures."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    source: Source
    weights: Literal["trained", "random"]
    tool: Tool
    part: str
    clock_period_ns: float = Field(gt=0)
    estimated_clock_ns: float | None = Field(default=None, gt=0)
    hls4ml: HlsConfig
    csynth: CSynth
    post_synth: PostSynth | None = None


def load_design(path: Path) -> PublishedDesign:
    """One record; a malformed file is a one-line :class:`TriggerError` naming the file and key."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TriggerError(f"published design {path}: cannot read YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise TriggerError(f"published design {path}: expected a mapping of keys, got {type(raw).__name__}")
    try:
        design = PublishedDesign.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"]) or "(record)"
        raise TriggerError(f"published design {path}: key {key}: {err['msg']}") from None
    if design.name != path.stem:
        raise TriggerError(f"published design {path}: key name: '{design.name}' differs from the file name")
    return design


def load_published(directory: str | Path) -> list[PublishedDesign]:
    """Every ``*.yaml`` record in ``directory``, sorted by name."""
    folder = Path(directory)
    if not folder.is_dir():
        raise TriggerError(f"published designs folder {folder} not found")
    return [load_design(path) for path in sorted(folder.glob("*.yaml"))]
