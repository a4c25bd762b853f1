"""The per-layer rule registry, the per-layer result and the graph accessors the rules share.

A rule is a function ``(layer, ctx) -> LayerEstimate`` registered for hls4ml layer class names
with :func:`layer_handler`, the way hls4ml registers its converter handlers::

    @layer_handler("Dense")
    def dense(layer, ctx): ...

A rule raises :class:`NotModelled` for what the model genuinely does not cover; the layer is then
reported with zero cost and a warning. Any other exception is a bug and propagates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from trigger.errors import TriggerError
from trigger.firmware.estimate.products import Device, ToolProfile
from trigger.firmware.precision import bit_width


class NotModelled(TriggerError):
    """A layer (or a configuration of it) the estimator has no model for."""


@dataclass
class LayerEstimate:
    """Estimated cost of one hls4ml layer.

    A rule fills the structural quantities ``lut_logic`` (one LUT per adder, comparator or mux
    bit, SRL and table LUTs), ``lut_table`` (index and output bits of table activations),
    ``lut_mult_bits`` (variable bits x constant bits of its LUT
    multipliers), ``ff_bits`` (register bits: inputs, FIFOs, activations) and ``ff_adder_bits``
    (the pipeline registers of products and adder trees, whose number per bit depends on the tool
    generation); :func:`.model.estimate_model` turns them into
    ``LUT`` and ``FF`` with the calibration's fitted factors (:mod:`.calibration`).
    """

    name: str
    cls: str
    cycles: int = 0
    interval: int = 1
    mults: int = 0
    DSP: int = 0
    LUT: int = 0
    FF: int = 0
    BRAM_18K: int = 0
    lut_logic: float = 0.0
    lut_table: float = 0.0
    lut_mult_bits: float = 0.0
    ff_bits: float = 0.0
    ff_adder_bits: float = 0.0
    #: of ``lut_logic``, the part that is da4ml's kernel cost (distributed arithmetic; all copies),
    #: which the yosys comparison reads apart (:mod:`.yosys_records`)
    lut_da: float = 0.0
    #: 1 on the layer that carries the top level's fixed control logic (the model input)
    top: float = 0.0
    #: cycles of a streaming layer that overlap with the other layers (io_stream dataflow)
    stream_cycles: int = 0
    warning: str | None = None
    #: False for a layer no rule models (:class:`NotModelled`): its zero cost makes totals lower bounds
    modelled: bool = True

    def to_dict(self) -> dict:
        """The layer's entry in the report's ``layers`` list."""
        out = {"name": self.name, "class": self.cls, "cycles": int(self.cycles),
               "interval": int(self.interval), "mults": int(self.mults), "DSP": int(self.DSP),
               "LUT": int(self.LUT), "FF": int(self.FF), "BRAM_18K": int(self.BRAM_18K)}
        if self.warning:
            out["warning"] = self.warning
        if not self.modelled:
            out["modelled"] = False
        return out


@dataclass
class Ctx:
    """Model-wide settings every rule needs."""

    clock_ns: float
    clock_eff_ns: float  # period minus uncertainty: what the adders may use
    io_type: str
    dev: Device
    profile: ToolProfile


Handler = Callable[[Any, Ctx], LayerEstimate]


@dataclass(frozen=True)
class Rule:
    """A registered handler; ``elementwise`` rules get one stream beat per pixel in io_stream."""

    func: Handler
    elementwise: bool = False


#: hls4ml layer class name -> rule. Filled by :func:`layer_handler` when the rule modules
#: (``dense``, ``elementwise``) are imported, which :mod:`.model` does.
HANDLERS: dict[str, Rule] = {}

#: Layers that cost nothing (wiring, or removed by HLS).
FREE_CLASSES = {
    "Input", "InputLayer", "Reshape", "Flatten", "Permute", "Transpose", "Dropout", "Repack",
    "Concatenate", "Constant", "Linear", "Identity", "Cropping1D", "Cropping2D", "Clone",
    "BroadcastStream",
}

#: Subclasses of handled layers whose hardware differs; listed so they warn instead of being
#: estimated as their base class.
NOT_MODELLED = ("Depthwise", "Separable", "Einsum", "GarNet", "LayerNormalization", "Embedding",
                "SimpleRNN", "LSTM", "GRU", "TimeDistributed", "Bidirectional")


def layer_handler(*class_names: str, elementwise: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated function as the rule for these hls4ml layer class names."""
    def register(func: Handler) -> Handler:
        for name in class_names:
            if name in HANDLERS:  # two rules for one class would silently shadow each other
                raise ValueError(f"layer class {name} already has the rule {HANDLERS[name].func.__name__}")
            HANDLERS[name] = Rule(func, elementwise)
        return func
    return register


