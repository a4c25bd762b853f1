"""trigger.data: Pythia 8 + FastJet data sets (boosted jets, L1 anomaly-detection events).

``generate_jets`` and ``generate_ad`` write HDF5 files; ``load_dataset`` reads one view of them;
``split_indices`` gives the train/validation/test split every stage shares. See docs/data.md.
"""

from trigger.data.ad import BACKGROUND_NAMES, FEATURE_NAMES, SIGNAL_NAMES, generate_ad
from trigger.data.dataset import VIEWS, Dataset, load_dataset, read_attrs
from trigger.data.jets import CLASS_NAMES, HLF_NAMES, generate_jets
from trigger.data.splits import split_indices

__all__ = ["generate_jets", "generate_ad", "Dataset", "load_dataset", "read_attrs", "split_indices",
           "VIEWS", "CLASS_NAMES", "HLF_NAMES", "SIGNAL_NAMES", "BACKGROUND_NAMES", "FEATURE_NAMES"]
