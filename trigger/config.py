"""YAML configs, validated on load; the shipped ones are package data (``trigger/configs/``, which
the repository's top-level ``configs/`` links to) and can be named instead of given as a path.

Every schema is a pydantic model that forbids unknown keys, so a misspelt key, a wrong type or a
missing required key becomes one line naming the file, the key and what was expected. Command-line
flags reach a config through :func:`apply_overrides` only (dotted keys, validated again).

Schemas:
- :class:`ModelConfig`: ``configs/<family>.yaml``, read by ``trigger train`` (data, teacher,
  student with quantization, pruning and distillation, training settings).
- :class:`SynthConfig`: ``configs/synth/*.yaml``, read by ``trigger synth``.
- :class:`CompressConfig`: ``configs/compress/*.yaml``, read by ``trigger compress``.
- :class:`ReferenceFirmwareConfig`: ``configs/reference/firmware.yaml``, read by the reference pipeline.

Wherever a config file is taken, a shipped config may be named instead (:func:`find_config`): an
existing path wins, else a shipped config of the schema's kind (``jet_mlp``, ``vitis_latency_pf64``,
``configs/synth/vitis_da.yaml`` outside the repository), else one line with the close matches.
:func:`shipped_configs`, :func:`format_config_list` and :func:`copy_config` back ``trigger configs``.
"""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trigger.errors import TriggerError

PACKAGE_DIR = Path(__file__).resolve().parent
#: The shipped configs: package data, so an installed package has them (the repository's top-level
#: ``configs/`` is a symbolic link to this folder).
CONFIG_DIR = PACKAGE_DIR / "configs"
#: The checkout's root; relative data and model paths in configs fall back to it.
REPO_ROOT = PACKAGE_DIR.parent

C = TypeVar("C", bound="ConfigModel")


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    #: The folder of :data:`CONFIG_DIR` holding the shipped configs of this schema ("" the top
    #: level), by whose names a config of this schema may be given; None: not a config file.
    shipped_folder: ClassVar[str | None] = None


# --- model zoo (trigger train) ------------------------------------------------------------------

Family = Literal["mlp", "cnn", "gnn", "autoencoder"]


