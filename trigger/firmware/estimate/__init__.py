"""Latency and resource estimate of an hls4ml model without vendor tools.

The estimate is a model of what Vivado/Vitis HLS makes of the C++ that hls4ml 1.3.0 writes for each
layer (``nnet_dense_latency.h``, ``nnet_dense_resource.h``, ``nnet_conv2d_latency.h``,
``nnet_conv_stream.h``, ``nnet_activation.h``, ...): which products survive constant propagation
of the weights (zeros vanish, powers of two become shifts), which of them become DSPs and which
LUT multipliers, how many the reuse factor lets HLS share, how deep the adder trees are at the
clock, and which tables go to block RAM. The rules count structure; the few fitted linear
constants that turn it into LUT and FF, and the uncertainty of every figure, come from a
:class:`~.calibration.Calibration`. The model, its constants and its held-out errors against
published Vivado/Vitis HLS reports are written down in ``docs/estimator.md``.

Entry point: :func:`estimate_model` (an hls4ml ``ModelGraph`` -> :class:`Estimate`).

Modules (dependencies point down the list only):

- :mod:`.model`: :func:`estimate_model`, :class:`Estimate`, the dispatch and the stream FIFOs, and
  :func:`~.model.da_design` (hls4ml's distributed-arithmetic design of a model and its estimate);
- :mod:`.dense`, :mod:`.elementwise`: the per-layer rules, registered with ``@layer_handler``;
- :mod:`.da`: da4ml's adder graphs of a distributed-arithmetic layer as LUT, FF and cycles;
- :mod:`.registry`: :func:`layer_handler`, ``HANDLERS``, :class:`NotModelled`,
  :class:`LayerEstimate` and the graph accessors the rules share;
- :mod:`.calibration`: the fitted constants and uncertainties (:class:`Calibration`), refitting;
- :mod:`.products`: tool profiles, constant-product analysis, DSP/LUT/BRAM decisions;
- :mod:`.timing`: clock and adder-delay model.

The evidence the constants are fitted on and checked against is tooling, not runtime: the
published designs, their rebuilding, the yosys records of the reference students and the fit
itself are ``tools/estimator/`` (``python -m tools.estimator.fit``), outside the package.
"""

from __future__ import annotations

from trigger.firmware.estimate.calibration import (
    Calibration, CalibrationSample, Uncertainty, features_of, load_calibration, refit, save_calibration)
# model imports the rule modules, so HANDLERS is filled once the package is imported
from trigger.firmware.estimate.model import METHOD, METHOD_NAME, Estimate, estimate_model
from trigger.firmware.estimate.products import DEFAULT_PROFILE, PROFILES, ToolProfile
from trigger.firmware.estimate.registry import HANDLERS, LayerEstimate, NotModelled, layer_handler

__all__ = ["DEFAULT_PROFILE", "HANDLERS", "METHOD", "METHOD_NAME", "PROFILES", "Calibration", "CalibrationSample",
           "Estimate", "LayerEstimate", "NotModelled", "ToolProfile", "Uncertainty", "estimate_model",
           "features_of", "layer_handler", "load_calibration", "refit", "save_calibration"]
