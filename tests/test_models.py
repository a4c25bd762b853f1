"""Model zoo architectures, input transforms and plots (fast: no training, no data generation)."""

import numpy as np
import pytest

from trigger.config import ModelConfig, load_config
from trigger.errors import TriggerError
from trigger.models import build_model, interaction_matrices
from trigger.models.inputs import fit_input_transform
from tests.conftest import REPO

SUPPORTED = {"InputLayer", "Dense", "Conv2D", "MaxPooling2D", "Flatten", "Permute", "Concatenate",
             "Subtract", "Multiply", "GlobalAveragePooling1D", "BatchNormalization", "Activation"}
SHIPPED = {p.stem: load_config(p, ModelConfig) for p in sorted((REPO / "configs").glob("*.yaml"))}
INPUT_SHAPES = {"hlf": (16,), "images": (16, 16, 1), "constituents": (16, 3), "features": (57,)}


def _shipped_models():
    for name, cfg in SHIPPED.items():
        for role in ("teacher", "student"):
            yield name, cfg, role


@pytest.mark.parametrize("name,cfg,role", list(_shipped_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_shipped_architectures_build_from_supported_layers(name, cfg, role):
    n_out = 1 if cfg.family == "autoencoder" else 5
    model = build_model(cfg.family, cfg.architecture(role), INPUT_SHAPES[cfg.data.view], n_out, name=name)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert kinds <= SUPPORTED, kinds - SUPPORTED  # nothing hls4ml / the compression stage cannot take
    assert model.output_shape == (None, n_out)
    if cfg.family == "autoencoder":
        assert model.layers[-1].name == "score" and not model.layers[-1].trainable
    else:
        assert model.layers[-1].name == "softmax" and model.layers[-2].name == "logits"
        x = np.random.default_rng(0).normal(size=(3, *INPUT_SHAPES[cfg.data.view])).astype("float32")
        np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)


def test_interaction_matrices_fully_connected():
    receivers, senders = interaction_matrices(16)
    assert receivers.shape == senders.shape == (16, 240)
    np.testing.assert_array_equal(receivers.sum(axis=0), 1)   # each edge has one receiver
    np.testing.assert_array_equal(receivers.sum(axis=1), 15)  # each node receives from 15 others
    assert not np.any(receivers * senders)                     # no self-loops
    pairs = {(int(r), int(s)) for r, s in zip(receivers.argmax(0), senders.argmax(0))}
    assert len(pairs) == 240


def _gnn(variant, seed=0):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    return build_model("gnn", {"variant": variant, "edge_hidden": [8, 8], "node_hidden": [8], "head": [8]},
                       (16, 3), 5, name="gnn")


def test_interaction_network_wiring_matches_numpy():
    """Edge inputs are [x_receiver, x_sender] and the aggregation sums each node's incoming messages."""
    import tensorflow as tf

    model = _gnn("interaction")
    x = np.random.default_rng(1).normal(size=(2, 16, 3)).astype("float32")
    probe = tf.keras.Model(model.input, [model.get_layer("edge_inputs").output,
                                         model.get_layer("edge2_relu").output,
                                         model.get_layer("aggregated").output])
    edges, messages, aggregated = probe.predict(x, verbose=0)
    receivers, senders = interaction_matrices(16)
    r_idx, s_idx = receivers.argmax(0), senders.argmax(0)
    np.testing.assert_allclose(edges, np.concatenate([x[:, r_idx], x[:, s_idx]], axis=-1), rtol=1e-6)
    expected = np.stack([messages[:, r_idx == node].sum(axis=1) for node in range(16)], axis=1)
    np.testing.assert_allclose(aggregated, expected, rtol=1e-5, atol=1e-6)
    assert not model.get_layer("receiver_wiring").trainable


@pytest.mark.parametrize("variant", ["interaction", "deepsets"])
def test_gnn_is_permutation_invariant(variant):
    model = _gnn(variant)
    x = np.random.default_rng(2).normal(size=(4, 16, 3)).astype("float32")
    perm = np.random.default_rng(3).permutation(16)
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(x[:, perm], verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_anomaly_scores_computed_in_model():
    import tensorflow as tf

    x = np.random.default_rng(4).normal(size=(5, 57)).astype("float32")
    tf.keras.utils.set_random_seed(0)
    vae = build_model("autoencoder", {"variant": "vae", "encoder": [32, 16], "latent": 3}, (57,), 1, name="v")
    mu = tf.keras.Model(vae.input, vae.get_layer("latent_mu").output).predict(x, verbose=0)
    np.testing.assert_allclose(vae.predict(x, verbose=0)[:, 0], (mu ** 2).sum(axis=1), rtol=1e-5)
    assert "latent_log_var" not in [layer.name for layer in vae.layers]  # encoder means only on chip

    ae = build_model("autoencoder", {"variant": "ae", "encoder": [16], "latent": 4, "decoder": [16]},
                     (57,), 1, name="a")
    rec = tf.keras.Model(ae.input, ae.get_layer("reconstruction").output).predict(x, verbose=0)
    np.testing.assert_allclose(ae.predict(x, verbose=0)[:, 0], ((x - rec) ** 2).sum(axis=1), rtol=1e-5)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(TriggerError, match="unknown model family"):
        build_model("transformer", {}, (16,), 5, name="x")
    with pytest.raises(TriggerError, match="rank 1.*data.view"):
        build_model("mlp", {"hidden": [8]}, (16, 3), 5, name="x")


def test_standardize_transform():
    rng = np.random.default_rng(5)
    x = rng.normal(loc=[3.0, -200.0, 0.0], scale=[2.0, 50.0, 0.0], size=(4000, 3)).astype("float32")
    offset, scale = fit_input_transform(x, "standardize")
    z = (x - offset) * scale
    np.testing.assert_allclose(z[:, :2].mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1, rtol=1e-3)
    assert scale[2] == 1.0  # a constant feature is left alone, not divided by zero


def test_pow2_transform_is_shift_only_and_fits_input_range():
    rng = np.random.default_rng(6)
    x = np.abs(rng.normal(scale=[30.0, 1.5, 0.01, 0.0], size=(5000, 4))).astype("float32")
    x[:, 0] += rng.exponential(200.0, size=5000)  # a long pT tail
    offset, scale = fit_input_transform(x, "pow2", input_integer=5)
    assert np.all(offset == 0)
    exponents = np.log2(scale)
    np.testing.assert_array_equal(exponents, np.round(exponents))  # powers of two: bit shifts
    assert scale[3] == 1.0
    inside = np.mean(np.abs(x * scale) <= 2 ** 5, axis=0)
    assert np.all(inside >= 0.999)
    assert scale[2] >= 64  # small features are scaled up, not only down


def test_plots_write_pngs(tmp_path):
    from trigger.report import plots

    rng = np.random.default_rng(7)
    y = rng.integers(0, 5, 500)
    p = rng.dirichlet(np.ones(5), size=500) + 0.5 * np.eye(5)[y]
    p /= p.sum(axis=1, keepdims=True)
    hist = {"teacher": {"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.95], "accuracy": [0.3, 0.5, 0.6],
                        "val_accuracy": [0.3, 0.45, 0.5], "best_epoch": 2},
            "student": {"loss": [1.2, 1.0], "val_loss": [1.3, 1.1]}}
    labels = np.concatenate([np.zeros(400, int), np.full(50, 1), np.full(50, 2)])
    scores = rng.exponential(size=500) * (1 + labels)
    written = [plots.training_curves(hist, tmp_path / "curves.png", title="t"),
               plots.classifier_roc(y, {"teacher": p, "student": p ** 1.1}, list("gqWZt"), tmp_path / "roc.png"),
               plots.anomaly_roc(labels, {"teacher": scores, "student": scores + 0.1}, ["A", "B"],
                                 tmp_path / "ad_roc.png"),
               plots.score_distributions(labels, {"teacher": scores}, ["SM", "A", "B"], tmp_path / "s.png")]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    # a collapsed student (every score 0: a scan trial at 3-bit weights) is still drawn, not an error
    collapsed = plots.score_distributions(labels, {"student": np.zeros(500)}, ["SM", "A", "B"], tmp_path / "z.png")
    assert collapsed.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pow2_transform_ignores_empty_slots():
    """A rarely filled object slot (zero = empty) gets the scale of its filled values, not a huge one."""
    rng = np.random.default_rng(8)
    full = rng.normal(scale=1.5, size=5000)
    rare = np.where(rng.random(5000) < 0.01, rng.normal(scale=1.5, size=5000), 0.0)
    _, scale = fit_input_transform(np.stack([full, rare, np.zeros(5000)], axis=1).astype("float32"), "pow2",
                                   input_integer=5)
    assert scale[0] == scale[1] == 0.5 and scale[2] == 1.0


def _config(name: str, **overrides):
    """A shipped config with nested overrides (test-only variants; the shipped files are unchanged)."""
    import yaml

    from trigger.config import validate_config

    raw = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())

    def merge(base, new):
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
    merge(raw, overrides)
    return validate_config(raw, ModelConfig)


def test_vae_teacher_trains_and_saves_a_plain_score_model(tmp_path):
    """The VAE teacher trains with decoder + KL, and what is saved is its encoder with the sum(mu^2)
    score: plain Keras layers only (the sampling layer stays in the training graph)."""
    from trigger import load_model
    from trigger.models.io import save_model
    from trigger.models.training import Split, train_anomaly_teacher

    cfg = _config("ad_autoencoder", teacher={"architecture": {"variant": "vae"}},
                  train={"epochs": 2, "batch_size": 64})
    rng = np.random.default_rng(9)
    x = rng.normal(size=(300, 57)).astype("float32")
    y = np.zeros(300, int)
    teacher, history = train_anomaly_teacher(cfg, Split(x[:200], y[:200], x[200:], y[200:], x[200:], y[200:]))
    assert len(history["loss"]) == 2 and "kl" in history
    assert teacher.output_shape == (None, 1)
    assert {type(layer).__name__ for layer in teacher.layers} <= SUPPORTED
    path = save_model(teacher, tmp_path / "teacher.h5")
    np.testing.assert_array_equal(load_model(path).predict(x, verbose=0), teacher.predict(x, verbose=0))
