"""Saving and loading Keras / QKeras models as ``.h5`` with every custom object they need.

A model file written by ``trigger`` also carries its metadata as a JSON attribute ``trigger`` on
the HDF5 root: what the model is (family, task, role), which data view it reads, its class or signal
names, and the fixed input transform ``x' = (x - input_offset) * input_scale`` that every stage
(train, compress, synth, the CI comparisons) must apply before the model sees data. Keeping it in
the file means a model can never be fed differently from how it was trained.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from trigger.errors import TriggerError
from trigger.runtime import atomic_path, jsonable

# Custom layers of our own models (fixed wiring matrices, score layers) register here so that
# load_model knows them; each entry maps the class name stored in the .h5 to the class.
CUSTOM_OBJECTS: dict[str, object] = {}


def custom_objects() -> dict[str, object]:
    """QKeras quantizers/layers, tfmot pruning wrappers and our own registered layers."""
    from qkeras.utils import _add_supported_quantized_objects

    objs: dict[str, object] = dict(CUSTOM_OBJECTS)
    _add_supported_quantized_objects(objs)
    return objs


def check_model_file(path: str | os.PathLike) -> Path:
    """One-line errors for a missing file, a non-HDF5 file or an HDF5 file without a Keras model.

    Needs no TensorFlow, so callers can fail fast before importing it."""
    path = Path(path)
    if not path.is_file():
        raise TriggerError(f"model file {path} not found; pass the .h5 written by `trigger train` or Keras model.save()")
    if not h5py.is_hdf5(path):
        raise TriggerError(f"{path} is not an HDF5 file; pass a Keras model saved as .h5")
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise TriggerError(f"{path} holds no Keras model (no model_config); save it with model.save('x.h5')")
    return path


def load_model(path: str | os.PathLike, *, compile: bool = False):
    """Load a float Keras or QKeras ``.h5`` model (pruning wrappers allowed).

    Raises :class:`TriggerError` with one line for a missing file, a file that is not HDF5, or an
    HDF5 file that holds no Keras model.
    """
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    path = check_model_file(path)
    try:
        with tfmot.sparsity.keras.prune_scope():
            return tf.keras.models.load_model(path, custom_objects=custom_objects(), compile=compile)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TriggerError(f"cannot load model {path}: {first[:300]}") from None


def save_model(model, path: str | os.PathLike, *, meta: dict[str, Any] | None = None,
               force: bool = False) -> Path:
    """Save ``model`` as ``.h5`` atomically (temporary file, then rename), with ``meta`` as the
    file's ``trigger`` attribute (see the module docstring for its keys)."""
    path = Path(path)
    with atomic_path(path, force=force) as tmp:
        h5 = tmp.with_suffix(".h5")  # Keras picks the format from the suffix
        model.save(h5, include_optimizer=False)
        if meta is not None:
            with h5py.File(h5, "a") as f:
                f.attrs["trigger"] = json.dumps(jsonable(meta))
        h5.rename(tmp)
    return path


def load_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``trigger`` metadata of a model file, or ``{}`` for a model saved elsewhere."""
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        return {}
    with h5py.File(path, "r") as f:
        raw = f.attrs.get("trigger")
    return json.loads(raw) if raw is not None else {}


def prepare_inputs(x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Apply the model's fixed input transform ``(x - input_offset) * input_scale`` (float32).

    Models without a stored transform get ``x`` unchanged.
    """
    x = np.asarray(x, dtype=np.float32)
    offset = meta.get("input_offset")
    scale = meta.get("input_scale")
    if offset is not None:
        x = x - np.asarray(offset, dtype=np.float32)
    if scale is not None:
        x = x * np.asarray(scale, dtype=np.float32)
    return x.astype(np.float32)


def logits_model(model):
    """The model without its final softmax, if it ends in one: firmware is compared on logits,
    because hls4ml's softmax is a lookup table that is never bit-exact."""
    import tensorflow as tf

    last = model.layers[-1]
    act = getattr(last, "activation", None)
    is_softmax = (isinstance(last, tf.keras.layers.Activation) and getattr(act, "__name__", "") == "softmax") \
        or (type(last).__name__ == "QActivation" and "softmax" in str(last.get_config().get("activation")))
    if not is_softmax:
        return model
    # cut at the softmax's own input: layers[-2] need not feed it when the graph branches
    return tf.keras.Model(model.inputs, last.input, name=f"{model.name}_logits")
