"""The whole-model estimate: dispatch to the layer rules, latency composition, stream FIFOs.

In io_parallel the layers run one after another (latency = sum, interval = the largest); in
io_stream they run as a dataflow (latency = the longest stream plus every layer's depth) and the
inter-layer FIFOs are charged to the layer that writes them (docs/estimator.md).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trigger.contracts import RESOURCE_KEYS, EstimateReport
from trigger.errors import TriggerError
# the rule modules register their handlers in registry.HANDLERS when imported
from trigger.firmware.estimate import dense as _dense_rules  # noqa: F401
from trigger.firmware.estimate import elementwise as _elementwise_rules  # noqa: F401
from trigger.firmware.estimate.calibration import (
    FF_ADDER_BITS, FF_BITS, LUT_LOGIC, LUT_TABLE, MULT_BITS, TOP, Calibration, load_calibration, synth_resources)
from trigger.firmware.estimate.products import (
    DEFAULT_PROFILE, FIFO_BRAM_MIN_DEPTH, PROFILES, bram18_for, device)
from trigger.firmware.estimate.registry import (  # HANDLERS, layer_handler: re-exported
    HANDLERS, Ctx, LayerEstimate, NotModelled, handler_for, is_free, layer_handler, out_var)
from trigger.firmware.estimate.timing import effective_clock_ns, parse_uncertainty
from trigger.firmware.precision import bit_width

if TYPE_CHECKING:
    from trigger.firmware.convert import Conversion

METHOD_NAME = "trigger analytic HLS model v2"
#: FFs of a shallow per-channel (Vivado HLS) stream FIFO: its valid/pointer bits
FIFO_CONTROL_FF = 2
INPUT_CLASSES = ("Input", "InputLayer")
METHOD = f"{METHOD_NAME} (docs/estimator.md)"

__all__ = ["DEFAULT_PROFILE", "HANDLERS", "METHOD", "PROFILES", "Estimate", "LayerEstimate", "NotModelled",
           "add_fifos", "estimate_model", "layer_estimate", "layer_handler"]


@dataclass
class Estimate:
    """Whole-model estimate: latency at the clock and summed resources, with per-layer detail."""

    clock_ns: float
    io_type: str
    min_cycles: int
    max_cycles: int
    interval: int
    layers: list[LayerEstimate] = field(default_factory=list)
    method: str = METHOD
    profile: str = DEFAULT_PROFILE
    calibration: Calibration | None = None
    #: "builtin" or the calibration file's path
    calibration_source: str = "builtin"

    @property
    def resources(self) -> dict[str, int]:
        """DSP, LUT, FF and BRAM_18K summed over the layers."""
        return {key: int(sum(getattr(layer, key) for layer in self.layers))
                for key in RESOURCE_KEYS}

    @property
    def not_modelled(self) -> list[str]:
        """The layers no rule models, as ``name (class)``: with any, every total is a lower bound."""
        return [f"{layer.name} ({layer.cls})" for layer in self.layers if not layer.modelled]

    @property
    def ns(self) -> float:
        """Latency in ns at the clock period."""
        return float(self.max_cycles * self.clock_ns)

    @property
    def features(self) -> dict[str, float]:
        """The structural features the calibration's linear factors apply to (what refit needs)."""
        total = {key: float(sum(getattr(layer, attr) for layer in self.layers))
                 for key, attr in ((LUT_LOGIC, "lut_logic"), (LUT_TABLE, "lut_table"), (FF_BITS, "ff_bits"),
                                   (f"{MULT_BITS}.{self.profile}", "lut_mult_bits"),
                                   (f"{FF_ADDER_BITS}.{self.profile}", "ff_adder_bits"), (TOP, "top"))}
        res = self.resources
        return {**{key: round(value, 3) for key, value in total.items()},
                "DSP": float(res["DSP"]), "BRAM_18K": float(res["BRAM_18K"]),
                "cycles": float(self.max_cycles), "interval": float(self.interval)}

    def to_dict(self) -> dict:
        """The dict the firmware stage writes into report.json (labelled ``source: estimate``).

        Top-level ``latency``/``resources`` are the ``csynth`` target; ``targets`` adds the
        ``synth`` (post-synthesis) target and each target's uncertainty.
        """
        latency = {"min_cycles": int(self.min_cycles), "max_cycles": int(self.max_cycles),
                   "interval": int(self.interval), "ns": round(self.ns, 3)}
        cal = self.calibration or load_calibration()
        csynth = self.resources
        targets = {
            "csynth": {"latency": dict(latency), "resources": dict(csynth),
                       "uncertainty": cal.uncertainty["csynth"].model_dump()},
            "synth": {"latency": dict(latency), "resources": synth_resources(cal, csynth),
                      "uncertainty": cal.uncertainty["synth"].model_dump()},
        }
        return {
            "source": "estimate",
            "method": self.method,
            "latency": latency,
            "resources": csynth,
            "layers": [layer.to_dict() for layer in self.layers],
            "targets": targets,
            "calibration": {"name": cal.name, "tool": cal.tool, "source": self.calibration_source},
            "features": self.features,
        } | ({"not_modelled": self.not_modelled} if self.not_modelled else {})

    def report(self) -> EstimateReport:
        """The estimate as its typed block of report.json (:class:`trigger.contracts.EstimateReport`)."""
        return EstimateReport.model_validate(self.to_dict())


