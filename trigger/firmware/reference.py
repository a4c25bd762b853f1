"""The exact reference the firmware is compared with: a QKeras model evaluated in float64 through
its IR (:mod:`trigger.ir.evaluate`; why float64 and not QKeras's float32 output is said there).

Supported: what the IR's evaluator computes (InputLayer, QActivation/Activation with the quantizers
of :mod:`trigger.ir.quantizers`, relu, linear, softmax, Dense, Conv1D/2D, depthwise and separable
convolutions, pooling, global pooling, Flatten, Reshape, Permute, merges, Dropout,
BatchNormalization). Anything else raises :class:`trigger.ir.quantizers.Unsupported` naming the
layer, and the caller falls back to the float32 QKeras output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trigger.ir.evaluate import evaluate as evaluate_network
from trigger.ir.keras import from_keras


def evaluate(model: Any, x: np.ndarray | list[np.ndarray], *, keep: bool = False) -> dict[str, np.ndarray]:
    """Evaluate ``model`` exactly in float64.

    Returns ``{layer name: output}`` for the model's outputs (in order, under their layer names) and,
    with ``keep``, for every layer (used to find the first layer where the firmware differs).
    Raises :class:`trigger.ir.quantizers.Unsupported` if a layer or quantizer is not implemented.
    """
    return evaluate_network(from_keras(model), x, keep=keep)

