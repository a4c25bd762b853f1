"""The calibration data set: published hls4ml designs with a committed synthesis report.

One YAML file per design in ``tests/data/published/`` (schema in docs/estimator.md, "Calibration
data set"): where the report comes from (repository, 40-hex commit, path), tool, part, clock,
the hls4ml configuration as far as it is known, the C-synthesis figures and, where a
``vivado_synth.rpt`` was published, the post-synthesis figures. Numbers only, with their source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trigger.errors import TriggerError
from trigger.firmware.estimate.calibration import read_yaml_record


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


class WeightSpec(_Strict):
    """How the weights of a rebuilt design are drawn (its trained weights are not committed)."""

    seed: int = 0
    #: fraction of each kernel zeroed by magnitude (pruning), except in ``unpruned`` layers
    sparsity: float = Field(default=0.0, ge=0, lt=1)
    unpruned: list[str] = Field(default_factory=list)
    #: non-zero kernel weights uniform on the signed grid k / 2**(bits-1) (QKeras quantized_bits)
    grid_bits: int | None = Field(default=None, ge=2)
    #: biases drawn from N(0, bias_std) (None: the layer's initializer)
    bias_std: float | None = Field(default=None, gt=0)


class HlsBuild(_Strict):
    """The hls4ml conversion of a rebuilt design (``config_from_keras_model`` + overrides)."""

    backend: Literal["Vivado", "Vitis"] = "Vivado"
    #: backend passed to config_from_keras_model (hls4ml's tests pass none)
    config_backend: Literal["Vivado", "Vitis"] | None = None
    granularity: Literal["model", "name"] = "model"
    default_precision: str = "fixed<16,6>"
    #: replaces every 'auto' type (hls4ml then set accumulators to the default precision)
    auto_precision: str | None = None
    strategy: Literal["Latency", "Resource"] = "Latency"
    reuse_factor: int = Field(default=1, ge=1)
    io_type: Literal["io_parallel", "io_stream"] = "io_parallel"
    part: str | None = None
    clock_period: float = Field(default=5.0, gt=0)
    softmax: str | None = None


class BuildSpec(_Strict):
    """A design rebuilt as an hls4ml ModelGraph: a Keras layer list, weights and conversion."""

    profile: Literal["modern", "vivado2019"]
    input_shape: list[int]
    #: Keras/QKeras layers in order: {"class": name, **keyword arguments}
    layers: list[dict[str, Any]] = Field(min_length=1)
    weights: WeightSpec = Field(default_factory=WeightSpec)
    hls4ml: HlsBuild = Field(default_factory=HlsBuild)


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
    #: how to rebuild it for the estimator (None: not rebuildable, ``build_note`` says why)
    build: BuildSpec | None = None
    build_note: str = ""
    #: its part in the estimator's calibration: fit (constants fitted on it) or heldout
    role: Literal["fit", "heldout"] = "heldout"

    @model_validator(mode="before")
    @classmethod
    def _not_a_yosys_record(cls, data: Any) -> Any:
        """A yosys record (:mod:`.yosys_records`) is another kind of evidence: never a vendor design."""
        if isinstance(data, dict) and data.get("source") == "yosys":
            raise ValueError("this is a yosys record (open-source synthesis of da4ml's Verilog, "
                             "tests/data/yosys/), not a vendor design; it never enters the vendor fit")
        return data


def load_design(path: Path) -> PublishedDesign:
    """One record; a malformed file is a one-line :class:`TriggerError` naming the file and key."""
    design = read_yaml_record(path, PublishedDesign, "published design", whole="(record)")
    if design.name != path.stem:
        raise TriggerError(f"published design {path}: key name: '{design.name}' differs from the file name")
    return design


def load_published(directory: str | Path) -> list[PublishedDesign]:
    """Every ``*.yaml`` record in ``directory``, sorted by name."""
    folder = Path(directory)
    if not folder.is_dir():
        raise TriggerError(f"published designs folder {folder} not found")
    return [load_design(path) for path in sorted(folder.glob("*.yaml"))]
