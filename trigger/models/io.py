"""Saving and loading Keras / QKeras models as ``.h5`` with every custom object they need (loading
also reads the ``.keras`` zip format of a user's model; trigger itself always writes ``.h5``).

A model file written by ``trigger`` also carries its metadata (:class:`trigger.contracts.ModelMeta`)
as a JSON attribute ``trigger`` on the HDF5 root: what the model is (family, task, role), which data
view it reads, its class or signal names, its data split, and the fixed input transform ``x' = (x - input_offset) * input_scale`` that every stage
(train, compress, synth, the CI comparisons) must apply before the model sees data. Keeping it in
the file means a model can never be fed differently from how it was trained.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from trigger.contracts import ModelMeta
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


def is_keras_archive(path: str | os.PathLike) -> bool:
    """True for a Keras ``.keras`` model file (a zip archive holding ``config.json``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def check_model_file(path: str | os.PathLike) -> Path:
    """One-line errors for a missing file, a file that is neither HDF5 nor a ``.keras`` archive, or an
    HDF5 file without a Keras model.

    Needs no TensorFlow, so callers can fail fast before importing it."""
    path = Path(path)
    if not path.is_file():
        raise TriggerError(f"model file {path} not found; pass the .h5 written by `trigger train` or Keras model.save()")
    if zipfile.is_zipfile(path):
        if not is_keras_archive(path):
            raise TriggerError(f"{path} is a zip file without a Keras model (no config.json); pass a model saved "
                               "with model.save('x.keras') or as .h5")
        return path
    if not h5py.is_hdf5(path):
        raise TriggerError(f"{path} is not an HDF5 file or a .keras archive; pass a Keras model saved as "
                           ".h5 or .keras")
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise TriggerError(f"{path} holds no Keras model (no model_config); save it with model.save('x.h5')")
    return path


def load_model(path: str | os.PathLike, *, compile: bool = False):
    """Load a float Keras or QKeras model, ``.h5`` or ``.keras`` (pruning wrappers allowed).

    Raises :class:`TriggerError` with one line for a missing file, a file that is neither HDF5 nor a
    ``.keras`` archive, or a file that holds no Keras model. Only ``.h5`` files written by trigger
    carry metadata (:func:`load_meta`); a ``.keras`` model has none.
    """
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    path = check_model_file(path)
    try:
        with tfmot.sparsity.keras.prune_scope():
            return tf.keras.models.load_model(path, custom_objects=custom_objects(), compile=compile)
    except (ValueError, TypeError, KeyError, OSError, AttributeError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TriggerError(f"cannot load model {path}: {first[:300]}") from None


def save_model(model, path: str | os.PathLike, *, meta: ModelMeta | dict[str, Any] | None = None,
               force: bool = False) -> Path:
    """Save ``model`` as ``.h5`` atomically (temporary file, then rename), with ``meta``
    (:class:`trigger.contracts.ModelMeta`; a dict is validated into one) as the file's ``trigger``
    attribute."""
    path = Path(path)
    if meta is not None and not isinstance(meta, ModelMeta):
        meta = ModelMeta.build(**meta)
    with atomic_path(path, force=force) as tmp:
        h5 = tmp.with_suffix(".h5")  # Keras picks the format from the suffix
        model.save(h5, include_optimizer=False)
        if meta is not None:
            with h5py.File(h5, "a") as f:
                f.attrs["trigger"] = json.dumps(jsonable(meta.to_dict()))
        h5.rename(tmp)
    return path


def load_meta(path: str | os.PathLike) -> ModelMeta | None:
    """The :class:`trigger.contracts.ModelMeta` of a model file, or None ("no metadata") for a file
    that is missing, not HDF5, or a model saved elsewhere (no ``trigger`` attribute). Metadata that
    does not fit the schema is a one-line :class:`TriggerError`."""
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        return None
    with h5py.File(path, "r") as f:
        raw = f.attrs.get("trigger")
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        raise TriggerError(f"{path}: its trigger metadata is not JSON; rewrite the model with `trigger train` "
                           "or `trigger compress`") from None
    return ModelMeta.from_dict(parsed, source=str(path))


def prepare_inputs(x: np.ndarray, meta: ModelMeta | dict[str, Any] | None) -> np.ndarray:
    """Apply the model's fixed input transform ``(x - input_offset) * input_scale`` (float32);
    without metadata (None), ``x`` unchanged as float32. A dict is validated as :class:`ModelMeta`."""
    if meta is None or isinstance(meta, dict):
        meta = ModelMeta.build(**(meta or {}))
    return meta.prepare_inputs(x)
