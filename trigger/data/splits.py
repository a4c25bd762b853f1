"""Deterministic train / validation / test splits shared by every stage.

The test split is drawn once from the seed and never seen in training; `trigger train`,
`trigger compress` and `trigger synth` all use this same function so their test sets agree.
"""

from __future__ import annotations

import numpy as np


def split_indices(n: int, val_fraction: float, test_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (train, val, test) index arrays that partition ``range(n)``, reproducibly.

    Every argument is required: a split is only reproducible from the seed and fractions it was
    drawn with, which model files record (:meth:`trigger.contracts.ModelMeta.split`)."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions val={val_fraction} test={test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_test + n_val:]), np.sort(order[n_test:n_test + n_val]), np.sort(order[:n_test])
