"""Two classifiers on the same held-out events, paired: accuracy of each and their difference with
its standard error (the events each got right differ less than two independent test sets would).

    .venv/bin/python benchmarks/paired_accuracy.py --data data/jets_500k.h5 --exclude data/jets.h5 \\
        models/jet_mlp/teacher.h5 runs/jet_mlp_500k/teacher.h5

The events are the test split of the *second* model's data (``--data``, as recorded in its model
file) minus every event that is also in ``--exclude`` (matched on ``jet_pt``): the 500k-jet set
contains all of data/jets.h5 (same seed, same first units), so its test split holds jets the
100k-trained model was trained on; those are left out. Results go to docs/data.md by hand.
"""

from __future__ import annotations

import argparse

import h5py
import numpy as np

from trigger.data.dataset import load_dataset
from trigger.models.io import load_meta, load_model


def correct(path: str, x_raw: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether the model at ``path`` classifies each event right (its own input transform)."""
    meta = load_meta(path)
    scores = load_model(path).predict(meta.prepare_inputs(x_raw), batch_size=4096, verbose=0)
    return np.asarray(scores).argmax(1) == y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--data", required=True)
    parser.add_argument("--exclude", default=None)
    args = parser.parse_args()
    meta = load_meta(args.second)
    data = load_dataset(args.data, meta.view)
    test = meta.split(len(data.y))[2]
    if args.exclude:
        with h5py.File(args.data) as f, h5py.File(args.exclude) as g:
            test = test[~np.isin(f["jet_pt"][...][test], g["jet_pt"][...])]
    y = data.y[test]
    hits = [correct(path, data.x[test], y) for path in (args.first, args.second)]
    diff = hits[1].astype(float) - hits[0]
    print(f"{len(y)} test events; accuracy {args.first} {hits[0].mean():.4f}, {args.second} {hits[1].mean():.4f}; "
          f"difference {diff.mean():+.4f} +- {diff.std(ddof=1) / np.sqrt(len(y)):.4f} (paired standard error)")


if __name__ == "__main__":
    main()
