"""Rebuild a published design (``tests/data/published/*.yaml``, its ``build`` section) as an
hls4ml ModelGraph in the recorded configuration, so the estimator can be measured against it.

The ``build`` section is data: the Keras/QKeras layer list, how the weights are drawn (the
published designs' trained weights are not committed, so they are random in the recorded
distribution: initializer, sparsity, QKeras grid) and the hls4ml conversion settings. TensorFlow,
QKeras and hls4ml are imported only when a design is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tools.estimator.published import BuildSpec, HlsBuild, PublishedDesign, WeightSpec
from trigger.errors import TriggerError

#: QKeras layer classes a build may name (the rest come from tf.keras.layers)
QKERAS_CLASSES = ("QDense", "QConv2D", "QConv1D", "QActivation")


def _layer_class(name: str) -> Any:
    """The Keras or QKeras layer class called ``name``."""
    import tensorflow as tf

    if name in QKERAS_CLASSES:
        import qkeras

        return getattr(qkeras, name)
    klass = getattr(tf.keras.layers, name, None)
    if klass is None:
        raise TriggerError(f"build spec: unknown Keras layer class {name!r}")
    return klass


def keras_model(spec: BuildSpec) -> Any:
    """The Keras model of a build spec (layers in order on the input shape)."""
    import tensorflow as tf

    layers = []
    for entry in spec.layers:
        kwargs = dict(entry)
        klass = _layer_class(str(kwargs.pop("class", "")))
        layers.append(klass(**kwargs))
    return tf.keras.Sequential([tf.keras.layers.Input(tuple(spec.input_shape))] + layers)


def set_weights(model: Any, spec: WeightSpec) -> None:
    """Draw the weights: magnitude pruning to ``sparsity``, QKeras grid values, random biases."""
    rng = np.random.default_rng(spec.seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights or not hasattr(layer, "kernel"):
            continue
        kernel = weights[0]
        if spec.grid_bits:
            top = 2 ** (spec.grid_bits - 1)
            kernel = rng.integers(1, top, size=kernel.shape) * rng.choice([-1, 1], size=kernel.shape) / top
        n_zero = round(spec.sparsity * kernel.size) if layer.name not in spec.unpruned else 0
        if n_zero:
            order = np.argsort(np.abs(kernel), axis=None) if not spec.grid_bits else rng.permutation(kernel.size)
            flat = kernel.copy().reshape(-1)
            flat[order[:n_zero]] = 0.0
            kernel = flat.reshape(kernel.shape)
        rest = weights[1:]
        if rest and spec.bias_std:
            rest = [rng.normal(0, spec.bias_std, rest[0].shape)] + rest[1:]
        layer.set_weights([kernel.astype(np.float32)] + [np.asarray(w, dtype=np.float32) for w in rest])


def hls_config(model: Any, build: HlsBuild) -> dict:
    """hls4ml's config_from_keras_model with the recorded overrides."""
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(model, granularity=build.granularity,
                                                  backend=build.config_backend,
                                                  default_precision=build.default_precision)
    config["Model"]["Strategy"] = build.strategy
    config["Model"]["ReuseFactor"] = build.reuse_factor
    for name, layer_config in config.get("LayerName", {}).items():
        layer_config["Strategy"] = build.strategy
        layer_config["ReuseFactor"] = build.reuse_factor
        precision = layer_config.get("Precision")
        if build.auto_precision and isinstance(precision, dict):
            for key, value in list(precision.items()):
                if value == "auto":
                    precision[key] = build.auto_precision
        if build.softmax and "softmax" in name:
            layer_config["Implementation"] = build.softmax
    return config


def build_design(design: PublishedDesign, out_dir: str | Path) -> Any:
    """The design as a converted (not compiled) hls4ml ModelGraph."""
    import hls4ml
    import tensorflow as tf

    from trigger.runtime import set_seed

    if design.build is None:
        raise TriggerError(f"published design {design.name} cannot be rebuilt: {design.build_note}")
    spec = design.build
    set_seed(spec.weights.seed)
    tf.random.set_seed(spec.weights.seed)
    model = keras_model(spec)
    set_weights(model, spec.weights)
    build = spec.hls4ml
    kwargs = {"part": build.part} if build.part else {}
    return hls4ml.converters.convert_from_keras_model(
        model, hls_config=hls_config(model, build), backend=build.backend, output_dir=str(out_dir),
        clock_period=build.clock_period, io_type=build.io_type, **kwargs)
