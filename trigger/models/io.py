"""Saving and loading Keras / QKeras models as ``.h5`` with every custom object they need (loading
also reads the ``.keras`` zip format of a user's model; trigger itself always writes ``.h5``).

Loading never runs code a model file carries: its configuration is first read as data and a
``Lambda`` layer, a serialized function or an unknown class is refused in one line
(:mod:`trigger.models.safety`); ``trust=True`` (``--trust-model``) is for the user's own files.

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
from trigger.models.safety import (MODEL_REMEDY, check_buildable, check_model_config, check_structure,
                                   first_line, read_model_config)
from trigger.runtime import atomic_path, jsonable, probe_hdf5

# Custom layers of our own models (fixed wiring matrices, score layers) register here so that
# load_model knows them; each entry maps the class name stored in the .h5 to the class. Their
# names are also the classes the safety check accepts besides Keras's, QKeras's and tfmot's.
CUSTOM_OBJECTS: dict[str, object] = {}

#: The remedy of a model file a stage cannot read: what ``trigger synth`` and ``trigger rtl`` expect
TRAINED_MODEL_REMEDY = "pass the .h5 written by `trigger train` or `trigger compress`, or a Keras model.save() file"


def custom_objects() -> dict[str, object]:
    """QKeras quantizers/layers, tfmot pruning wrappers, our own registered layers and, with the
    optional ``hgq`` extra installed, HGQ's proxy-model cast."""
    from qkeras.utils import _add_supported_quantized_objects

    objs: dict[str, object] = dict(CUSTOM_OBJECTS)
    _add_supported_quantized_objects(objs)
    try:
        from HGQ.proxy import FixedPointQuantizer
    except ImportError:  # reading a proxy model then fails in one line (load_model)
        pass
    else:
        import tensorflow as tf

        for name in (FixedPointQuantizer.__name__, tf.keras.utils.get_registered_name(FixedPointQuantizer)):
            objs[name] = FixedPointQuantizer
    return objs


def is_keras_archive(path: str | os.PathLike) -> bool:
    """True for a Keras ``.keras`` model file (a zip archive holding ``config.json``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def check_model_file(path: str | os.PathLike, *, trust: bool = False) -> Path:
    """One-line errors for a missing file, a file that is neither HDF5 nor a ``.keras`` archive, an
    HDF5 file without a Keras model, a model configuration that is not JSON, and (unless ``trust``)
    a configuration that carries code or names a class trigger does not know
    (:func:`trigger.models.safety.check_model_config`: read as data, before Keras sees the file).

    Needs no TensorFlow, so callers can fail fast before importing it."""
    path = Path(path)
    if not path.is_file():
        raise TriggerError(f"model file {path} not found; pass the .h5 written by `trigger train` or Keras model.save()")
    if zipfile.is_zipfile(path):
        if not is_keras_archive(path):
            raise TriggerError(f"{path} is a zip file without a Keras model (no config.json); pass a model saved "
                               "with model.save('x.keras') or as .h5")
    elif not h5py.is_hdf5(path):
        raise TriggerError(f"{path} is not an HDF5 file or a .keras archive; pass a Keras model saved as "
                           ".h5 or .keras")
    else:  # a damaged HDF5 file can crash or hang the HDF5 library: read it in a child first
        probe_hdf5(path, "a Keras model", MODEL_REMEDY)
    if trust:
        config, _ = read_model_config(path)  # still one line for a configuration that is not JSON
    else:
        config = check_model_config(path, extra_classes=CUSTOM_OBJECTS)
    try:
        check_structure(config)  # a damaged graph (a layer without inputs) can make Keras loop forever
    except TriggerError as exc:
        raise TriggerError(f"{path}: {exc}") from None
    check_buildable(config)  # QSimpleRNN/QGRU: named in one line before Keras fails to build them
    return path


def load_model(path: str | os.PathLike, *, trust: bool = False):
    """Load a float Keras or QKeras model, ``.h5`` or ``.keras`` (pruning wrappers allowed).

    Before Keras reads the file its configuration is checked as data (:func:`check_model_file`):
    a ``Lambda`` layer, a serialized function or a class outside Keras/QKeras/tfmot/trigger's own
    is refused in one line, unless ``trust`` (the user's own file: Keras then also loads a
    ``.keras`` file's lambdas). Raises :class:`TriggerError` with one line for a missing file, a
    file that is neither HDF5 nor a ``.keras`` archive, or a file that holds no Keras model. Only
    ``.h5`` files written by trigger carry metadata (:func:`load_meta`); a ``.keras`` model has none.
    """
    path = check_model_file(path, trust=trust)
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    try:
        with tfmot.sparsity.keras.prune_scope():
            return tf.keras.models.load_model(path, custom_objects=custom_objects(), compile=False,
                                              safe_mode=not trust)
    except (ValueError, TypeError, KeyError, OSError, AttributeError, RecursionError, zipfile.BadZipFile) as exc:
        raise TriggerError(f"cannot load model {path}: {first_line(exc, 300)}") from None
    except Exception as exc:  # noqa: BLE001
        # the configuration was checked as data, so what Keras still trips on (an UnboundLocalError on
        # a damaged inbound node, h5py's RuntimeError on a damaged attribute) is the file's fault; a
        # trusted file's own code (a Lambda) may raise anything
        cause = "its own code raised" if trust else "Keras cannot rebuild it:"
        raise TriggerError(f"cannot load model {path}: {cause} {type(exc).__name__}: {first_line(exc, 300)}; "
                           f"{MODEL_REMEDY}") from None


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
    rewrite = "rewrite the model with `trigger train` or `trigger compress`"
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("trigger")
    except (OSError, RuntimeError, KeyError, ValueError) as exc:  # h5py on a damaged attribute message
        raise TriggerError(f"{path}: its attributes cannot be read ({first_line(exc, 300)}; a damaged file); "
                           f"{rewrite}") from None
    if raw is None:
        return None
    try:
        parsed = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise TriggerError(f"{path}: its trigger metadata is not a JSON object; {rewrite}") from None
    return ModelMeta.from_dict(parsed, source=str(path))


def prepare_inputs(x: np.ndarray, meta: ModelMeta | dict[str, Any] | None) -> np.ndarray:
    """Apply the model's fixed input transform ``(x - input_offset) * input_scale`` (float32);
    without metadata (None), ``x`` unchanged as float32. A dict is validated as :class:`ModelMeta`."""
    if meta is None or isinstance(meta, dict):
        meta = ModelMeta.build(**(meta or {}))
    return meta.prepare_inputs(x)
