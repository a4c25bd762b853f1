"""trigger: neural networks to nanosecond-latency FPGA trigger firmware.

One way through: data -> model -> compress -> firmware -> report. Each stage is a subpackage with a
small public API (``trigger.data``, ``trigger.models``, ``trigger.compress``, ``trigger.firmware``,
``trigger.report``); the ``trigger`` command line only parses arguments and calls them.
"""

from __future__ import annotations

import os
import warnings

# TensorFlow prints C++ start-up chatter (even cuDNN/cuBLAS "errors" at level 2 on a CPU-only
# machine); users of a CLI want one line per problem. Python exceptions are unaffected.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Two known, harmless Keras warnings that QKeras models trigger on every get_config and .h5 save
# (quantizers serialised through keras.constraints; HDF5 called a legacy format): they would flood
# every command's output. Installed process-wide here, before any stage imports Keras.
KNOWN_KERAS_WARNINGS = (r".*keras.constraints.serialize\(\).*", r".*saving your model as an HDF5 file.*")
for _message in KNOWN_KERAS_WARNINGS:
    warnings.filterwarnings("ignore", message=_message)

__version__ = "0.1.0"

__all__ = ["__version__", "load_model"]


def load_model(path: str | os.PathLike, *, trust: bool = False):
    """Load a Keras/QKeras ``.h5`` model saved by ``trigger``, with every custom object it needs.

    Raises :class:`trigger.errors.TriggerError` with a one-line message when the file is missing or
    not a model, or (unless ``trust``: your own file) when it carries code, e.g. a ``Lambda`` layer.
    """
    from trigger.models.io import load_model as _load

    return _load(path, trust=trust)
