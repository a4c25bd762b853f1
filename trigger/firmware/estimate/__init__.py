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

- :mod:`.model`: :func:`estimate_model`, :class:`Estimate`, the dispatch and the stream FIFOs;
- :mod:`.dense`, :mod:`.elementwise`: the per-layer rules, registered with ``@layer_handler``;
- :mod:`.registry`: :func:`layer_handler`, ``HANDLERS``, :class:`NotModelled`,
  :class:`LayerEstimate` and the graph accessors the rules share;
- :mod:`.calibration`: the fitted constants and uncertainties (:class:`Calibration`), refitting;
- :mod:`.products`: tool profiles, constant-product analysis, DSP/LUT/BRAM decisions;
- :mod:`.timing`: clock and adder-delay model (also used by :mod:`trigger.firmware.da`).

Beside them, importing the rules only inside functions: :mod:`.published` (the data set of
published designs), :mod:`.designs` (rebuilding one as a ModelGraph), :mod:`.yosys_records` (the
yosys counts of the reference students' RTL: compared with the estimate, never fitted on) and
:mod:`.fit` (``python -m trigger.firmware.estimate.fit``: the fit, the leave-one-source-out errors,
the builtin calibration, then the yosys comparison).

The names below are loaded on first use (PEP 562), so that importing :mod:`.timing` alone, as
``trigger.firmware.da`` does, does not load the rules, which themselves import ``da``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> submodule that defines it
_EXPORTS = {
    "estimate_model": "model", "Estimate": "model", "METHOD": "model", "METHOD_NAME": "model",
    # via .model, which imports the rule modules: HANDLERS is filled once it is seen
    "LayerEstimate": "model", "NotModelled": "model", "layer_handler": "model", "HANDLERS": "model",
    "ToolProfile": "products", "PROFILES": "products", "DEFAULT_PROFILE": "products",
    "Calibration": "calibration", "CalibrationSample": "calibration", "Uncertainty": "calibration",
    "load_calibration": "calibration", "save_calibration": "calibration", "features_of": "calibration",
    "refit": "calibration",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on demand
    from trigger.firmware.estimate.calibration import (  # noqa: F401
        Calibration, CalibrationSample, Uncertainty, features_of, load_calibration, refit, save_calibration)
    from trigger.firmware.estimate.model import METHOD, METHOD_NAME, Estimate, estimate_model  # noqa: F401
    from trigger.firmware.estimate.products import DEFAULT_PROFILE, PROFILES, ToolProfile  # noqa: F401
    from trigger.firmware.estimate.registry import HANDLERS, LayerEstimate, NotModelled, layer_handler  # noqa: F401


def __getattr__(name: str) -> Any:
    """Load a public name from its submodule on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value
