"""Typed contracts: the files one stage writes and another reads, as pydantic models.

- :class:`ModelMeta`: the ``trigger`` attribute of a model file (written by train and compress; read
  by compress, synth, csim and the reference models). :meth:`ModelMeta.split` is the one place that
  rebuilds the model's train / validation / test split.
- :class:`TrainMetrics`: ``metrics.json`` of ``trigger train``.
- :class:`CompressReport`: ``OUT.json`` of ``trigger compress``.
- :class:`FirmwareReport`: ``report.json`` of ``trigger synth`` (read by ``trigger report``, the
  reference models and the demo).

Each carries ``schema_version``. A file without one was written before the contracts existed: it is
read if its fields fit the schema, else refused with one line naming the file and what to do. A file
with a newer ``schema_version`` than this code knows is refused the same way. Open-ended parts
(per-layer tables, per-class dicts, the estimator's breakdown) are typed as dicts.

``python -m trigger.contracts`` writes the JSON Schema of each to ``docs/schemas/<name>.schema.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from trigger.data.splits import split_indices
from trigger.errors import TriggerError
from trigger.runtime import jsonable

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"

#: The resources every latency/resource figure reports, in this order (vendor report or estimate).
RESOURCE_KEYS = ("DSP", "LUT", "FF", "BRAM_18K")

Num = Union[int, float]  # kept as written: an int stays an int, so files round-trip exactly
T = TypeVar("T", bound="Contract")


class Part(BaseModel):
    """A section of a contract: declared fields typed, unknown keys kept (sections written by
    libraries that may add a figure; the contract's version covers the declared ones)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access for keys that are optional in the file."""
        value = getattr(self, key, None)
        if value is None and self.model_extra:
            value = self.model_extra.get(key)
        return default if value is None else value


class Contract(BaseModel):
    """Base of every top-level contract: ``schema_version`` first, unknown top-level keys refused."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    SCHEMA_VERSION: ClassVar[int] = 1
    NAME: ClassVar[str] = "contract"
    WHAT: ClassVar[str] = "file"
    REMEDY: ClassVar[str] = "regenerate it with this version of trigger"

    schema_version: int = 1

    @classmethod
    def from_dict(cls: type[T], raw: Any, *, source: str) -> T:
        """Validate a parsed file; one-line :class:`TriggerError` naming ``source`` if it does not fit."""
        if not isinstance(raw, dict):
            raise TriggerError(f"{source} is not a {cls.WHAT} (expected a JSON object); {cls.REMEDY}")
        version = raw.get("schema_version")
        if isinstance(version, int) and version > cls.SCHEMA_VERSION:
            raise TriggerError(f"{source} has {cls.WHAT} schema_version {version}, newer than this trigger reads "
                               f"({cls.SCHEMA_VERSION}); update trigger or {cls.REMEDY}")
        try:
            return cls.model_validate(jsonable(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "<top level>"
            age = "written before schema versions and " if version is None else ""
            raise TriggerError(f"{source}: {age}does not fit the {cls.WHAT} schema v{cls.SCHEMA_VERSION} "
                               f"(key '{key}': {err['msg']}); {cls.REMEDY}") from None

    @classmethod
    def read(cls: type[T], path: str | Path) -> T:
        """Read and validate a JSON file of this contract."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise TriggerError(f"{path} not found; {cls.REMEDY}") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise TriggerError(f"{path} is not valid JSON ({exc}); {cls.REMEDY}") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def build(cls: type[T], **fields: Any) -> T:
        """A contract from values computed by a stage (numpy values converted as in every JSON output)."""
        return cls.model_validate(jsonable(fields))

    def to_dict(self) -> dict[str, Any]:
        """The file's content: ``schema_version`` first, then the fields that were given, in order."""
        body = self.model_dump(exclude_unset=True, exclude={"schema_version"})
        return {"schema_version": self.SCHEMA_VERSION, **body}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=indent) + "\n"


