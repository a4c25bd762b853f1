"""Saving and loading Keras / QKeras models as ``.h5`` with every custom object they need."""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from trigger.errors import TriggerError
from trigger.runtime import atomic_path

# Custom layers of our own models (fixed wiring matrices, score layers) register here so that
# load_model knows them; each entry maps the class name stored in the .h5 to the class.
CUSTOM_OBJECTS: dict[str, object] = {}


def custom_objects() -> dict[str, object]:
    """QKeras quantizers/layers, tfmot pruning wrappers and our own registered layers."""
    from qkeras.utils import _add_supported_quantized_objects

    objs: dict[str, object] = dict(CUSTOM_OBJECTS)
    _add_supported_quantized_objects(objs)
    return objs


def load_model(path: str | os.PathLike, *, compile: bool = False):
    """Load a float Keras or QKeras ``.h5`` model (pruning wrappers allowed).

    Raises :class:`TriggerError` with one line for a missing file, a file that is not HDF5, or an
    HDF5 file that holds no Keras model.
    """
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    path = Path(path)
    if not path.is_file():
        raise TriggerError(f"model file {path} not found; pass the .h5 written by `trigger train` or Keras model.save()")
    if not h5py.is_hdf5(path):
        raise TriggerError(f"{path} is not an HDF5 file; pass a Keras model saved as .h5")
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise TriggerError(f"{path} holds no Keras model (no model_config); save it with model.save('x.h5')")
    try:
        with tfmot.sparsity.keras.prune_scope():
            return tf.keras.models.load_model(path, custom_objects=custom_objects(), compile=compile)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TriggerError(f"cannot load model {path}: {first[:300]}") from None


def save_model(model, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Save ``model`` as ``.h5`` atomically (temporary file, then rename)."""
    path = Path(path)
    with atomic_path(path, force=force) as tmp:
        model.save(tmp.with_suffix(".h5"), include_optimizer=False)
        tmp.with_suffix(".h5").rename(tmp)
    return path
