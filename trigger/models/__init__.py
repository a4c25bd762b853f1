"""trigger.models: the model zoo (float teachers and student architectures of four families) and
`trigger train`.

- :func:`build_model` builds a float Keras model of a family (mlp, cnn, gnn, autoencoder).
- :func:`train` trains the float teacher, compresses the student through :mod:`trigger.compress`
  and writes teacher.h5, model.h5, metrics.json, history.json and plots.
"""

from trigger.models.io import load_meta, load_model, prepare_inputs, save_model
from trigger.models.training import TrainResult, train
from trigger.models.zoo import FAMILIES, build_model, interaction_matrices

__all__ = ["FAMILIES", "TrainResult", "build_model", "interaction_matrices", "load_meta", "load_model",
           "prepare_inputs", "save_model", "train"]
