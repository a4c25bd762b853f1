"""Float Keras architectures of the four model families (teachers, and students before compression).

Every model here is built only from layers that hls4ml's Keras-2 frontend converts and that the
compression stage (:mod:`trigger.compress`) turns into QKeras: Dense, Conv2D, MaxPooling2D,
Flatten, Permute, Concatenate, Subtract, Multiply, GlobalAveragePooling1D, BatchNormalization,
Activation. No Lambda layers, no custom layers, so a saved model loads anywhere.

Conventions shared with the compression and firmware stages:

- classifiers end in ``Dense(n_classes, name="logits")`` then a separate
  ``Activation("softmax", name="softmax")``: the firmware is compared on the logits;
- fixed (non-trainable, ``use_bias=False``) Dense layers hold 0/1 matrices (graph wiring, sums);
  the compression stage keeps them as exactly representable QDense layers;
- anomaly students output the anomaly score (N, 1), computed inside the model.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trigger.errors import TriggerError

FAMILIES = ("mlp", "cnn", "gnn", "autoencoder")


def _layers():
    import tensorflow as tf

    return tf.keras.layers


def interaction_matrices(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Receiver and sender incidence matrices (N, E) of the fully connected directed graph.

    Edge ``e`` runs from sender ``s`` to receiver ``r`` (r != s); ``receivers[r, e] = 1`` and
    ``senders[s, e] = 1``. N=16 particles give E = N (N - 1) = 240 edges.
    """
    edges = [(r, s) for r in range(n_nodes) for s in range(n_nodes) if r != s]
    receivers = np.zeros((n_nodes, len(edges)), dtype=np.float32)
    senders = np.zeros((n_nodes, len(edges)), dtype=np.float32)
    for e, (r, s) in enumerate(edges):
        receivers[r, e] = 1.0
        senders[s, e] = 1.0
    return receivers, senders


def _dense_stack(x, widths: Sequence[int], prefix: str, *, dropout: float = 0.0, batchnorm: bool = False):
    """Dense -> [BatchNormalization] -> ReLU (-> Dropout) for each width, named ``{prefix}{i}``."""
    L = _layers()
    for i, width in enumerate(widths, start=1):
        x = L.Dense(width, name=f"{prefix}{i}")(x)
        if batchnorm:
            x = L.BatchNormalization(name=f"{prefix}{i}_bn")(x)
        x = L.Activation("relu", name=f"{prefix}{i}_relu")(x)
        if dropout > 0:
            x = L.Dropout(dropout, name=f"{prefix}{i}_dropout")(x)
    return x


def _classifier_head(x, n_outputs: int):
    L = _layers()
    x = L.Dense(n_outputs, name="logits")(x)
    return L.Activation("softmax", name="softmax")(x)


def _fixed_dense(x, matrix: np.ndarray, name: str):
    """A non-trainable, bias-free Dense holding ``matrix`` (set after the model is built)."""
    layer = _layers().Dense(matrix.shape[1], use_bias=False, trainable=False, name=name)
    return layer(x), (name, matrix)


def build_mlp(arch, input_shape: Sequence[int], n_outputs: int, *, name: str):
    """MLP tagger on high-level features: Dense/ReLU stack, logits, softmax."""
    import tensorflow as tf

    _require_rank(input_shape, 1, "mlp", "hlf (N, 16)")
    inp = tf.keras.Input(tuple(input_shape), name="inputs")
    x = _dense_stack(inp, arch.hidden, "fc", dropout=arch.dropout)
    return tf.keras.Model(inp, _classifier_head(x, n_outputs), name=name)


