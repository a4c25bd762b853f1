"""Small QKeras models of the four families, built in code (not the zoo).

They exercise every part of the bit-exact recipe in :mod:`trigger.firmware.convert` and are what the
firmware tests and ``benchmarks/bench_synth.py`` synthesise: an MLP tagger, a CNN on images
(QConv2D + MaxPooling2D + QDense), an interaction-network GNN on constituents (graph wiring in fixed
0/1 matrices) and a VAE-encoder anomaly trigger with its score (sum of squared latent means) on chip.
Weights are random (seeded), which is all a bit-exactness check needs; biases are made non-zero so
that bias rounding is exercised too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from trigger.models.zoo import interaction_matrices  # the zoo's wiring, tested once

FAMILIES = ("mlp", "cnn", "gnn", "vae")


def _q(bits: int, integer: int):
    from qkeras import quantized_bits

    return quantized_bits(bits, integer, alpha=1)


def _qrelu(bits: int, integer: int):
    from qkeras import quantized_relu

    return quantized_relu(bits, integer)


def _randomise_biases(model, seed: int) -> None:
    """Non-zero biases (Keras initialises them to 0) so bias quantization is part of the check."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "use_bias", False) and layer.trainable:
            weights = layer.get_weights()
            weights[1] = rng.uniform(-0.5, 0.5, size=weights[1].shape).astype(np.float32)
            layer.set_weights(weights)


def mlp(n_features: int = 16, n_classes: int = 5, hidden: tuple[int, ...] = (32, 16), seed: int = 1,
        kernel_alpha: str | int = 1):
    """Jet-tagging MLP: input fixed<12,4>, 6-bit weights, quantized_relu(6,2), softmax head.

    ``kernel_alpha='auto_po2'`` gives the hidden layers per-channel power-of-two kernel scales (their
    kernels are scaled up so that scales above 2 occur)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((n_features,), name="x_in")
    x = QActivation(_q(12, 4), name="input_q")(inp)
    for i, width in enumerate(hidden):
        x = QDense(width, kernel_quantizer=quantized_bits(6, 0, alpha=kernel_alpha), bias_quantizer=_q(6, 0),
                   name=f"dense{i}")(x)
        x = QActivation(_qrelu(6, 2), name=f"relu{i}")(x)
    x = QDense(n_classes, kernel_quantizer=_q(6, 0), bias_quantizer=_q(6, 0), name="logits")(x)
    out = tf.keras.layers.Activation("softmax", name="softmax")(x)
    model = tf.keras.Model(inp, out, name="mlp")
    if kernel_alpha == "auto_po2":
        for i in range(len(hidden)):
            layer = model.get_layer(f"dense{i}")
            layer.set_weights([layer.get_weights()[0] * 4.0, layer.get_weights()[1]])
    _randomise_biases(model, seed)
    return model


def cnn(size: int = 8, n_classes: int = 5, filters: int = 4, seed: int = 2):
    """Jet-image CNN: QConv2D 3x3 with inline quantized_relu + MaxPooling2D + QDense with inline
    quantized_bits + quantized_relu + QDense + softmax."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((size, size, 1), name="x_in")
    x = QActivation(_q(10, 2), name="input_q")(inp)
    # inline activations (QConv2D(activation=...), QDense(activation=...)) as many QKeras models use
    x = QConv2D(filters, 3, kernel_quantizer=_q(6, 0), bias_quantizer=_q(6, 0), activation=_qrelu(6, 2),
                name="conv0")(x)
    x = tf.keras.layers.MaxPooling2D(2, name="pool0")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = QDense(8, kernel_quantizer=_q(6, 0), bias_quantizer=_q(6, 0), activation=_q(10, 3), name="dense0")(x)
    x = QActivation(_qrelu(6, 2), name="relu1")(x)
    x = QDense(n_classes, kernel_quantizer=_q(6, 0), bias_quantizer=_q(6, 0), name="logits")(x)
    out = tf.keras.layers.Activation("softmax", name="softmax")(x)
    model = tf.keras.Model(inp, out, name="cnn")
    _randomise_biases(model, seed)
    return model


