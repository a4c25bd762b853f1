"""Typed contracts: the files one stage writes and another reads, as pydantic models.

- :class:`ModelMeta`: the ``trigger`` attribute of a model file (written by train and compress; read
  by compress, synth, csim and the reference models). :meth:`ModelMeta.split` is the one place that
  rebuilds the model's train / validation / test split.
- :class:`TrainMetrics`: ``metrics.json`` of ``trigger train``.
- :class:`CompressReport`: ``OUT.json`` of ``trigger compress``.
- :class:`FirmwareReport`: ``report.json`` of ``trigger synth`` (read by ``trigger report``, the
  reference models and the demo); its ``estimate`` block is :class:`EstimateReport`.
- :class:`RtlReport`: ``report.json`` of ``trigger rtl``.
- :class:`TrialRecord`: ``trials/<id>/trial.json`` of ``trigger scan``.

Each carries ``schema_version``. A file without one was written before the contracts existed: it is
read if its fields fit the schema, else refused with one line naming the file and what to do. A file
with a newer ``schema_version`` than this code knows is refused the same way. Every section is a
typed model; only what is keyed by a name (a layer, a class, a scanned parameter) is a dict, of
typed values. Sections written by libraries (:class:`Part`) keep a key this code does not declare.

``python -m trigger.contracts`` writes the JSON Schema of each to ``docs/schemas/<name>.schema.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trigger.config import DistillSection, ModelConfig, PruningSection, QuantSection, TrainSection
from trigger.data.splits import split_indices
from trigger.errors import TriggerError
from trigger.runtime import jsonable, run_main

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"

#: The resources every latency/resource figure reports, in this order (vendor report or estimate).
RESOURCE_KEYS = ("DSP", "LUT", "FF", "BRAM_18K")

Num = Union[int, float]  # kept as written: an int stays an int, so files round-trip exactly
#: The quantizers of a model by layer, then by role (kernel, bias, activation), as QKeras strings.
QuantizerBits = dict[str, dict[str, str]]
T = TypeVar("T", bound="Contract")


class Part(BaseModel):
    """A section of a contract: declared fields typed, unknown keys kept (sections written by
    libraries that may add a figure; the contract's version covers the declared ones)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=(), populate_by_name=True)


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
        body = self.model_dump(exclude_unset=True, exclude={"schema_version"}, by_alias=True)
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
    bits: int | QuantizerBits | None = None
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


class LayerBops(Part):
    """One layer's bit operations (:func:`trigger.compress.model_bops`)."""

    fan_in: int
    outputs: int
    macs: int
    weight_bits: int
    activation_bits: int
    zero_fraction: float
    bops: float


class Bops(Part):
    """Teacher and student BOPs and their ratio; ``layers`` by role, then by layer name."""

    teacher: float | None = None
    student: float | None = None
    ratio: float | None = None
    layers: dict[str, dict[str, LayerBops]] = {}


class TrainMetrics(Contract):
    """``metrics.json`` of ``trigger train``: teacher, float student and student on the test split."""

    NAME: ClassVar[str] = "metrics"
    WHAT: ClassVar[str] = "metrics.json"
    REMEDY: ClassVar[str] = "retrain with `trigger train`"

    task: Literal["classification", "anomaly"]
    teacher: TaskMetrics
    student: TaskMetrics
    data: TrainData
    config: ModelConfig
    seed: int
    student_bits: QuantizerBits
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


class ModelBops(Part):
    """:func:`trigger.compress.model_bops` of one model: per layer, the total, the bits of a float."""

    layers: dict[str, LayerBops] = {}
    total: float
    float_bits: int | None = None


class CompressBops(Part):
    teacher: ModelBops
    student: ModelBops
    ratio: float | None = None


class CompressSettings(Part):
    """The compress config's settings that shaped the student (sections of :class:`CompressConfig`)."""

    quantization: QuantSection
    pruning: PruningSection
    distillation: DistillSection
    train: TrainSection
    seed: int


class CompressTraining(Part):
    objective: str
    distilled: bool
    best_epoch: int
    epochs_run: int
    history: dict[str, list[float]] = {}


class CompressReport(Contract):
    """``OUT.json`` of ``trigger compress``: teacher vs student on the test split, sparsity, bits, BOPs."""

    NAME: ClassVar[str] = "compress_report"
    WHAT: ClassVar[str] = "compress report"
    REMEDY: ClassVar[str] = "rerun `trigger compress`"

    teacher: TaskMetrics
    student: TaskMetrics
    sparsity: CompressSparsity
    bits: QuantizerBits
    bops: CompressBops
    task: Literal["classification", "anomaly"]
    model: str
    data: CompressData
    config: CompressSettings
    training: CompressTraining


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


class Agreement(Part):
    """Two arrays compared value by value: the fraction equal, the largest difference, how many."""

    fraction_equal: Num
    max_abs_diff: Num
    n_values: int


class DifferingLayer(Part):
    """The first Keras layer whose hls4ml trace differs from the exact reference, and by how much."""

    layer: str
    hls_layer: str | None = None
    fraction_equal: Num | None = None
    max_abs_diff: Num | None = None
    n_values: int | None = None


class SoftmaxCheck(Part):
    """How the bit-exact logits of a classifier ending in a softmax agree after the argmax."""

    argmax_agreement_logits: Num | None = None
    argmax_agreement_softmax: Num | None = None  # written by versions before the ``output`` block
    max_abs_diff_probabilities: Num | None = None  # idem
    note: str | None = None


class LayerNote(Part):
    """A layer and why it is handled specially (an inexact layer, a recipe item's reason)."""

    layer: str
    reason: str


class PhysicsScores(Part):
    """One model's physics metric on the C-simulated events: accuracy and AUC for a classifier,
    AUC, efficiency and rate at the trigger threshold for an anomaly detector."""

    accuracy: Num | None = None
    mean_auc: Num | None = None
    auc: dict[str, Num | None] | None = None
    efficiency: dict[str, Num] | None = None
    rate_khz: Num | None = None


class Physics(Part):
    """The ``physics`` block of :func:`trigger.firmware.csim.physics`: QKeras, the C simulation (and
    hls4ml's softmax tables), the float teacher on the same events."""

    qkeras: PhysicsScores | None = None
    csim: PhysicsScores | None = None
    csim_softmax_table: PhysicsScores | None = None
    teacher: PhysicsScores | None = None
    metric: str | None = None
    argmax_agreement_csim_qkeras: Num | None = None
    argmax_agreement_csim_teacher: Num | None = None
    n_events: int | None = None


class Csim(Part):
    """The ``csim`` block of :func:`trigger.firmware.csim.run_csim`."""

    n_events: int | None = None
    compared: str | None = None
    compared_layer: str | None = None
    hls_layer: str | None = None
    reference: str | None = None
    float32: Agreement | None = None
    compile_seconds: Num | None = None
    run_seconds: Num | None = None
    bit_exact_fraction: Num | None = None
    max_abs_diff: Num | None = None
    n_values: int | None = None
    first_differing_layer: DifferingLayer | None = None
    softmax: SoftmaxCheck | None = None
    output: CsimOutput | None = None
    inexact_layers: list[LayerNote] = []
    physics: Physics | None = None
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


class ResourceFigures(Part):
    """Resource counts by kind (a vendor report may add URAM)."""

    DSP: Num | None = None
    LUT: Num | None = None
    FF: Num | None = None
    BRAM_18K: Num | None = None
    URAM: Num | None = None


class PartTotals(ResourceFigures):
    """The resources of the FPGA part, with where they come from (data sheet, synth config, vendor)."""

    source: str | None = None


class Latency(Part):
    min_cycles: int | None = None
    max_cycles: int | None = None
    interval: int | None = None
    interval_max: int | None = None  # a vendor report's worst-case interval
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
    URAM: Num | None = None
    source: str | None = None
    tool: str | None = None
    method: str | None = None
    percent_of_part: dict[str, Num] = {}
    available: PartTotals = PartTotals()
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


class LayerRow(Part):
    """One hls4ml layer of the report's table (:func:`trigger.firmware.synth.layer_table`): its
    precisions, reuse, exact multiplications and BOPs, pipeline stage and config index."""

    name: str
    cls: str = Field(alias="class")
    result: str | None = None
    accum: str | None = None
    weight: str | None = None
    bias: str | None = None
    reuse: int | None = None
    output_shape: list[int] | None = None
    weights: int | None = None
    nonzero_weights: int | None = None
    multiplications: int | None = None
    weight_bits: int | None = None
    input_bits: int | None = None
    bops: Num | None = None
    stage: int | None = None
    index: int | None = None


class RecipeItem(Part):
    """One conversion fix applied (:attr:`trigger.firmware.convert.Conversion.recipe`)."""

    layer: str
    action: str
    why: str


class EstimateLayer(Part):
    """One layer of the estimate (:class:`trigger.firmware.estimate.LayerEstimate`)."""

    name: str
    cls: str = Field(alias="class")
    cycles: int
    interval: int
    mults: int
    DSP: int
    LUT: int
    FF: int
    BRAM_18K: int
    warning: str | None = None
    modelled: bool | None = None


class EstimateReport(Part):
    """The analytic estimate (:meth:`trigger.firmware.estimate.Estimate.report`): its C-synthesis
    ``latency`` and ``resources``, per layer, both targets with their uncertainty, the calibration,
    the structural features a refit needs and the layers no rule models."""

    source: Literal["estimate"] = "estimate"
    method: str | None = None
    latency: Latency = Latency()
    resources: Resources = Resources()
    layers: list[EstimateLayer] = []
    targets: EstimateTargets | None = None
    calibration: CalibrationUsed | None = None
    features: dict[str, Num] = {}
    not_modelled: list[str] | None = None


class VendorClock(Part):
    target_ns: Num | None = None
    uncertainty_ns: Num | None = None
    estimated_ns: Num | None = None


class VendorModule(Part):
    """One module's C-synthesis report; ``config`` is N of the ``config<N>`` struct it carries."""

    name: str
    config: int | None = None
    latency: Latency = Latency()
    resources: ResourceFigures = ResourceFigures()


class PostSynth(Part):
    """Vivado's post-synthesis utilisation (:func:`trigger.firmware.vendor.parse_vivado_synth_rpt`)."""

    source: str | None = None
    target: Target | None = None
    tool: str | None = None
    report_file: str | None = None
    part: str | None = None
    resources: ResourceFigures = ResourceFigures()
    available: ResourceFigures = ResourceFigures()
    percent_of_part: dict[str, Num] = {}


class VendorReport(Part):
    """The C-synthesis report (:func:`trigger.firmware.vendor.read_vendor_report`) with its module
    reports and, if present, Vivado's post-synthesis utilisation."""

    source: str | None = None
    tool: str | None = None
    report_file: str | None = None
    part: str | None = None
    top: str | None = None
    clock: VendorClock | None = None
    latency: Latency = Latency()
    resources: ResourceFigures = ResourceFigures()
    available: ResourceFigures = ResourceFigures()
    modules: list[VendorModule] = []
    post_synth: PostSynth | None = None


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
    layers: list[LayerRow] = []
    csim: Csim | None = None
    latency: Latency = Latency()
    resources: Resources = Resources()
    budget: Budget | None = None
    counts: Counts | None = None
    estimate: EstimateReport | None = None
    vendor: VendorReport | None = None
    recipe: list[RecipeItem] = []
    timing: dict[str, Num] = {}
    targets: EstimateTargets | None = None
    calibration: CalibrationUsed | None = None
    comparison: VendorComparison | None = None


# --- RTL report ----------------------------------------------------------------------------------

class Strict(BaseModel):
    """A section every key of which this code writes: unknown keys refused."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class RtlModel(Strict):
    """The converted model: its file, the layer the RTL outputs, the input format it reads."""

    path: str
    output_layer: str
    cut_softmax: bool
    input_format: str           # e.g. "fixed<16,7> signed (k=1, i=6, f=9)"
    n_inputs: int
    n_outputs: int


class RtlSim(Strict):
    """Verilator simulation against the exact QKeras reference (:mod:`trigger.firmware.reference`)."""

    n_events: int
    n_values: int
    bit_exact_fraction: Num
    max_abs_diff: Num
    interpreter_bit_exact_fraction: Num   # da4ml's own interpreter of the same logic
    inputs: str
    build_seconds: Num
    run_seconds: Num


class RtlLatency(Strict):
    """Latency from the generated pipeline: one register layer per stage."""

    cycles: int
    ns: Num
    clock_ns: Num
    adder_levels_per_stage: int
    adder_levels: int
    method: str
    source: Literal["pipeline"]


class Da4mlCost(Strict):
    """da4ml's own figures of the traced logic (LUT-equivalent adder bits, pipeline registers)."""

    LUT: Num
    FF: int
    source: Literal["da4ml"]


class YosysFigures(Strict):
    """Open-source synthesis before place and route: yosys ``synth_xilinx`` cell counts."""

    LUT: int
    FF: int
    CARRY: int
    MUXF: int
    INV: int
    logic_levels: int
    cells: dict[str, int]
    family: str
    seconds: Num
    note: str
    source: Literal["yosys"]


class HlsCsim(Strict):
    """hls4ml's C simulation of its own distributed-arithmetic design of the same model, on the same
    events: ``bit_exact_fraction`` and ``max_abs_diff`` compare it with the RTL's outputs;
    ``reference_bit_exact_fraction`` compares it with the exact QKeras reference."""

    strategy: Literal["distributed_arithmetic"]
    n_values: int
    bit_exact_fraction: Num
    max_abs_diff: Num
    reference_bit_exact_fraction: Num
    compile_seconds: Num


class RtlEstimate(Strict):
    """The analytic estimator (:mod:`trigger.firmware.estimate`) on hls4ml's distributed-arithmetic
    conversion: ``synth`` (after logic synthesis, the target comparable with yosys) and ``csynth``
    resources, with the builtin calibration; HLS cycles for hls4ml's own pipelining."""

    synth: dict[str, Num]
    csynth: dict[str, Num]
    cycles: int
    calibration: str
    source: Literal["estimate"]


class RtlTimings(Strict):
    """Wall-clock seconds per step."""

    trace: Num
    write: Num
    verilator_build: Num
    simulation: Num
    yosys: Num | None = None
    hls4ml: Num | None = None


class RtlReport(Contract):
    """``report.json`` of ``trigger rtl``."""

    SCHEMA_VERSION: ClassVar[int] = 2  # v2: hls_csim, estimate, hls4ml_note
    NAME: ClassVar[str] = "rtl_report"
    WHAT: ClassVar[str] = "RTL report"
    REMEDY: ClassVar[str] = "regenerate it with `trigger rtl`"

    model: RtlModel
    rtl_sim: RtlSim
    latency: RtlLatency
    da4ml: Da4mlCost
    yosys: YosysFigures | None = None
    hls_csim: HlsCsim | None = None
    estimate: RtlEstimate | None = None
    hls4ml_note: str | None = None   # why hls_csim / estimate are absent (--no-hls, or hls4ml's refusal)
    timings: RtlTimings
    verilog: list[str]
    versions: dict[str, str]


# --- scan trial record ---------------------------------------------------------------------------

#: weight of a DSP against a LUT in the combined resource objective (HGQ's EBOPs ~ LUT + 55 x DSP;
#: ../shared/reference/published.md, "Estimators without vendor tools")
DSP_LUT_WEIGHT = 55
#: A scanned parameter's value (a dotted config path's number, name, switch or list of widths).
ParamValue = Union[bool, int, float, str, None, list[Union[int, float, str]]]


class TrialRecord(Contract):
    """One finished trial: parameters, metric, C-simulation exactness, firmware figures, budget."""

    SCHEMA_VERSION: ClassVar[int] = 3  # 2: peak_rss_mb; 3: bops
    NAME: ClassVar[str] = "scan_trial"
    WHAT: ClassVar[str] = "trial.json"
    REMEDY: ClassVar[str] = "delete the trial's folder and resume the scan"

    number: int
    status: Literal["complete", "failed"]
    params: dict[str, ParamValue]
    error: str | None = None
    metric_name: str | None = None
    metric: float | None = None
    teacher_metric: float | None = None
    bops: float | None = None  # the student's bit operations, from its IR (trigger.compress.model_bops)
    csim_bit_exact: float | None = None
    latency_cycles: int | None = None
    latency_ns: float | None = None
    interval: int | None = None
    DSP: float | None = None
    LUT: float | None = None
    FF: float | None = None
    BRAM_18K: float | None = None
    figures_source: str | None = None
    fits_budget: bool | None = None  # the nominal figures fit (budget.fits)
    budget_verdict: str | None = None  # fits / fits within the uncertainty / does not fit
    budget_note: str | None = None
    wall_s: float = 0.0
    peak_rss_mb: float | None = None  # the trial process's peak resident memory
    worker: str = ""
    seed: int = 0
    student: str | None = None  # the student's model.h5, relative to the scan folder
    report: str | None = None  # its firmware report.json, relative to the scan folder

    @property
    def cost(self) -> float | None:
        """LUT + 55 x DSP (the combined resource objective)."""
        if self.LUT is None or self.DSP is None:
            return None
        return float(self.LUT + DSP_LUT_WEIGHT * self.DSP)


CONTRACTS: tuple[type[Contract], ...] = (ModelMeta, TrainMetrics, CompressReport, FirmwareReport, RtlReport,
                                         TrialRecord)


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

    def run() -> None:
        for written in write_schemas(args.directory):
            print(f"wrote {written}")

    return run_main("python -m trigger.contracts", run)


if __name__ == "__main__":
    raise SystemExit(main())
