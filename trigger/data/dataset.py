"""Reading generated data sets: one view of one HDF5 file as a :class:`Dataset`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trigger.errors import TriggerError

# The views each kind of file offers, and the dataset that holds each.
VIEWS = {"jets": ("hlf", "constituents", "images"), "ad": ("features",)}
_MAKE_COMMAND = {"jets": "trigger data jets", "ad": "trigger data ad"}


@dataclass
class Dataset:
    """One view of a generated data set, ready for training."""

    x: np.ndarray           # float32, the requested view
    y: np.ndarray           # int64 labels
    class_names: list[str]  # jets: ['g','q','W','Z','t']; ad: ['SM background', *signal_names]
    kind: str               # 'jets' | 'ad'
    attrs: dict = field(default_factory=dict)  # the file's attributes (settings, seed, versions...)


def _decode_attr(value):
    """HDF5 attribute -> plain python (str, list of str, number, or parsed JSON dict/list)."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


#: What h5py raises on a damaged file besides OSError: RuntimeError for a broken attribute or link
#: ("Error iterating over attributes", "Unable to synchronously check link existence"), KeyError for
#: an object of unknown type, ValueError/TypeError for undecodable values.
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


def read_attrs(path: str | os.PathLike) -> dict:
    """All attributes of a generated HDF5 file as plain python values."""
    import h5py

    path = _existing(path)
    try:
        with h5py.File(path, "r") as f:
            return {key: _decode_attr(value) for key, value in f.attrs.items()}
    except H5_ERRORS as exc:
        raise _open_error(path, exc) from None


def _open_error(path: Path, exc: Exception) -> TriggerError:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return TriggerError(f"cannot read {path} as HDF5 ({detail}); pass a file from `trigger data jets|ad` "
                        "(regenerate a damaged one with --force)")


def _check_open(f, path: Path, view: str | None) -> tuple[str, dict]:
    """(kind, attributes) of an open generated file; one-line errors for a file of another kind or
    without ``view`` or the labels."""
    attrs = {key: _decode_attr(value) for key, value in f.attrs.items()}
    kind = attrs.get("kind")
    if not isinstance(kind, str) or kind not in VIEWS:
        what = "a Keras model" if "model_config" in f.attrs else "not a `trigger data` file"
        raise TriggerError(f"{path} is {what} (no 'kind' attribute), not a data file; pass a file from "
                           "`trigger data jets|ad`")
    if view is not None and view not in VIEWS[kind]:
        raise TriggerError(f"{path} holds {kind} data with views {', '.join(VIEWS[kind])}; "
                           f"view {view!r} is not one of them: pass the data set the model or config is for")
    missing = [name for name in (view, "labels") if name is not None and name not in f]
    names_key = "class_names" if kind == "jets" else "signal_names"
    if missing or names_key not in attrs:
        raise TriggerError(f"{path} lacks {', '.join(missing + [names_key] * (names_key not in attrs))}; "
                           f"regenerate it with `{_MAKE_COMMAND[kind]} --force --out {path}`")
    names = attrs[names_key]
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        raise TriggerError(f"{path}: its {names_key} attribute is not a list of names; "
                           f"regenerate it with `{_MAKE_COMMAND[kind]} --force --out {path}`")
    return kind, attrs


def _existing(path: str | os.PathLike) -> Path:
    """``path`` if it is a file that the HDF5 library can read without crashing or hanging
    (:func:`trigger.runtime.probe_hdf5`); one-line errors otherwise."""
    from trigger.runtime import probe_hdf5

    path = Path(path)
    if not path.is_file():
        raise TriggerError(f"data file {path} not found{' (it is a folder)' if path.is_dir() else ''}; make it "
                           f"with `trigger data jets --out {path}` or `trigger data ad --out {path}`")
    probe_hdf5(path, "HDF5 data", "pass a file from `trigger data jets|ad` (regenerate a damaged one with --force)")
    return path