class DataSection(ConfigModel):
    """Which generated data set a model trains on and how it is split."""

    kind: Literal["jets", "ad"]
    file: str = Field(description="HDF5 from `trigger data`; relative paths are from the repo root")
    view: Literal["hlf", "images", "constituents", "features"]
    val_fraction: float = Field(0.2, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    input_transform: Literal["standardize", "pow2", "none"] | None = Field(
        None, description="fixed input transform fitted on the training split (trigger.models.inputs); "
                          "default: standardize for hlf, pow2 for constituents/features, none for images")


class MLPArch(ConfigModel):
    hidden: list[int] = Field(min_length=1)
    dropout: float = Field(0.0, ge=0, lt=1)


class CNNArch(ConfigModel):
    filters: list[int] = Field(min_length=1)
    kernel_size: int = Field(3, ge=1)
    pool_size: int = Field(2, ge=1)
    dense: list[int] = Field(default_factory=list)
    batchnorm: bool = False


class GNNArch(ConfigModel):
    variant: Literal["interaction", "deepsets"]
    edge_hidden: list[int] = Field(default_factory=lambda: [16, 16])
    node_hidden: list[int] = Field(default_factory=lambda: [16, 16])
    head: list[int] = Field(default_factory=lambda: [16])


class AEArch(ConfigModel):
    variant: Literal["ae", "vae"]
    encoder: list[int] = Field(min_length=1)
    latent: int = Field(ge=1)
    decoder: list[int] = Field(default_factory=list)
    kl_weight: float = Field(0.5, ge=0, description="VAE teacher: weight of the KL term next to the MSE")


ARCH_BY_FAMILY: dict[str, type[ConfigModel]] = {
    "mlp": MLPArch, "cnn": CNNArch, "gnn": GNNArch, "autoencoder": AEArch,
}


class LayerQuant(ConfigModel):
    """Bits of one layer's weights/biases (quantized_bits, alpha=1) and activation (quantized_relu)."""

    weight_bits: int | None = Field(None, ge=2, le=32)
    weight_integer: int | None = Field(None, ge=0)
    activation_bits: int | None = Field(None, ge=2, le=32)
    activation_integer: int | None = Field(None, ge=0)


class QuantSection(ConfigModel):
    weight_bits: int = Field(6, ge=2, le=32)
    weight_integer: int = Field(0, ge=0)
    activation_bits: int = Field(6, ge=2, le=32)
    activation_integer: int = Field(0, ge=0)
    input_bits: int = Field(16, ge=2, le=32)
    input_integer: int = Field(6, ge=0)
    layers: dict[str, LayerQuant] = Field(default_factory=dict)


class PruningSection(ConfigModel):
    sparsity: float = Field(0.0, ge=0, lt=1)
    schedule: Literal["constant", "polynomial"] = "constant"
    begin_fraction: float = Field(0.2, ge=0, lt=1, description="fraction of training before pruning")
    end_fraction: float = Field(0.8, gt=0, le=1)
    frequency: int = Field(100, ge=1)
    prune_output: bool = False
    layers: dict[str, float] = Field(default_factory=dict, description="per-layer target sparsity by layer name")


class DistillSection(ConfigModel):
    enabled: bool = True
    alpha: float = Field(0.1, ge=0, le=1, description="weight of the label loss")
    temperature: float = Field(4.0, gt=0)


class TrainSection(ConfigModel):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    patience: int = Field(5, ge=1)


class StudentSection(ConfigModel):
    architecture: dict[str, Any]
    quantization: QuantSection = Field(default_factory=QuantSection)
    pruning: PruningSection = Field(default_factory=PruningSection)
    distillation: DistillSection = Field(default_factory=DistillSection)
    train: TrainSection | None = None


class TeacherSection(ConfigModel):
    architecture: dict[str, Any]
    train: TrainSection | None = None


class ModelConfig(ConfigModel):
    """One model family: its data, float teacher, QKeras student and training settings."""

    shipped_folder: ClassVar[str | None] = ""
    name: str
    family: Family
    seed: int = 42
    data: DataSection
    teacher: TeacherSection
    student: StudentSection
    train: TrainSection = Field(default_factory=TrainSection)

    @model_validator(mode="after")
    def _check_architectures(self) -> "ModelConfig":
        arch = ARCH_BY_FAMILY[self.family]
        for role in ("teacher", "student"):
            raw = getattr(self, role).architecture
            try:
                arch.model_validate(raw)
            except ValidationError as exc:
                raise _prefixed(exc, (role, "architecture")) from None
        return self

    def architecture(self, role: Literal["teacher", "student"]) -> ConfigModel:
        """The validated, family-specific architecture of the teacher or the student."""
        return ARCH_BY_FAMILY[self.family].model_validate(getattr(self, role).architecture)

    def train_settings(self, role: Literal["teacher", "student"]) -> TrainSection:
        return getattr(self, role).train or self.train


class _PrefixedError(ValueError):
    def __init__(self, exc: ValidationError, prefix: tuple[str, ...]):
        self.errors_ = [dict(e, loc=prefix + tuple(e["loc"])) for e in exc.errors()]
        super().__init__(_describe(_root_cause(self.errors_)))


def _prefixed(exc: ValidationError, prefix: tuple[str, ...]) -> _PrefixedError:
    return _PrefixedError(exc, prefix)


# --- firmware (trigger synth) and compression (trigger compress) ------------------------------

class PartResources(ConfigModel):
    """The totals of an FPGA part that ``trigger`` does not know (BRAM_18K = 2 x BRAM36)."""

    DSP: int = Field(ge=1)
    LUT: int = Field(ge=1)
    FF: int = Field(ge=1)
    BRAM_18K: int = Field(ge=0)


class SynthConfig(ConfigModel):
    """hls4ml conversion settings; every CLI flag of ``trigger synth`` overrides its key."""

    shipped_folder: ClassVar[str | None] = "synth"
    backend: Literal["Vitis", "Vivado"] = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    # the part's totals, for a part not in trigger.firmware.synth.PART_RESOURCES (a part neither
    # there nor given here is refused); used by the Level-1 budget's resource check
    part_resources: PartResources | None = None
    clock_ns: float = Field(5.0, gt=0)
    reuse: int = Field(1, ge=1)
    strategy: Literal["Latency", "Resource", "distributed_arithmetic"] = "Latency"
    io: Literal["parallel", "stream"] = "parallel"
    # io_parallel convolutions (and Dense layers applied per position, which hls4ml turns into
    # pointwise convolutions) compute this many output positions per cycle: hls4ml's
    # ParallelizationFactor, rounded by hls4ml to a divisor of the positions. 'full' computes every
    # position at once (interval 1, the Level-1 choice); 1 is hls4ml's own default, one position per
    # cycle, so the interval is the number of positions.
    parallelization_factor: Annotated[int, Field(ge=1)] | Literal["full"] = "full"
    max_csim_events: int = Field(2000, ge=1)
    # what the firmware of a classifier ending in a softmax layer outputs (docs/firmware.md, "The
    # firmware's output"): 'logits' leaves the softmax out (bit-exact; decisions on the logits),
    # 'argmax' a one-hot of the largest logit (hls4ml's argmax implementation), 'softmax' the
    # probabilities through lookup tables sized for argmax agreement >= 0.999 and |dp| <= 2^-8
    output: Literal["softmax", "logits", "argmax"] = "logits"

    # the Level-1 budget a design is checked against: ~100 ns in total, a new event every 25 ns
    latency_budget_ns: float = Field(100.0, gt=0)
    interval_budget_ns: float = Field(25.0, gt=0)


class ReferenceFirmwareConfig(ConfigModel):
    """``configs/reference/firmware.yaml``: the firmware config file of each reference model, by name."""

    shipped_folder: ClassVar[str | None] = "reference"
    firmware: dict[str, str] = Field(min_length=1)


class CompressConfig(ConfigModel):
    """``trigger compress``: bits, pruning, distillation and training of the student."""

    shipped_folder: ClassVar[str | None] = "compress"
    quantization: QuantSection = Field(default_factory=QuantSection)
    pruning: PruningSection = Field(default_factory=lambda: PruningSection(sparsity=0.75))
    distillation: DistillSection = Field(default_factory=DistillSection)
    train: TrainSection = Field(default_factory=TrainSection)
    seed: int = 42


# --- loading -----------------------------------------------------------------------------------

def _root_cause(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error to show: a misspelt key also makes the real key 'missing'; the spelling is the cause."""
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "<top level>"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{key}' (check the spelling; see the shipped configs for valid keys)"
    if kind == "missing":
        return f"missing required key '{key}'"
    return f"key '{key}': {err['msg']} (got {err.get('input')!r})"


def load_config(path: str | Path, schema: type[C]) -> C:
    """Read a YAML file and validate it against ``schema``.

    ``path`` may also name a shipped config of the schema's kind (:func:`find_config`). Raises
    :class:`TriggerError` with one line naming the file, the key and what was expected.
    """
    path = find_config(path, schema)
    if path.is_dir():
        raise TriggerError(f"config {path} is a folder; pass a YAML file such as configs/jet_mlp.yaml")
    if not path.is_file():
        raise TriggerError(f"config file {path} not found; pass a YAML file such as configs/jet_mlp.yaml")
    try:
        raw = yaml.safe_load(path.read_text())
    except (UnicodeDecodeError, ValueError):  # binary (an .h5 passed as the config), NUL bytes
        raise TriggerError(f"{path} is not a text file; pass a YAML config such as configs/jet_mlp.yaml") from None
    except OSError as exc:
        raise TriggerError(f"cannot read config {path} ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise TriggerError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise TriggerError(f"{path}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    return validate_config(raw, schema, source=str(path))


def validate_config(raw: dict[str, Any], schema: type[C], *, source: str = "<config>") -> C:
    """Validate an already-parsed mapping; errors name ``source`` as the file."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        for e in errors:  # errors raised inside a validator carry the nested location themselves
            ctx_err = (e.get("ctx") or {}).get("error")
            if isinstance(ctx_err, _PrefixedError):
                raise TriggerError(f"{source}: {ctx_err}") from None
        raise TriggerError(f"{source}: {_describe(_root_cause(errors))}") from None


def apply_overrides(config: C, overrides: Mapping[str, Any], *, source: str = "command line") -> C:
    """``config`` with ``overrides`` applied and validated again: the one way every subcommand applies
    its command-line flags to a config.

    ``overrides`` maps dotted keys (``"quantization.weight_bits"``) to values; None means "not given"
    and is skipped. A bad value or unknown key is the usual one-line :class:`TriggerError` naming
    ``source`` and the key.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return config
    raw = config.model_dump()
    for key, value in given.items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            if node.get(part) is None:  # an absent or unset optional section (student.train: null)
                node[part] = {}
            if not isinstance(node[part], dict):
                raise TriggerError(f"{source}: key '{key}': '{part}' is not a section")
            node = node[part]
        node[last] = value
    return validate_config(raw, type(config), source=source)


def resolve_repo_path(path: str | Path) -> Path:
    """A path from a config: absolute, relative to the working directory if it exists there,
    else relative to the repository root."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    if p.parts[:1] == ("configs",):  # a shipped config named by its place in the repository
        return CONFIG_DIR.joinpath(*p.parts[1:])
    return REPO_ROOT / p


# --- shipped configs (trigger configs; a config given by name) ---------------------------------

#: The groups ``trigger configs list`` shows: (group, folder of CONFIG_DIR, how a config of it is used).
SHIPPED_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("model", "", "trigger train NAME --data FILE"),
    ("synth", "synth", "trigger synth MODEL --config NAME"),
    ("compress", "compress", "trigger compress MODEL --data FILE --config NAME"),
    ("scan", "scan", "trigger scan NAME --data FILE --out DIR"),
    ("other", "", "make reference and the benchmarks; copy by the name shown"),
)
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ShippedConfig:
    """One config shipped in the package: ``name`` is its path under ``configs/`` without
    ``.yaml`` (``jet_mlp``, ``synth/vitis_latency``), ``short`` the name within its group."""

    name: str
    group: str
    path: Path
    description: str

    @property
    def short(self) -> str:
        folder = dict((g, f) for g, f, _ in SHIPPED_GROUPS)[self.group]
        return self.name[len(folder) + 1:] if folder else self.name


def _description(path: Path, width: int = 90) -> str:
    """The first sentence of the file's leading comment (a command line in it skipped), shortened."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or (not text and words):
            break
        if text and not text.startswith("`"):
            words.append(text)
    text = " ".join(words)
    end = text.find(". ")
    text = text if end < 0 else text[:end + 1]
    return text if len(text) <= width else text[:width - 3].rsplit(" ", 1)[0] + "..."


def shipped_configs() -> list[ShippedConfig]:
    """Every shipped config, sorted by group (the order of :data:`SHIPPED_GROUPS`) and name."""
    order = [g for g, _, _ in SHIPPED_GROUPS]
    found = []
    for path in CONFIG_DIR.rglob("*"):
        if path.suffix not in _YAML_SUFFIXES or not path.is_file():
            continue
        name = path.relative_to(CONFIG_DIR).with_suffix("").as_posix()
        folder = name.split("/")[0] if "/" in name else ""
        group = "model" if not folder else (folder if folder in order[1:-1] else "other")
        found.append(ShippedConfig(name, group, path, _description(path)))
    return sorted(found, key=lambda c: (order.index(c.group), c.name))


def format_config_list() -> str:
    """The text of ``trigger configs list``: each group, how its configs are used, names and descriptions."""
    configs = shipped_configs()
    lines: list[str] = []
    for group, _, usage in SHIPPED_GROUPS:
        members = [c for c in configs if c.group == group]
        if not members:
            continue
        width = max(len(c.short) for c in members)
        lines += ["" if lines else None, f"{group} configs ({usage}):"]
        lines += [f"  {c.short:<{width}}  {c.description}".rstrip() for c in members]
    lines += ["", "`trigger configs copy NAME DIR` copies one (a scan config as scan/NAME); "
                  "a name can be given wherever a config file is taken"]
    return "\n".join(line for line in lines if line is not None)


def _relative_name(text: str) -> str:
    """A name as given, without a leading ``configs/`` and the ``.yaml`` suffix."""
    for prefix in ("configs/", "./configs/"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    for suffix in _YAML_SUFFIXES:
        if text.endswith(suffix):
            text = text[:-len(suffix)]
    return text


def _kind(folder: str) -> str:
    return "model" if folder == "" else folder


def find_config(value: str | Path, schema: type[ConfigModel]) -> Path:
    """The file a config argument names: an existing path wins; else a shipped config of the
    schema's kind (``jet_mlp``, ``vitis_latency_pf64``, ``synth/vitis_da``, ``configs/jet_mlp.yaml``);
    else one :class:`TriggerError` with the close matches."""
    path = Path(value)
    folder = schema.shipped_folder
    if path.exists() or folder is None:
        return path
    rel = _relative_name(str(value))
    candidates = [CONFIG_DIR / folder / f"{rel}.yaml"]
    if folder and rel.startswith(f"{folder}/"):
        candidates.append(CONFIG_DIR / f"{rel}.yaml")
    for candidate in candidates:
        if candidate.is_file() and CONFIG_DIR in candidate.resolve().parents:
            return candidate
    raise TriggerError(f"config {value} not found: no such file and no shipped {_kind(folder)} config of "
                       f"that name; {_suggestion(rel, folder)}; `trigger configs list` lists them")


def _suggestion(rel: str, folder: str) -> str:
    """Close matches among the shipped configs of ``folder``, or what else ``rel`` names."""
    configs = shipped_configs()
    prefix = f"{folder}/" if folder else ""
    own = [c.name[len(prefix):] for c in configs
           if c.name.startswith(prefix) and (folder or c.group == "model")]
    close = difflib.get_close_matches(rel, own, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(close)
    elsewhere = [c for c in configs if rel in (c.short, c.name)]
    if elsewhere:
        return f"{rel} is a shipped {elsewhere[0].group} config, not a {_kind(folder)} config"
    return f"the shipped {_kind(folder)} configs are " + ", ".join(own)


def find_shipped(name: str) -> ShippedConfig:
    """The shipped config ``name`` names: its full name (``scan/jet_mlp``), else a unique short name."""
    rel = _relative_name(name)
    configs = shipped_configs()
    exact = [c for c in configs if c.name == rel]
    if exact:
        return exact[0]
    by_short = [c for c in configs if c.short == rel]
    if len(by_short) == 1:
        return by_short[0]
    if by_short:
        raise TriggerError(f"{name} names several shipped configs ({', '.join(c.name for c in by_short)}); "
                           "give one of these names")
    names = [c.name for c in configs] + [c.short for c in configs]
    close = sorted(set(difflib.get_close_matches(rel, names, n=4, cutoff=0.6)))
    hint = f"did you mean {' or '.join(close)}; " if close else ""
    raise TriggerError(f"no shipped config named {name}; {hint}`trigger configs list` lists them")


def copy_config(name: str, directory: str | Path, *, force: bool = False) -> Path:
    """Copy the shipped config ``name`` into ``directory`` (created if missing), all-or-nothing;
    an existing file of that name is replaced only with ``force``. Returns the written file."""
    from trigger.runtime import atomic_path

    config = find_shipped(name)
    target = Path(directory) / config.path.name
    if target.exists() and not target.is_dir() and not force:
        raise TriggerError(f"{target} already exists; pass --force to overwrite it or copy into another folder")
    with atomic_path(target, force=force) as tmp:
        shutil.copyfile(config.path, tmp)
    return target
