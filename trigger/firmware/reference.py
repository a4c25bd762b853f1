"""Exact evaluation of a QKeras model in float64, layer by layer, in numpy.

QKeras computes in float32 (``quantized_relu`` even casts its input to float32 before rounding), so
wherever the exact fixed-point value of a layer needs more than 24 significant bits the QKeras
output itself is rounded, and a bit-exact firmware would appear to "differ" at float32's last bit.
The reference the firmware is compared with is therefore this evaluation: the same layers and
quantizers as QKeras, computed in float64, which holds every value of these fixed-point networks
exactly (they need far fewer than 53 significant bits). Weights are taken through QKeras's own
quantizers (their quantized values are short, so float32 holds them exactly).

Supported: InputLayer, QActivation/Activation (quantized_bits with a fixed alpha, quantized_relu
with or without a negative slope, quantized_tanh/quantized_sigmoid on QKeras's hard curve, binary and
ternary with a fixed alpha, relu, linear, softmax), QDense/Dense, QConv1D/QConv2D/Conv1D/Conv2D (valid/same padding, strides),
depthwise and separable convolutions 1D/2D (valid/same padding, strides), max/average pooling 1D/2D, global average/max pooling, Flatten, Reshape, Permute, Concatenate, Add,
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


def _scale(alpha: Any, name: str) -> float:
    """A quantizer's fixed ``alpha`` as QKeras applies it (a float32 factor); string alphas scale
    each batch by its own statistics and have no per-event meaning."""
    if alpha is None:
        return 1.0
    if isinstance(alpha, str) or np.size(alpha) != 1:
        raise UnsupportedReference(f"{name} with alpha={alpha!r} on activations")
    return float(np.float32(alpha))


def _round_clip(x: np.ndarray, step: float, low: float, high: float) -> np.ndarray:
    """x rounded half to even on the grid ``step`` (tf.round), clipped to [low, high] (in steps)."""
    return step * np.clip(np.round(x / step), low, high)


def quantize(x: np.ndarray, quantizer: Any) -> np.ndarray:
    """Apply a QKeras activation quantizer exactly (float64, round half to even like tf.round):
    quantized_bits (fixed alpha), quantized_relu (negative slope, upper bound), quantized_tanh and
    quantized_sigmoid on the hard curve, binary and ternary (fixed alpha and threshold)."""
    name = type(quantizer).__name__
    if getattr(quantizer, "use_stochastic_rounding", False):
        raise UnsupportedReference(f"{name} with stochastic rounding")
    if name == "quantized_bits":
        scale = _scale(quantizer.alpha, name)
        keep_negative = int(bool(quantizer.keep_negative))
        unsigned_bits = quantizer.bits - keep_negative
        if unsigned_bits <= 0:  # a 1-bit sign: QKeras maps 0 to +1
            return scale * np.where(x >= 0, 1.0, -1.0)
        m = 2.0 ** unsigned_bits
        step = 2.0 ** quantizer.integer / m
        low = keep_negative * (-m + int(bool(quantizer.symmetric)))
        return scale * _round_clip(x, step, low, m - 1)
    if name == "quantized_relu":
        return _quantized_relu(x, quantizer)
    if name in ("quantized_tanh", "quantized_sigmoid"):
        return _hard_curve(x, quantizer)
    if name == "binary":
        k = np.where(x >= 0, 1.0, -1.0)
        return _scale(quantizer.alpha, name) * ((k + 1.0) / 2.0 if quantizer.use_01 else k)
    if name == "ternary":
        threshold = float(np.float32(0.33 if quantizer.threshold is None else quantizer.threshold))
        return _scale(quantizer.alpha, name) * np.where(np.abs(x) >= threshold, np.sign(x), 0.0)
    raise UnsupportedReference(f"activation quantizer {name}")


def _quantized_relu(x: np.ndarray, quantizer: Any) -> np.ndarray:
    """quantized_relu: the positive side on the grid 2^integer / 2^bits' (bits' = bits less a sign bit
    with a negative slope s), clipped below 2^integer; the negative side s*x on the same grid,
    clipped at -s*2^integer."""
    if quantizer.use_sigmoid:
        raise UnsupportedReference("quantized_relu with use_sigmoid")
    slope = float(quantizer.negative_slope)
    m = 2.0 ** (quantizer.bits - (slope != 0.0))
    step = 2.0 ** quantizer.integer / m
    xq = _round_clip(x, step, 0.0, m - 1)
    if slope:
        xq = xq + _round_clip(slope * x, step, -slope * m, 0.0)
    if quantizer.relu_upper_bound and not quantizer.is_quantized_clip:
        xq = np.minimum(xq, quantizer.relu_upper_bound)
    return xq


def _hard_curve(x: np.ndarray, quantizer: Any) -> np.ndarray:
    """quantized_tanh / quantized_sigmoid on QKeras's hard sigmoid clip(x/2 + 1/2, 0, 1) (exact), or on
    a transcendental curve (QKeras's own float32 value of it, then rounded exactly as QKeras does)."""
    import tensorflow as tf
    from qkeras import quantizers as qk

    tanh = type(quantizer).__name__ == "quantized_tanh"
    real = getattr(quantizer, "use_real_tanh", False) or getattr(quantizer, "use_real_sigmoid", False)
    if real:
        curve = np.asarray((tf.tanh if tanh else tf.sigmoid)(tf.constant(x, tf.float32)), np.float64)
    elif qk._sigmoid is qk.hard_sigmoid:
        sigmoid = np.clip(0.5 * x + 0.5, 0.0, 1.0)
        curve = 2.0 * sigmoid - 1.0 if tanh else sigmoid
    else:  # set_internal_sigmoid('smooth' or 'real'): QKeras's float32 value
        sigmoid = np.asarray(qk._sigmoid(tf.constant(x, tf.float32)), np.float64)
        curve = 2.0 * sigmoid - 1.0 if tanh else sigmoid
    sym = int(bool(quantizer.symmetric))
    if tanh:
        m = 2.0 ** (quantizer.bits - 1)
        return _round_clip(curve, 1.0 / m, -m + sym, m - 1)
    m = 2.0 ** quantizer.bits
    return _round_clip(curve, 1.0 / m, sym, m - 1)


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


DEPTHWISE = ("QDepthwiseConv2D", "DepthwiseConv1D", "DepthwiseConv2D", "QSeparableConv1D", "QSeparableConv2D",
             "SeparableConv1D", "SeparableConv2D")


def _depthwise_output(layer, x: np.ndarray) -> np.ndarray:
    """A depthwise convolution (each channel with its own kernels; output channel c*m + j for depth
    multiplier m), followed for a separable one by its pointwise (1x1) convolution, bias, activation."""
    import tensorflow as tf

    cls = type(layer).__name__
    cfg = layer.get_config()
    if any(d != 1 for d in np.atleast_1d(cfg.get("dilation_rate", 1))) or \
            cfg.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedReference(f"{cls} with dilation or channels_first")
    names = ["depthwise"] + (["pointwise"] if "Separable" in cls else []) + (["bias"] if layer.use_bias else [])
    weights = {}
    for name, value in zip(names, layer.get_weights()):
        q = getattr(layer, f"{name}_quantizer_internal", None)
        weights[name] = np.asarray(q(tf.constant(value)) if q is not None else value, dtype=np.float64)
    kernel = weights["depthwise"]  # (*spatial, channels, multiplier)
    y = np.concatenate([_conv(x[..., c:c + 1], kernel[..., c:c + 1, :], tuple(layer.strides), layer.padding)
                        for c in range(kernel.shape[-2])], axis=-1)
    if "pointwise" in weights:
        y = y @ weights["pointwise"].reshape(-1, weights["pointwise"].shape[-1])
    if "bias" in weights:
        y = y + weights["bias"]
    return _activation(y, layer.activation)


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
    if cls in DEPTHWISE:
        return _depthwise_output(layer, x)
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
