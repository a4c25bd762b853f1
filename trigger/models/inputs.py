"""The fixed per-feature input transform ``x' = (x - input_offset) * input_scale``.

It is fitted once on the training split, stored in every model file's metadata (see
:mod:`trigger.models.io`) and applied with :func:`trigger.models.io.prepare_inputs` by every stage,
so a model is never fed differently from how it was trained. The student's input quantizer
(``quantized_bits(input_bits, input_integer)``) then sees ``x'``.

Methods (``data.input_transform`` in the config; the default depends on the view):

- ``standardize`` (default for ``hlf``): offset = mean, scale = 1 / std of each feature on the
  training split. Float constants; the firmware receives already-scaled features.
- ``pow2`` (default for ``constituents``, ``features`` and ``images``): offset 0 and a power-of-two
  scale per feature, like the per-input bit shifts of the CMS AXOL1TL trigger, so the transform is
  a free shift of the integer L1 inputs in hardware. Zero means "empty" (a missing object, a padded
  particle, an empty pixel) and stays zero; the statistics use the values that are present. The
  scale is the power of two nearest to 1 / std, halved until 99.9 % of the present training
  values fit the student's input range ``2**input_integer``. Features that are never present
  (always-empty slots) keep scale 1.
- ``none``: offset 0, scale 1.

Statistics run over every axis but the last, so a feature of constituents or pixels shares one
offset/scale across particles or pixels.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

TransformMethod = Literal["standardize", "pow2", "none"]
DEFAULT_METHOD: dict[str, TransformMethod] = {
    "hlf": "standardize", "constituents": "pow2", "features": "pow2", "images": "pow2",
}


def fit_input_transform(x_train: np.ndarray, method: TransformMethod, *,
                        input_integer: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (offset, scale), each of shape ``(x.shape[-1],)``, fitted on ``x_train``."""
    x = np.asarray(x_train, dtype=np.float64).reshape(-1, x_train.shape[-1])
    n_features = x.shape[1]
    if method == "none":
        return np.zeros(n_features, np.float32), np.ones(n_features, np.float32)
    std = x.std(axis=0)
    if method == "standardize":
        offset = x.mean(axis=0)
        scale = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 1.0)
        return offset.astype(np.float32), scale.astype(np.float32)
    if method == "pow2":
        limit = 2.0 ** input_integer
        scale = np.ones(n_features)
        for j in range(n_features):
            # zero marks an empty slot (missing object, padded particle, empty pixel): statistics
            # of the values that are present, so a rarely filled slot gets the same scale as a
            # full one instead of a huge one
            present = x[:, j][x[:, j] != 0]
            if len(present) < 2 or present.std() <= 0:
                continue
            scale[j] = 2.0 ** np.round(-np.log2(present.std()))
            typical_max = np.quantile(np.abs(present), 0.999)
            while typical_max * scale[j] > limit:
                scale[j] /= 2.0
        return np.zeros(n_features, np.float32), scale.astype(np.float32)
    raise ValueError(f"unknown input transform {method!r}")