def build_cnn(arch, input_shape: Sequence[int], n_outputs: int, *, name: str):
    """CNN on jet images: (Conv2D 'same' -> [BN] -> ReLU -> MaxPooling2D) per filter count, Flatten,
    Dense head, logits, softmax."""
    import tensorflow as tf

    L = tf.keras.layers
    _require_rank(input_shape, 3, "cnn", "images (N, S, S, 1)")
    inp = tf.keras.Input(tuple(input_shape), name="inputs")
    x = inp
    size = min(input_shape[0], input_shape[1])
    for i, filters in enumerate(arch.filters, start=1):
        x = L.Conv2D(filters, arch.kernel_size, padding="same", name=f"conv{i}")(x)
        if arch.batchnorm:
            x = L.BatchNormalization(name=f"conv{i}_bn")(x)
        x = L.Activation("relu", name=f"conv{i}_relu")(x)
        if arch.pool_size > 1 and size // arch.pool_size >= 1:
            x = L.MaxPooling2D(arch.pool_size, name=f"pool{i}")(x)
            size //= arch.pool_size
    x = L.Flatten(name="flatten")(x)
    x = _dense_stack(x, arch.dense, "fc", batchnorm=arch.batchnorm)
    return tf.keras.Model(inp, _classifier_head(x, n_outputs), name=name)


def build_gnn(arch, input_shape: Sequence[int], n_outputs: int, *, name: str):
    """Interaction network or DeepSets on constituents (N particles, F features).

    Interaction network: the fully connected directed graph's wiring lives in fixed 0/1 Dense
    layers, so the whole network is Dense/Permute/Concatenate and converts bit-exactly:
    Permute -> Dense(E) with the receiver (sender) matrix -> Permute gives each edge its receiver
    (sender) features; Concatenate -> (E, 2F); a per-edge Dense net computes messages; a fixed
    Dense with the transposed receiver matrix sums them per node; [node features, summed messages]
    go through a per-node Dense net; GlobalAveragePooling1D; Dense head; logits; softmax.

    DeepSets: per-particle Dense net (``node_hidden``), GlobalAveragePooling1D, head.
    N should be a power of two so the pooling's 1/N is exact in fixed point.
    """
    import tensorflow as tf

    L = tf.keras.layers
    _require_rank(input_shape, 2, "gnn", "constituents (N, P, 3)")
    n_nodes, _ = input_shape
    inp = tf.keras.Input(tuple(input_shape), name="inputs")
    fixed: list[tuple[str, np.ndarray]] = []
    if arch.variant == "interaction":
        receivers, senders = interaction_matrices(n_nodes)
        nodes_t = L.Permute((2, 1), name="nodes_t")(inp)                          # (F, N)
        recv, spec = _fixed_dense(nodes_t, receivers, "receiver_wiring")           # (F, E)
        fixed.append(spec)
        send, spec = _fixed_dense(nodes_t, senders, "sender_wiring")
        fixed.append(spec)
        recv = L.Permute((2, 1), name="receiver_features")(recv)                  # (E, F)
        send = L.Permute((2, 1), name="sender_features")(send)
        edges = L.Concatenate(axis=-1, name="edge_inputs")([recv, send])           # (E, 2F)
        messages = _dense_stack(edges, arch.edge_hidden, "edge")                   # (E, H)
        messages_t = L.Permute((2, 1), name="messages_t")(messages)                # (H, E)
        summed, spec = _fixed_dense(messages_t, np.ascontiguousarray(receivers.T), "aggregate_wiring")
        fixed.append(spec)                                                         # (H, N)
        summed = L.Permute((2, 1), name="aggregated")(summed)                      # (N, H)
        nodes = L.Concatenate(axis=-1, name="node_inputs")([inp, summed])          # (N, F + H)
    elif arch.variant == "deepsets":
        nodes = inp
    else:  # pragma: no cover - the config schema allows only the two variants
        raise TriggerError(f"unknown gnn variant {arch.variant!r}; use 'interaction' or 'deepsets'")
    nodes = _dense_stack(nodes, arch.node_hidden, "node")
    pooled = L.GlobalAveragePooling1D(name="pool")(nodes)
    x = _dense_stack(pooled, arch.head, "head")
    model = tf.keras.Model(inp, _classifier_head(x, n_outputs), name=name)
    for layer_name, matrix in fixed:
        model.get_layer(layer_name).set_weights([matrix])
    return model


