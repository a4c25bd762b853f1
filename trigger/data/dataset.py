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


def read_attrs(path: str | os.PathLike) -> dict:
    """All attributes of a generated HDF5 file as plain python values."""
    import h5py

    with h5py.File(path, "r") as f:
        return {key: _decode_attr(value) for key, value in f.attrs.items()}


def load_dataset(path: str | os.PathLike, view: str) -> Dataset:
    """Load ``view`` of the data set at ``path``.

    Jets files offer 'hlf' (N,16), 'constituents' (N,P,3) and 'images' (N,S,S,1); anomaly-detection
    files offer 'features' (N,57). A missing or unreadable file, or a view the file does not have,
    raises :class:`TriggerError` with one line saying what to do.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise TriggerError(f"data file {path} not found; make it with `trigger data jets --out {path}` "
                           f"or `trigger data ad --out {path}`")
    try:
        with h5py.File(path, "r") as f:
            attrs = {key: _decode_attr(value) for key, value in f.attrs.items()}
            kind = attrs.get("kind")
            if kind not in VIEWS:
                raise TriggerError(f"{path} is not a `trigger data` file (no 'kind' attribute); "
                                   "regenerate it with `trigger data jets|ad`")
            if view not in VIEWS[kind]:
                raise TriggerError(f"{path} is a {kind} file with views {', '.join(VIEWS[kind])}; "
                                   f"view {view!r} is not one of them")
            if view not in f or "labels" not in f:
                raise TriggerError(f"{path} lacks dataset {view!r} or 'labels'; regenerate it with "
                                   f"`{_MAKE_COMMAND[kind]} --force --out {path}`")
            x = np.asarray(f[view][...], dtype=np.float32)
            y = np.asarray(f["labels"][...], dtype=np.int64)
    except OSError as exc:
        raise TriggerError(f"cannot read {path} as HDF5 ({exc}); regenerate it with "
                           "`trigger data jets|ad --force`") from None
    if kind == "jets":
        class_names = list(attrs["class_names"])
    else:
        class_names = ["SM background", *attrs["signal_names"]]
    if len(x) != len(y):
        raise TriggerError(f"{path} is inconsistent ({len(x)} rows of {view} but {len(y)} labels); "
                           "regenerate it with --force")
    return Dataset(x=x, y=y, class_names=class_names, kind=kind, attrs=attrs)


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