def estimate_model(hls_model: Any, profile: str = DEFAULT_PROFILE,
                   calibration: Calibration | str | os.PathLike | None = None) -> Estimate:
    """Estimate latency and resources of a converted hls4ml model (no compile, no vendor tool).

    Reads strategy, reuse factor, IO type, clock period, precisions and weights from the graph and
    its config. Layers the model does not know are listed with zero cost and a ``warning``; an
    error in a layer rule raises. ``profile`` names the HLS tool generation whose DSP/LUT mapping
    is modelled (:data:`PROFILES`: ``"modern"`` for Vivado HLS >= 2020.1 and Vitis HLS, the
    default; ``"vivado2019"`` for Vivado HLS 2019.2, which the published jet-MLP reports come from).
    ``calibration`` is a :class:`Calibration`, the path of a calibration file, or None for the
    builtin one (docs/estimator.md, *Calibration*).
    """
    cal, cal_source = _resolve_calibration(calibration)
    if profile not in PROFILES:
        raise TriggerError(f"unknown estimator profile {profile!r}; choose one of {sorted(PROFILES)}")
    config = hls_model.config
    period = float(config.get_config_value("ClockPeriod") or 5)
    uncertainty = parse_uncertainty(config.get_config_value("ClockUncertainty"), period)
    io_type = str(config.get_config_value("IOType") or "io_parallel")
    ctx = Ctx(clock_ns=period, clock_eff_ns=effective_clock_ns(period, uncertainty), io_type=io_type,
              dev=device(str(config.get_config_value("Part") or "")), profile=PROFILES[profile])
    layers = [layer_estimate(layer, ctx) for layer in hls_model.get_layers()]
    for layer, est in zip(hls_model.get_layers(), layers):  # the top level's fixed control logic
        if getattr(layer, "class_name", "") in INPUT_CLASSES:
            est.top = 1.0
            break
    if io_type == "io_stream":
        add_fifos(hls_model, layers)
    else:
        add_input_register(hls_model, layers)
    for lay in layers:
        apply_calibration(lay, cal, profile)
    interval = max((lay.interval for lay in layers), default=1)
    if io_type == "io_stream":
        # dataflow: layers overlap; the longest stream dominates, the others add their depth
        depths = [max(0, lay.cycles - lay.stream_cycles) for lay in layers]
        total = sum(depths) + max((lay.stream_cycles for lay in layers), default=0)
    else:
        total = sum(lay.cycles for lay in layers)
    return Estimate(clock_ns=period, io_type=io_type, min_cycles=int(total), max_cycles=int(total),
                    interval=int(max(1, interval)), layers=layers,
                    method=f"{METHOD_NAME}, profile {profile} (docs/estimator.md)", profile=profile,
                    calibration=cal, calibration_source=cal_source)


def _resolve_calibration(calibration: Calibration | str | os.PathLike | None) -> tuple[Calibration, str]:
    """The calibration to use and where it came from ("builtin" or a file path)."""
    if calibration is None:
        return load_calibration(), "builtin"
    if isinstance(calibration, Calibration):
        return calibration, calibration.name
    return load_calibration(calibration), str(calibration)


def apply_calibration(lay: LayerEstimate, cal: Calibration, profile: str) -> None:
    """A layer's LUT and FF from its structural quantities and the calibration's factors."""
    if profile not in cal.lut_per_mult_bit or profile not in cal.ff_per_adder_bit:
        raise TriggerError(f"calibration {cal.name} has no LUT factor for the estimator profile {profile!r}")
    lay.LUT = int(round(cal.lut_per_logic * lay.lut_logic + cal.lut_per_table_bit * lay.lut_table
                        + cal.lut_per_mult_bit[profile] * lay.lut_mult_bits + cal.lut_per_top * lay.top))
    lay.FF = int(round(cal.ff_per_bit * lay.ff_bits + cal.ff_per_adder_bit[profile] * lay.ff_adder_bits))