# --- model metadata ------------------------------------------------------------------------------

class ModelMeta(Contract):
    """The ``trigger`` attribute of a model file: what the model is, which data it reads, its input
    transform ``x' = (x - input_offset) * input_scale`` and the split it was trained on."""

    NAME: ClassVar[str] = "model_meta"
    WHAT: ClassVar[str] = "model metadata"
    REMEDY: ClassVar[str] = "rewrite the model with `trigger train` or `trigger compress`"

    family: str | None = None
    task: Literal["classification", "anomaly"] | None = None
    view: str | None = None
    class_names: list[str] | None = None
    input_offset: list[float] | None = None
    input_scale: list[float] | None = None
    input_transform: str | None = None
    config: str | None = None
    seed: int | None = None
    val_fraction: float | None = None
    test_fraction: float | None = None
    data_file: str | None = None
    role: str | None = None
    bits: int | dict[str, dict[str, Any]] | None = None
    input_bits: int | None = None
    input_integer: int | None = None
    sparsity: float | dict[str, float] | None = None
    student_init: str | None = None
    teacher_file: str | None = None
    example: bool | None = None

    @property
    def records_split(self) -> bool:
        """True if the file records its split (written by ``trigger train`` or ``trigger compress``)."""
        return self.val_fraction is not None or self.test_fraction is not None or self.seed is not None

    def split(self, n_events: int, *, source: str = "the model file") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(train, validation, test) indices of the ``n_events`` of the model's data, exactly as the
        model was trained (:func:`trigger.data.splits.split_indices`). There is no default seed: a
        file that records only part of its split is refused."""
        missing = [k for k in ("seed", "val_fraction", "test_fraction") if getattr(self, k) is None]
        if missing:
            raise TriggerError(f"{source} records no {', '.join(missing)} of its data split; rewrite the model "
                               "with `trigger train` or `trigger compress`")
        return split_indices(n_events, self.val_fraction, self.test_fraction, self.seed)

    def prepare_inputs(self, x: np.ndarray) -> np.ndarray:
        """The model's fixed input transform ``(x - input_offset) * input_scale`` in float32."""
        x = np.asarray(x, dtype=np.float32)
        for name in ("input_offset", "input_scale"):  # a damaged or foreign model file's metadata
            values = getattr(self, name)
            if values is not None and len(values) not in (1, x.shape[-1] if x.ndim else 1):
                raise TriggerError(f"the model file's metadata gives {len(values)} values of {name} but its inputs "
                                   f"have {x.shape[-1] if x.ndim else 1} features; pass the data the model was "
                                   "trained on, or rewrite the model file with `trigger train` or `trigger compress`")
        if self.input_offset is not None:
            x = x - np.asarray(self.input_offset, dtype=np.float32)
        if self.input_scale is not None:
            x = x * np.asarray(self.input_scale, dtype=np.float32)
        return x.astype(np.float32)

    def same_transform(self, other: "ModelMeta | None") -> bool:
        other = other or ModelMeta()
        return self.input_offset == other.input_offset and self.input_scale == other.input_scale


# --- metrics -------------------------------------------------------------------------------------

class TaskMetrics(Part):
    """Metrics of one model on labelled events (:func:`trigger.report.metrics.evaluate`): accuracy,
    AUC and rejection per class for a tagger; AUC and efficiency at the trigger rate per signal."""

    accuracy: float | None = None
    auc: dict[str, float | None] = {}
    rejection: dict[str, dict[str, float | None]] | None = None
    n_events: int | None = None
    efficiency: dict[str, float] | None = None
    threshold: float | None = None
    target_rate_khz: float | None = None
    rate_resolved_khz: float | None = None
    target_fpr: float | None = None
    fpr_used: float | None = None
    n_background: int | None = None
    resolved: bool | None = None
    mean_auc: float | None = None


