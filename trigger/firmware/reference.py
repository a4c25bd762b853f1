"""Exact evaluation of a QKeras model in float64, layer by layer, in numpy.

QKeras computes in float32 (``quantized_relu`` even casts its input to float32 before rounding), so
wherever the exact fixed-point value of a layer needs more than 24 significant bits the QKeras
output itself is rounded, and a bit-exact firmware would appear to "differ" at float32's last bit.
The reference the firmware is compared with is therefore this evaluation: the same layers and
quantizers as QKeras, computed in float64, which holds every value of these fixed-point networks
exactly (they need far fewer than 53 significant bits). Weights are taken through QKeras's own
quantizers (their quantized values are short, so float32 holds them exactly).

Supported: InputLayer, QActivation/Activation (quantized_bits with alpha 1 or None, quantized_relu,
relu, linear, softmax), QDense/Dense, QConv1D/QConv2D/Conv1D/Conv2D (valid/same padding, strides),
max/average pooling 1D/2D, global average/max pooling, Flatten, Reshape, Permute, Concatenate, Add,
Subtract, Multiply, Average, Dropout, BatchNormalization. Anything else raises
:class:`UnsupportedReference`, and the caller falls back to the float32 QKeras output.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class UnsupportedReference(Exception):
    """The model holds a layer or quantizer this exact evaluator does not implement."""


# --- quantizers -----------------------------------------------------------------------------------

def _alpha_is_unity(alpha: Any) -> bool:
    return alpha is None or (not isinstance(alpha, str) and float(alpha) == 1.0)


def quantize(x: np.ndarray, quantizer: Any) -> np.ndarray:
    """Apply a QKeras activation quantizer exactly (float64, round half to even like tf.round)."""
    name = type(quantizer).__name__
    if name == "quantized_bits":
        if not _alpha_is_unity(quantizer.alpha) or quantizer.use_stochastic_rounding:
            raise UnsupportedReference(f"quantized_bits with alpha={quantizer.alpha!r} on activations")
        keep_negative = int(bool(quantizer.keep_negative))
        unsigned_bits = quantizer.bits - keep_negative
        m = 2.0 ** unsigned_bits
        m_i = 2.0 ** quantizer.integer
        if unsigned_bits <= 0:
            raise UnsupportedReference("1-bit quantized_bits")
        p = x * m / m_i
        low = keep_negative * (-m + int(bool(quantizer.symmetric)))
        return m_i * np.clip(np.round(p), low, m - 1) / m
    if name == "quantized_relu":
        if quantizer.use_sigmoid or quantizer.negative_slope or quantizer.use_stochastic_rounding:
            raise UnsupportedReference("quantized_relu with sigmoid, negative slope or stochastic rounding")
        m = 2.0 ** quantizer.bits
        m_i = 2.0 ** quantizer.integer
        xq = m_i * np.clip(np.round(x * m / m_i) / m, 0.0, 1.0 - 1.0 / m)
        if quantizer.relu_upper_bound and not quantizer.is_quantized_clip:
            xq = np.minimum(xq, quantizer.relu_upper_bound)
        return xq
    raise UnsupportedReference(f"activation quantizer {name}")


def _activation(x: np.ndarray, activation: Any) -> np.ndarray:
    """A Keras activation function or QKeras quantizer (a layer's ``activation`` attribute)."""
    if activation is None:
        return x
    if type(activation).__name__.startswith("quantized_") or hasattr(activation, "bits"):
        return quantize(x, activation)
    name = getattr(activation, "__name__", type(activation).__name__)
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "softmax":
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
    raise UnsupportedReference(f"activation {name}")


def quantized_weights(layer) -> list[np.ndarray]:
    """The weights a QKeras layer really uses (kernel and bias through its quantizers), float64."""
    import tensorflow as tf

    weights = [w.astype(np.float64) for w in layer.get_weights()]
    kq = getattr(layer, "kernel_quantizer_internal", None)
    bq = getattr(layer, "bias_quantizer_internal", None)
    if kq is not None:
        weights[0] = np.asarray(kq(tf.constant(layer.get_weights()[0])), dtype=np.float64)
    if bq is not None and getattr(layer, "use_bias", False):
        weights[1] = np.asarray(bq(tf.constant(layer.get_weights()[1])), dtype=np.float64)
    return weights


# --- layers -----------------------------------------------------------------------------------

def _conv(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...], padding: str) -> np.ndarray:
    """N-d convolution (channels last) by gathering patches; exact in float64."""
    spatial = kernel.shape[:-2]
    nd = len(spatial)
    if padding == "same":
        pads = []
        for d in range(nd):
            size = x.shape[1 + d]
            out = -(-size // strides[d])
            total = max((out - 1) * strides[d] + spatial[d] - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    elif padding != "valid":
        raise UnsupportedReference(f"padding {padding}")
    out_shape = [(x.shape[1 + d] - spatial[d]) // strides[d] + 1 for d in range(nd)]
    result = np.zeros([x.shape[0]] + out_shape + [kernel.shape[-1]], dtype=np.float64)
    for offset in np.ndindex(*spatial):
        slices = tuple(slice(offset[d], offset[d] + strides[d] * (out_shape[d] - 1) + 1, strides[d])
                       for d in range(nd))
        patch = x[(slice(None),) + slices + (slice(None),)]
        result += patch @ kernel[offset]
    return result


def _pool(x: np.ndarray, pool: tuple[int, ...], strides: tuple[int, ...], padding: str, op: str) -> np.ndarray:
    if padding != "valid":
        raise UnsupportedReference("pooling with padding 'same'")
    nd = len(pool)
    out_shape = [(x.shape[1 + d] - pool[d]) // strides[d] + 1 for d in range(nd)]
    parts = []
    for offset in np.ndindex(*pool):
        slices = tuple(slice(offset[d], offset[d] + strides[d] * (out_shape[d] - 1) + 1, strides[d])
                       for d in range(nd))
        parts.append(x[(slice(None),) + slices + (slice(None),)])
    stacked = np.stack(parts)
    return stacked.max(axis=0) if op == "max" else stacked.sum(axis=0) / len(parts)


def _layer_output(layer, inputs: list[np.ndarray]) -> np.ndarray:
    cls = type(layer).__name__
    cfg = layer.get_config()
    x = inputs[0]
    if cls in ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise"):
        return x
    if cls == "QActivation":
        return _activation(x, layer.quantizer if hasattr(layer, "quantizer") else layer.activation)
    if cls == "Activation":
        return _activation(x, layer.activation)
    if cls == "ReLU" and not cfg.get("max_value") and not cfg.get("negative_slope"):
        return np.maximum(x, 0.0)
    if cls in ("QDense", "Dense"):
        w = quantized_weights(layer) if cls == "QDense" else [v.astype(np.float64) for v in layer.get_weights()]
        y = x @ w[0]
        if layer.use_bias:
            y = y + w[1]
        return _activation(y, layer.activation)
    if cls in ("QConv1D", "QConv2D", "Conv1D", "Conv2D"):
        if any(d != 1 for d in np.atleast_1d(cfg.get("dilation_rate", 1))) or cfg.get("groups", 1) != 1:
            raise UnsupportedReference(f"{cls} with dilation or groups")
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise UnsupportedReference(f"{cls} channels_first")
        w = quantized_weights(layer) if cls.startswith("Q") else [v.astype(np.float64) for v in layer.get_weights()]
        y = _conv(x, w[0], tuple(layer.strides), layer.padding)
        if layer.use_bias:
            y = y + w[1]
        return _activation(y, layer.activation)
    if cls in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"):
        return _pool(x, tuple(layer.pool_size), tuple(layer.strides), layer.padding,
                     "max" if cls.startswith("Max") else "avg")
    if cls in ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D"):
        axes = tuple(range(1, x.ndim - 1))
        y = x.max(axis=axes, keepdims=cfg.get("keepdims", False)) if "Max" in cls else \
            x.sum(axis=axes, keepdims=cfg.get("keepdims", False)) / np.prod([x.shape[a] for a in axes])
        return y
    if cls == "Flatten":
        return x.reshape(x.shape[0], -1)
    if cls == "Reshape":
        return x.reshape((x.shape[0],) + tuple(layer.target_shape))
    if cls == "Permute":
        return np.transpose(x, (0,) + tuple(layer.dims))
    if cls == "Concatenate":
        return np.concatenate(inputs, axis=layer.axis)
    if cls == "Add":
        return np.sum(inputs, axis=0)
    if cls == "Subtract":
        return inputs[0] - inputs[1]
    if cls == "Multiply":
        out = inputs[0]
        for other in inputs[1:]:
            out = out * other
        return out
    if cls == "Average":
        return np.sum(inputs, axis=0) / len(inputs)
    if cls == "BatchNormalization":
        gamma = layer.gamma.numpy().astype(np.float64) if layer.scale else 1.0
        beta = layer.beta.numpy().astype(np.float64) if layer.center else 0.0
        mean = layer.moving_mean.numpy().astype(np.float64)
        var = layer.moving_variance.numpy().astype(np.float64)
        return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta
    raise UnsupportedReference(f"layer {layer.name} ({cls})")


def evaluate(model, x: np.ndarray | list[np.ndarray], *, keep: bool = False) -> dict[str, np.ndarray]:
    """Evaluate ``model`` exactly in float64.

    Returns ``{layer name: output}`` for the model's outputs (in order, under their layer names) and,
    with ``keep``, for every layer (used to find the first layer where the firmware differs).
    Raises :class:`UnsupportedReference` if a layer or quantizer is not implemented.
    """
    xs = x if isinstance(x, (list, tuple)) else [x]
    refs = {t.ref(): np.asarray(arr, dtype=np.float64) for t, arr in zip(model.inputs, xs)}
    outputs: dict[str, np.ndarray] = {}
    # Keras orders a functional model's nodes by depth: the largest depth holds the inputs
    for depth in sorted(model._nodes_by_depth.keys(), reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.layer
            if type(layer).__name__ == "InputLayer":
                continue
            ins = [refs[t.ref()] for t in node.keras_inputs]
            out = _layer_output(layer, ins)
            out_tensors = node.outputs if isinstance(node.outputs, (list, tuple)) else [node.outputs]
            refs[out_tensors[0].ref()] = out
            if keep:
                outputs[layer.name] = out
    result = {name: refs[t.ref()] for name, t in zip(output_names(model), model.outputs)}
    if keep:
        result = {**outputs, **result}
    return result


def output_names(model) -> list[str]:
    """Names of the layers that produce the model's outputs, in output order."""
    return [t.node.layer.name for t in model.outputs]
