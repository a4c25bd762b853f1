"""trigger.compress: quantization-aware pruning and knowledge distillation of float Keras models.

``quantize_model`` rebuilds a float model in QKeras; ``compress_model`` trains it (QAP + optional
distillation) and is the one code path used by ``trigger train`` and ``trigger compress``;
``trigger compress`` itself is :func:`trigger.stages.compress_file`. See docs/compression.md.
"""

from trigger.compress.bops import BopsReport, model_bops
from trigger.compress.core import CompressedModel, compress_model
from trigger.compress.distill import distillation_loss
from trigger.compress.prune import model_sparsity
from trigger.compress.quantize import SUPPORTED_LAYERS, quantize_model
from trigger.models.graph import anomaly_score  # the one definition (trigger.models.graph), for API users

__all__ = ["quantize_model", "compress_model", "CompressedModel", "anomaly_score", "distillation_loss",
           "model_sparsity", "model_bops", "BopsReport", "SUPPORTED_LAYERS"]