class TrainData(Part):
    file: str
    kind: str
    view: str
    class_names: list[str]
    input_shape: list[int]
    input_transform: str
    n_train: int
    n_val: int
    n_test: int
    val_fraction: float
    test_fraction: float
    train_background_only: bool


class StudentTraining(Part):
    objective: str
    distilled: bool
    best_epoch: int
    sparsity_targets: dict[str, float]
    init: str


class Bops(Part):
    teacher: float | None = None
    student: float | None = None
    ratio: float | None = None
    layers: dict[str, Any] = {}


class TrainMetrics(Contract):
    """``metrics.json`` of ``trigger train``: teacher, float student and student on the test split."""

    NAME: ClassVar[str] = "metrics"
    WHAT: ClassVar[str] = "metrics.json"
    REMEDY: ClassVar[str] = "retrain with `trigger train`"

    task: Literal["classification", "anomaly"]
    teacher: TaskMetrics
    student: TaskMetrics
    data: TrainData
    config: dict[str, Any]
    seed: int
    student_bits: dict[str, dict[str, Any]]
    student_training: StudentTraining
    sparsity: dict[str, float]
    bops: Bops
    params: dict[str, int]
    timing_s: dict[str, float]
    student_float: TaskMetrics | None = None


# --- compress report -----------------------------------------------------------------------------

class CompressData(Part):
    file: str
    view: str
    class_names: list[str]
    n_train: int
    n_val: int
    n_test: int
    val_fraction: float
    test_fraction: float
    split_seed: int
    train_background_only: bool


class CompressSparsity(Part):
    target: float
    schedule: str
    targets: dict[str, float]
    layers: dict[str, float]
    total: float
    quantized: dict[str, float]


class CompressReport(Contract):
    """``OUT.json`` of ``trigger compress``: teacher vs student on the test split, sparsity, bits, BOPs."""

    NAME: ClassVar[str] = "compress_report"
    WHAT: ClassVar[str] = "compress report"
    REMEDY: ClassVar[str] = "rerun `trigger compress`"

    teacher: TaskMetrics
    student: TaskMetrics
    sparsity: CompressSparsity
    bits: dict[str, dict[str, Any]]
    bops: dict[str, Any]
    task: Literal["classification", "anomaly"]
    model: str
    data: CompressData
    config: dict[str, Any]
    training: dict[str, Any]


# --- firmware report -----------------------------------------------------------------------------

class ReportModel(Part):
    path: str | None = None
    name: str | None = None
    family: str | None = None
    task: str | None = None
    view: str | None = None
    params: int | None = None
    input_type: str | None = None
    class_names: list[str] | None = None


class ReportConfig(Part):
    """The :class:`trigger.config.SynthConfig` used, with hls4ml's names and the package versions."""

    backend: str | None = None
    part: str | None = None
    clock_ns: Num | None = None
    reuse: int | None = None
    strategy: str | None = None
    io: str | None = None
    parallelization_factor: int | str | None = None
    max_csim_events: int | None = None
    latency_budget_ns: Num | None = None
    interval_budget_ns: Num | None = None
    output: Literal["softmax", "logits", "argmax"] | None = None
    io_type: str | None = None
    project_name: str | None = None
    versions: dict[str, str | None] = {}


class CsimOutput(Part):
    """What the firmware outputs and how it agrees with the model there
    (:func:`trigger.firmware.csim.output_agreement`). ``kind``: ``logits``, ``argmax`` or ``softmax``
    for a classifier ending in a softmax (``SynthConfig.output``), else ``outputs`` (the model's own
    outputs, compared bit for bit)."""

    kind: Literal["logits", "argmax", "softmax", "outputs"]
    n_events: int | None = None
    bit_exact_fraction: Num | None = None
    argmax_agreement: Num | None = None
    max_abs_diff_probabilities: Num | None = None
    one_hot_fraction: Num | None = None