def is_free(layer: Any) -> bool:
    """True for layers that cost nothing (the class or any base class is in FREE_CLASSES)."""
    names = {k.__name__ for k in type(layer).__mro__} | {getattr(layer, "class_name", "")}
    return bool(names & FREE_CLASSES)


def handler_for(layer: Any) -> Rule:
    """The rule of a (non-free) layer: its own class first, then its base classes, then its
    ``class_name``. Raises :class:`NotModelled` when there is none or the class is listed in
    NOT_MODELLED (a subclass of a handled class, e.g. DepthwiseConv2D of Conv2D)."""
    class_name = getattr(layer, "class_name", "")
    names = [type(layer).__name__, class_name]
    if not any(word in name for name in names for word in NOT_MODELLED):
        for klass in type(layer).__mro__:
            rule = HANDLERS.get(klass.__name__)
            if rule is not None:
                return rule
        rule = HANDLERS.get(class_name)
        if rule is not None:
            return rule
    raise NotModelled(f"layer class {class_name} is not modelled")


# --- reading the graph ---------------------------------------------------------------------------

def bits(precision: Any, default: int = 16) -> int:
    """Width of a type as the estimator counts it: a missing type counts as ``default`` bits."""
    return bit_width(precision) or default


def weights(layer: Any, name: str = "weight") -> Any:
    """A layer's weight variable; NotModelled when the layer carries none under ``name``."""
    found = getattr(layer, "weights", {}).get(name)
    if found is None or getattr(found, "data", None) is None:
        raise NotModelled(f"layer class {layer.class_name} is not modelled without a '{name}' tensor")
    return found


def type_precision(layer: Any, attr: str) -> Any | None:
    """The precision of a named type attribute (``accum_t``, ``table_t``, ...), or None."""
    named = layer.get_attr(attr)
    return getattr(named, "precision", None)


def in_precision(layer: Any, index: int = 0) -> Any:
    """Precision of the layer's ``index``-th input."""
    names = list(getattr(layer, "inputs", []) or [])
    if index and index < len(names):
        var = layer.get_input_variable(names[index])
    else:
        var = layer.get_input_variable()
    return var.type.precision


def in_shape(layer: Any) -> list[int]:
    """Shape of the layer's (first) input."""
    return [int(s) for s in layer.get_input_variable().shape]


def out_var(layer: Any) -> Any:
    """The layer's output variable."""
    return layer.get_output_variable()


def out_precision(layer: Any) -> Any:
    """Precision of the layer's output."""
    return out_var(layer).type.precision


def out_size(layer: Any) -> int:
    """Number of output elements."""
    return int(np.prod(out_var(layer).shape))


def parallel_size(layer: Any, ctx: Ctx) -> int:
    """Elements processed at once: the whole tensor in io_parallel, one packed pixel (the last
    dimension) per cycle in io_stream."""
    shape = [int(v) for v in out_var(layer).shape]
    if ctx.io_type == "io_stream" and len(shape) > 1:
        return shape[-1]
    return int(np.prod(shape))


def reuse_factor(layer: Any) -> int:
    """The layer's reuse factor (1 when unset)."""
    return int(layer.get_attr("reuse_factor", 1) or 1)
