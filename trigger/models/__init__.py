"""trigger.models: the model zoo (float teachers and student architectures of four families), model
files with their metadata, and the training of float models.

- :func:`build_model` builds a float Keras model of a family (mlp, cnn, gnn, autoencoder).
- :func:`load_model` / :func:`save_model` / :func:`load_meta`: ``.h5`` files with their
  :class:`trigger.contracts.ModelMeta`; a file carrying code is refused before Keras reads it
  (:mod:`trigger.models.safety`; ``trust=True`` for the user's own files).
- :mod:`trigger.models.training`: teacher and float-student training; ``trigger train`` itself is
  :func:`trigger.stages.train`.
"""

from trigger.models.io import load_meta, load_model, prepare_inputs, save_model
from trigger.models.zoo import FAMILIES, build_model, interaction_matrices

__all__ = ["FAMILIES", "build_model", "interaction_matrices", "load_meta", "load_model", "prepare_inputs",
           "save_model"]