def gnn(n_nodes: int = 8, n_features: int = 3, n_classes: int = 5, edge_hidden: int = 8,
        node_hidden: int = 8, seed: int = 3):
    """Interaction network: the graph wiring is fixed, non-trainable 0/1 QDense layers.

    Permute -> QDense(E) with the receiver (sender) matrix -> Permute gives each edge its receiver
    (sender) features; a per-edge QDense net computes messages; QDense(N) with the transposed
    receiver matrix sums them per node; a per-node net and GlobalAveragePooling1D feed the head.
    N is a power of two so the pooling's 1/N is exact in fixed point.
    """
    import tensorflow as tf
    from qkeras import QActivation, QDense

    tf.keras.utils.set_random_seed(seed)
    receivers, senders = interaction_matrices(n_nodes)
    n_edges = receivers.shape[1]
    L = tf.keras.layers
    inp = tf.keras.Input((n_nodes, n_features), name="x_in")
    x = QActivation(_q(10, 2), name="input_q")(inp)
    xt = L.Permute((2, 1), name="nodes_t")(x)                                    # (F, N)
    wiring = dict(kernel_quantizer=_q(2, 1), use_bias=False, trainable=False)
    recv = QDense(n_edges, name="receiver_wiring", **wiring)(xt)                 # (F, E)
    send = QDense(n_edges, name="sender_wiring", **wiring)(xt)
    recv = L.Permute((2, 1), name="receiver_features")(recv)                    # (E, F)
    send = L.Permute((2, 1), name="sender_features")(send)
    e = L.Concatenate(axis=-1, name="edge_inputs")([recv, send])                 # (E, 2F)
    for i in range(2):
        e = QDense(edge_hidden, kernel_quantizer=_q(8, 0), bias_quantizer=_q(8, 0), name=f"edge{i}")(e)
        e = QActivation(_qrelu(8, 2), name=f"edge_relu{i}")(e)
    et = L.Permute((2, 1), name="messages_t")(e)                                 # (H, E)
    agg = QDense(n_nodes, name="aggregate_wiring", **wiring)(et)                 # (H, N)
    agg = L.Permute((2, 1), name="aggregated")(agg)                              # (N, H)
    v = L.Concatenate(axis=-1, name="node_inputs")([x, agg])                     # (N, F + H)
    v = QDense(node_hidden, kernel_quantizer=_q(8, 0), bias_quantizer=_q(8, 0), name="node0")(v)
    v = QActivation(_qrelu(8, 2), name="node_relu0")(v)
    pooled = L.GlobalAveragePooling1D(name="pool")(v)
    h = QDense(n_classes, kernel_quantizer=_q(8, 0), bias_quantizer=_q(8, 0), name="logits")(pooled)
    out = L.Activation("softmax", name="softmax")(h)
    model = tf.keras.Model(inp, out, name="gnn")
    model.get_layer("receiver_wiring").set_weights([receivers])
    model.get_layer("sender_wiring").set_weights([senders])
    model.get_layer("aggregate_wiring").set_weights([receivers.T.copy()])
    _randomise_biases(model, seed)
    return model


def vae_encoder(n_features: int = 57, hidden: tuple[int, ...] = (32, 16), latent: int = 3, seed: int = 4):
    """AXOL1TL-like anomaly trigger: encoder to the latent means, score = sum(mu^2) on chip.

    The latent means pass a QActivation(quantized_bits) (the type the firmware keeps them in);
    Multiply(mu, mu) then a fixed all-ones QDense(1) sums the squares.
    """
    import tensorflow as tf
    from qkeras import QActivation, QDense

    tf.keras.utils.set_random_seed(seed)
    L = tf.keras.layers
    inp = tf.keras.Input((n_features,), name="x_in")
    x = QActivation(_q(8, 6), name="input_q")(inp)
    for i, width in enumerate(hidden):
        x = QDense(width, kernel_quantizer=_q(6, 2), bias_quantizer=_q(6, 2), name=f"enc{i}")(x)
        x = QActivation(_qrelu(8, 4), name=f"enc_relu{i}")(x)
    mu = QDense(latent, kernel_quantizer=_q(6, 2), bias_quantizer=_q(6, 2), name="mu")(x)
    mu = QActivation(_q(12, 6), name="mu_q")(mu)
    sq = L.Multiply(name="mu_squared")([mu, mu])
    score = QDense(1, kernel_quantizer=_q(2, 1), use_bias=False, trainable=False, name="score")(sq)
    model = tf.keras.Model(inp, score, name="vae_encoder")
    model.get_layer("score").set_weights([np.ones((latent, 1), dtype=np.float32)])
    _randomise_biases(model, seed)
    return model


BUILDERS: dict[str, Callable] = {"mlp": mlp, "cnn": cnn, "gnn": gnn, "vae": vae_encoder}
META: dict[str, dict] = {
    "mlp": {"family": "mlp", "task": "classification", "view": "hlf",
            "class_names": ["g", "q", "W", "Z", "t"]},
    "cnn": {"family": "cnn", "task": "classification", "view": "images",
            "class_names": ["g", "q", "W", "Z", "t"]},
    "gnn": {"family": "gnn", "task": "classification", "view": "constituents",
            "class_names": ["g", "q", "W", "Z", "t"]},
    "vae": {"family": "autoencoder", "task": "anomaly", "view": "features"},  # signal names: the data's
}


def save_example(family: str, path: str | Path, *, force: bool = False) -> Path:
    """Build the example model of ``family`` and save it with its metadata as a trigger model file."""
    from trigger.models.io import save_model

    if family not in BUILDERS:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
    model = BUILDERS[family]()
    meta = dict(META[family], role="student", example=True)
    return save_model(model, path, meta=meta, force=force)
