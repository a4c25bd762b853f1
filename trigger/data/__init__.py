"""trigger.data: Pythia 8 + FastJet data sets (boosted jets, L1 anomaly-detection events).

``generate_jets`` and ``generate_ad`` write HDF5 files; ``load_dataset`` reads one view of them;
``split_indices`` gives the train/validation/test split every stage shares.
"""

from trigger.data.dataset import Dataset, load_dataset, read_attrs
from trigger.data.jets import CLASS_NAMES, HLF_NAMES, generate_jets
from trigger.data.splits import split_indices

__all__ = ["generate_jets", "generate_ad", "Dataset", "load_dataset", "read_attrs", "split_indices",
           "CLASS_NAMES", "HLF_NAMES"]


def generate_ad(*args, **kwargs):
    """Anomaly-detection events (see :mod:`trigger.data.ad`)."""
    from trigger.data.ad import generate_ad as _generate_ad

    return _generate_ad(*args, **kwargs)