def check_data_file(path: str | os.PathLike, view: str | None = None) -> str:
    """The kind ('jets' | 'ad') of the generated data file at ``path``, read from its attributes
    only (no arrays), so that a stage can refuse a missing, damaged or wrong-kind ``--data`` (or one
    without ``view``) before any work. Raises :class:`TriggerError` with one line."""
    import h5py

    path = _existing(path)
    try:
        with h5py.File(path, "r") as f:
            return _check_open(f, path, view)[0]
    except H5_ERRORS as exc:
        raise _open_error(path, exc) from None


def view_shape(path: str | os.PathLike, view: str) -> tuple[int, ...]:
    """The per-event shape of ``view`` in a data file already checked with :func:`check_data_file`."""
    import h5py

    try:
        with h5py.File(_existing(path), "r") as f:
            return tuple(int(d) for d in f[view].shape[1:])
    except H5_ERRORS as exc:
        raise _open_error(Path(path), exc) from None


def load_dataset(path: str | os.PathLike, view: str) -> Dataset:
    """Load ``view`` of the data set at ``path``.

    Jets files offer 'hlf' (N,16), 'constituents' (N,P,3) and 'images' (N,S,S,1); anomaly-detection
    files offer 'features' (N,57). A missing, unreadable or inconsistent file, a view the file does
    not have, or inputs that are not finite raise :class:`TriggerError` with one line saying what to do.
    """
    import h5py

    path = _existing(path)
    try:
        with h5py.File(path, "r") as f:
            kind, attrs = _check_open(f, path, view)
            x = np.asarray(f[view][...], dtype=np.float32)
            y = np.asarray(f["labels"][...], dtype=np.int64)
    except H5_ERRORS as exc:  # damaged data or metadata, non-numeric datasets
        raise _open_error(path, exc) from None
    class_names = list(attrs["class_names"]) if kind == "jets" else ["SM background", *attrs["signal_names"]]
    _check_arrays(path, view, x, y, len(class_names))
    return Dataset(x=x, y=y, class_names=class_names, kind=kind, attrs=attrs)


def _check_arrays(path: Path, view: str, x: np.ndarray, y: np.ndarray, n_classes: int) -> None:
    """One-line errors for arrays no model can be trained or evaluated on."""
    regenerate = f"regenerate it with `trigger data jets|ad --force --out {path}`"
    if len(x) != len(y) or y.ndim != 1:
        raise TriggerError(f"{path} is inconsistent ({len(x)} rows of {view} but labels of shape {y.shape}); "
                           f"{regenerate}")
    if len(y) == 0:
        raise TriggerError(f"{path} holds no events; {regenerate}")
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise TriggerError(f"{path}: {bad} values of {view} are NaN or inf; no model can be trained or "
                           f"evaluated on them: remove those events or {regenerate}")
    if y.min() < 0 or y.max() >= n_classes:
        raise TriggerError(f"{path}: labels run from {y.min()} to {y.max()} but the file names {n_classes} "
                           f"classes; {regenerate}")


def write_subset(path: str | os.PathLike, out: str | os.PathLike, view: str, indices: np.ndarray, *,
                 split: str, force: bool = False) -> Path:
    """Write rows ``indices`` of one view (and the labels) of a generated file to a new, small file
    with the same attributes, marked ``split`` (e.g. 'test').

    A file marked 'test' holds only held-out events, so later stages use all of its rows instead of
    splitting it again (the committed check samples of the reference models are such files).
    """
    import h5py

    from trigger.runtime import atomic_path

    ds = load_dataset(path, view)
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    with h5py.File(path, "r") as src, atomic_path(out, force=force) as tmp:
        with h5py.File(tmp, "w") as f:
            for key, value in src.attrs.items():
                f.attrs[key] = value
            f.attrs["split"] = split
            f.attrs["source_file"] = Path(path).name
            f.create_dataset(view, data=ds.x[indices], compression="gzip")
            f.create_dataset("labels", data=ds.y[indices])
            f.create_dataset("source_index", data=indices)
    return Path(out)