class Csim(Part):
    """The ``csim`` block of :func:`trigger.firmware.csim.run_csim` (sub-blocks as dicts)."""

    n_events: int | None = None
    compared: str | None = None
    compared_layer: str | None = None
    hls_layer: str | None = None
    reference: str | None = None
    float32: dict[str, Any] = {}
    compile_seconds: Num | None = None
    run_seconds: Num | None = None
    bit_exact_fraction: Num | None = None
    max_abs_diff: Num | None = None
    n_values: int | None = None
    first_differing_layer: dict[str, Any] | None = None
    softmax: dict[str, Any] | None = None
    output: CsimOutput | None = None
    inexact_layers: list[dict[str, Any]] = []
    physics: dict[str, Any] | None = None
    inputs: str | None = None


#: What a latency/resource figure predicts or reports: ``csynth`` what a C-synthesis report says,
#: ``synth`` what Vivado logic synthesis leaves (post-synthesis utilisation).
Target = Literal["csynth", "synth"]
TARGET_LABELS: dict[str, str] = {"csynth": "C-synthesis", "synth": "after logic synthesis"}


class Uncertainty(Part):
    """The uncertainty of an estimate's figures, derived from the estimator's held-out errors:
    ``cycles`` in clock cycles (absolute, +/-), each resource as a relative fraction (0.25 = +/-25 %)."""

    cycles: Num | None = None
    DSP: Num | None = None
    LUT: Num | None = None
    FF: Num | None = None
    BRAM_18K: Num | None = None


class Latency(Part):
    min_cycles: int | None = None
    max_cycles: int | None = None
    interval: int | None = None
    ns: Num | None = None
    source: str | None = None
    tool: str | None = None
    report_file: str | None = None
    method: str | None = None
    note: str | None = None
    target: Target | None = None


class Resources(Part):
    DSP: Num | None = None
    LUT: Num | None = None
    FF: Num | None = None
    BRAM_18K: Num | None = None
    source: str | None = None
    tool: str | None = None
    method: str | None = None
    percent_of_part: dict[str, Num] = {}
    available: dict[str, Any] = {}
    note: str | None = None
    target: Target | None = None
    report_file: str | None = None


class EstimateTarget(Part):
    """One labelled target of the estimate: its latency, resources (with percent of the part) and
    uncertainty."""

    latency: Latency = Latency()
    resources: Resources = Resources()
    uncertainty: Uncertainty = Uncertainty()


class EstimateTargets(Part):
    """Both targets of the estimate (:func:`trigger.firmware.synth.estimate_targets`)."""

    csynth: EstimateTarget | None = None
    synth: EstimateTarget | None = None


class CalibrationUsed(Part):
    """Which estimator calibration made the estimate: its ``name``, the ``tool`` it was fitted for
    and ``source`` (``builtin`` or the calibration file's path)."""

    name: str | None = None
    tool: str | None = None
    source: str | None = None


class ComparisonRow(Part):
    """One line of the estimate-vs-vendor table: a layer (``name``, hls4ml ``cls``, the vendor
    ``module`` that carries it) or the whole design. ``estimate`` and ``vendor`` by figure
    (``cycles``, ``interval``, DSP, LUT, FF, BRAM_18K); ``difference`` = estimate - vendor;
    ``relative`` = difference / vendor (None where the vendor figure is 0 or missing)."""

    name: str
    cls: str | None = None
    module: str | None = None
    estimate: dict[str, Num | None] = {}
    vendor: dict[str, Num | None] = {}
    difference: dict[str, Num | None] = {}
    relative: dict[str, Num | None] = {}


class ComparisonTable(Part):
    """Estimate against one vendor report (``target`` csynth: the C-synthesis report, per layer and
    in total; ``target`` synth: Vivado's post-synthesis utilisation, in total)."""

    target: Target
    tool: str | None = None
    report_file: str | None = None
    total: ComparisonRow
    layers: list[ComparisonRow] = []
    unmatched_modules: list[str] = []
    note: str | None = None


