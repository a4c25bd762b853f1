"""The events a C simulation (and ``trigger rtl``'s Verilator simulation) runs on: random events on
the input grid, or the test split of the user's data set through the model's input transform."""

from __future__ import annotations

import numpy as np

from trigger.config import SynthConfig
from trigger.contracts import ModelMeta
from trigger.data.dataset import load_dataset
from trigger.errors import TriggerError
from trigger.firmware.convert import grid_inputs


def csim_inputs(data, meta: ModelMeta, model, input_precision: str | None, config: SynthConfig,
                seed: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str, list[str] | None]:
    """(model inputs, labels or None, raw inputs for the teacher or None, description, class names).

    Without ``data``: random events on the input grid. With it: its test split when the model file
    records its split (:meth:`ModelMeta.split`), every event of a test-split sample, else all events.
    """
    n_max = config.max_csim_events
    if data is None:
        shape = tuple(model.input_shape[1:])
        x = grid_inputs(input_precision or "fixed<16,6>", shape, n_max, seed=seed)
        return x, None, None, f"{n_max} random events on the input grid {input_precision}", meta.class_names
    if not meta.view:
        raise TriggerError("the model file has no 'view' in its metadata, so --data cannot be matched to it; "
                           "synthesize without --data (random inputs) or use a model written by `trigger train`")
    ds = load_dataset(data, meta.view)
    idx = np.arange(len(ds.y))
    where = f"all {len(idx)} events of {data}"
    if ds.attrs.get("split") == "test":  # already held-out events only (e.g. a committed check sample)
        where = f"all {len(idx)} events of {data} (a test-split sample)"
    elif meta.records_split:
        idx = meta.split(len(ds.y))[2]
        where = f"test split of {data}"
    if len(idx) > n_max:  # an even subsample keeps the class mix of the split
        idx = idx[np.linspace(0, len(idx) - 1, n_max).astype(int)]
    x_raw = ds.x[idx]
    if tuple(x_raw.shape[1:]) != tuple(model.input_shape[1:]):
        raise TriggerError(f"--data view '{meta.view}' has shape {x_raw.shape[1:]} but the model reads "
                           f"{model.input_shape[1:]}; pass the data set the model was trained on")
    # names for the physics metrics: the model's, else the data's
    names = meta.class_names or list(ds.class_names)
    return meta.prepare_inputs(x_raw), ds.y[idx], x_raw, f"{len(idx)} events, {where}", names