def layer_estimate(layer: Any, ctx: Ctx) -> LayerEstimate:
    """One layer through its rule; free layers cost nothing, NotModelled ones warn at zero cost."""
    if is_free(layer):
        return LayerEstimate(name=layer.name, cls=layer.class_name)
    try:
        rule = handler_for(layer)
        est = rule.func(layer, ctx)
    except NotModelled as why:  # only this: any other error in a rule is a bug and must surface
        return LayerEstimate(name=layer.name, cls=layer.class_name, modelled=False,
                             warning=f"{why}; counted as zero cost")
    if ctx.io_type == "io_stream" and rule.elementwise and est.stream_cycles == 0:
        # one packed pixel per cycle through the stream
        shape = [int(s) for s in out_var(layer).shape]
        beats = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        est.stream_cycles = beats
        est.interval = max(est.interval, beats)
        est.cycles += beats
    return est


def add_input_register(hls_model: Any, layers: list[LayerEstimate]) -> None:
    """io_parallel: the pipelined top registers the model input (hls4ml pooling baselines: FF =
    input elements x 16 + 2, e.g. 5,810 for 121 x 3; 18 for a one-element input)."""
    for layer, est in zip(hls_model.get_layers(), layers):
        if getattr(layer, "class_name", "") in INPUT_CLASSES:
            var = layer.get_output_variable()
            est.ff_bits += float(np.prod([int(v) for v in var.shape]) * (bit_width(var.type.precision) or 16))


def add_fifos(hls_model: Any, layers: list[LayerEstimate]) -> None:
    """Charge the inter-layer stream FIFOs of io_stream to the layer that writes them."""
    backend = str(hls_model.config.get_config_value("Backend") or "Vivado").lower()
    packed = backend.startswith("vitis")
    by_name = {lay.name: lay for lay in layers}
    for layer in hls_model.get_layers():
        est = by_name.get(layer.name)
        if est is None or is_free(layer):
            continue
        try:
            var = layer.get_output_variable()
        except (StopIteration, AttributeError):  # a layer without output variables has no FIFO
            continue
        shape = [int(v) for v in var.shape]
        n_chan = shape[-1] if shape else 1
        pragma = getattr(var, "pragma", None)  # ('stream', depth) on hls4ml stream variables
        if isinstance(pragma, tuple) and len(pragma) > 1 and pragma[1]:
            depth = int(pragma[1])
        else:
            depth = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        width = bit_width(var.type.precision) or 16
        # Vivado HLS splits the nnet::array of a stream into one FIFO per channel (the published
        # 2020.1 reports list layerN_out_V_data_<c>_V FIFOs); Vitis HLS keeps one packed FIFO.
        fifos, fifo_width = (1, n_chan * width) if packed else (n_chan, width)
        if depth >= FIFO_BRAM_MIN_DEPTH:
            est.BRAM_18K += fifos * bram18_for(depth, fifo_width)
        else:  # shift-register FIFO in SRL32 LUTs; Vitis' packed FIFO also registers its word, a
            # Vivado per-channel FIFO only its control (baselines Dense(64) + ReLU io_stream, 129
            # FIFOs: 2,064 FF in Vitis HLS, 326 in Vivado HLS 2020.1)
            est.lut_logic += fifos * fifo_width * math.ceil(depth / 32)
            est.ff_bits += fifos * (fifo_width if packed else FIFO_CONTROL_FF)


def da_design(model: Any, clock_ns: float, project_dir: Path,
              calibration: Calibration | None = None) -> tuple[Conversion, Estimate]:
    """hls4ml's distributed-arithmetic design of ``model`` (a Keras model or a model file) at
    ``clock_ns``, converted into ``project_dir`` (not compiled), and its estimate under
    ``calibration`` (None: the builtin one). The one DA conversion that ``trigger rtl``'s comparison
    with hls4ml and the yosys records (tools/estimator/yosys_records.py) both estimate. Needs da4ml (the '[da]' extra)."""
    from trigger.config import SynthConfig
    from trigger.firmware.convert import convert_model

    # logits: da4ml's RTL leaves out a final softmax, so the HLS design it is set beside does too
    config = SynthConfig(strategy="distributed_arithmetic", clock_ns=clock_ns, output="logits")
    conversion = convert_model(model, config, project_dir)
    return conversion, estimate_model(conversion.hls_model, calibration=calibration)