class VendorComparison(Part):
    """The estimate against every vendor report found in the project (:func:`trigger.firmware.synth.
    compare_with_vendor`)."""

    csynth: ComparisonTable | None = None
    synth: ComparisonTable | None = None


#: The three Level-1 verdicts, best first (docs/firmware.md, "The Level-1 budget").
Verdict = Literal["fits", "fits within the uncertainty", "does not fit"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


class BudgetCheck(Part):
    """One figure against its limit: ``nominal`` and its band ``low``..``high`` (nominal -/+ the
    uncertainty; equal to ``nominal`` for vendor figures), ``limit`` and ``unit``. ``verdict``: fits
    (``high`` <= limit), does not fit (``low`` > limit), else fits within the uncertainty."""

    nominal: Num
    low: Num
    high: Num
    limit: Num
    unit: str
    verdict: Verdict


class Budget(Part):
    """The Level-1 budget check (:func:`trigger.firmware.synth.trigger_budget`). ``fits`` and the
    ``fits_*`` flags compare the nominal figures; ``verdict`` also uses the uncertainty (``checks``:
    latency, interval and each resource in percent of the part)."""

    source: str | None = None
    latency_ns: Num | None = None
    latency_budget_ns: Num | None = None
    interval_ns: Num | None = None
    interval_budget_ns: Num | None = None
    fits_latency: bool | None = None
    fits_interval: bool | None = None
    fits_part: bool | None = None
    over_part: list[str] = []
    fits: bool | None = None
    note: str | None = None
    target: Target | None = None
    verdict: Verdict | None = None
    checks: dict[str, BudgetCheck] = {}


class Counts(Part):
    multiplications: int | None = None
    bops: Num | None = None
    nonzero_weight_bits: int | None = None
    pipeline_stages: int | None = None
    note: str | None = None


class FirmwareReport(Contract):
    """``report.json`` of ``trigger synth``: model, settings, per-layer table, C simulation, latency
    and resources with their source, the Level-1 budget, exact counts.

    Schema v2 adds ``targets`` (the estimate's csynth and synth figures with their uncertainty),
    ``calibration`` (which estimator calibration was used), ``comparison`` (estimate against the
    vendor reports, per layer), ``target`` on latency/resources and the budget's ``verdict`` and
    ``checks``. A v1 file reads unchanged (every added key is optional)."""

    SCHEMA_VERSION: ClassVar[int] = 2
    NAME: ClassVar[str] = "firmware_report"
    WHAT: ClassVar[str] = "report.json"
    REMEDY: ClassVar[str] = "rerun `trigger synth` with --force"

    model: ReportModel = ReportModel()
    config: ReportConfig = ReportConfig()
    layers: list[dict[str, Any]] = []
    csim: Csim | None = None
    latency: Latency = Latency()
    resources: Resources = Resources()
    budget: Budget | None = None
    counts: Counts | None = None
    estimate: dict[str, Any] | None = None
    vendor: dict[str, Any] | None = None
    recipe: list[dict[str, Any]] = []
    timing: dict[str, Num] = {}
    targets: EstimateTargets | None = None
    calibration: CalibrationUsed | None = None
    comparison: VendorComparison | None = None


CONTRACTS: tuple[type[Contract], ...] = (ModelMeta, TrainMetrics, CompressReport, FirmwareReport)


def json_schemas() -> dict[str, str]:
    """The JSON Schema text of every contract, by file name under ``docs/schemas/``."""
    return {f"{c.NAME}.schema.json": json.dumps(c.model_json_schema(), indent=2) + "\n" for c in CONTRACTS}


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write :func:`json_schemas` into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in json_schemas().items():
        (directory / name).write_text(text)
        paths.append(directory / name)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m trigger.contracts [DIR]``: write the JSON schemas (default docs/schemas/)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m trigger.contracts", description=main.__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=SCHEMA_DIR, help="where to write them")
    args = parser.parse_args(argv)
    for written in write_schemas(args.directory):
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