def build_autoencoder_parts(arch, n_features: int, *, name: str) -> dict[str, Any]:
    """Shared encoder/decoder layers of an AE or VAE, for the float teacher's training graph.

    Returns a dict with ``inputs``, ``mu`` (latent means), ``log_var`` (VAE only, else None), and
    ``decode`` (a function applying the decoder layers to a latent tensor). The layers are created
    once, so the training graph and the saved inference models share their weights.
    """
    import tensorflow as tf

    L = tf.keras.layers
    inp = tf.keras.Input((n_features,), name="inputs")
    x = _dense_stack(inp, arch.encoder, "enc")
    mu = L.Dense(arch.latent, name="latent_mu")(x)
    log_var = L.Dense(arch.latent, name="latent_log_var")(x) if arch.variant == "vae" else None
    decoder_layers = []
    for i, width in enumerate(arch.decoder, start=1):
        decoder_layers += [L.Dense(width, name=f"dec{i}"), L.Activation("relu", name=f"dec{i}_relu")]
    decoder_layers.append(L.Dense(n_features, name="reconstruction"))

    def decode(z):
        for layer in decoder_layers:
            z = layer(z)
        return z

    return {"inputs": inp, "mu": mu, "log_var": log_var, "decode": decode}


def score_from_latent(inputs, mu, *, name: str):
    """AXOL1TL-like on-chip score: Multiply(mu, mu) -> fixed all-ones Dense(1) = sum of mu^2."""
    import tensorflow as tf

    L = tf.keras.layers
    squared = L.Multiply(name="mu_squared")([mu, mu])
    score = L.Dense(1, use_bias=False, trainable=False, name="score")(squared)
    model = tf.keras.Model(inputs, score, name=name)
    model.get_layer("score").set_weights([np.ones((mu.shape[-1], 1), dtype=np.float32)])
    return model


def score_from_reconstruction(inputs, reconstruction, *, name: str):
    """AE on-chip score: Subtract(input, reconstruction) -> Multiply(d, d) -> all-ones Dense(1)
    = sum of squared reconstruction errors."""
    import tensorflow as tf

    L = tf.keras.layers
    diff = L.Subtract(name="residual")([inputs, reconstruction])
    squared = L.Multiply(name="residual_squared")([diff, diff])
    score = L.Dense(1, use_bias=False, trainable=False, name="score")(squared)
    model = tf.keras.Model(inputs, score, name=name)
    model.get_layer("score").set_weights([np.ones((inputs.shape[-1], 1), dtype=np.float32)])
    return model


def build_autoencoder(arch, input_shape: Sequence[int], n_outputs: int = 1, *, name: str):
    """The anomaly model that outputs its score (N, 1).

    VAE: encoder -> latent means -> sum of mu^2 (no decoder, as in AXOL1TL).
    AE: encoder -> decoder -> sum of squared reconstruction errors.
    """
    _require_rank(input_shape, 1, "autoencoder", "features (N, 57)")
    if n_outputs != 1:
        raise TriggerError(f"an anomaly model has one output (its score), not {n_outputs}")
    parts = build_autoencoder_parts(arch, int(input_shape[0]), name=name)
    if arch.variant == "vae":
        return score_from_latent(parts["inputs"], parts["mu"], name=name)
    return score_from_reconstruction(parts["inputs"], parts["decode"](parts["mu"]), name=name)


_BUILDERS = {"mlp": build_mlp, "cnn": build_cnn, "gnn": build_gnn, "autoencoder": build_autoencoder}


def build_model(family: str, arch, input_shape: Sequence[int], n_outputs: int, *, name: str):
    """The float Keras model of ``family`` with architecture ``arch`` (a validated MLPArch, CNNArch,
    GNNArch or AEArch, or a plain dict of its keys).

    ``input_shape`` excludes the batch axis. Classifiers output softmax probabilities over
    ``n_outputs`` classes (the layer before, ``logits``, is what firmware is compared on);
    the autoencoder family outputs the anomaly score (N, 1) and needs ``n_outputs == 1``.
    """
    from trigger.config import ARCH_BY_FAMILY

    if family not in _BUILDERS:
        raise TriggerError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    if isinstance(arch, dict):
        arch = ARCH_BY_FAMILY[family].model_validate(arch)
    return _BUILDERS[family](arch, tuple(int(d) for d in input_shape), n_outputs, name=name)


def _require_rank(input_shape: Sequence[int], rank: int, family: str, expected: str) -> None:
    if len(input_shape) != rank:
        raise TriggerError(
            f"the {family} family needs inputs of rank {rank} per event ({expected}), got shape "
            f"{tuple(input_shape)}; check data.view in the config")
