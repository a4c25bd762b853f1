"""Compression: float -> QKeras rebuild, quantization-aware pruning, distillation loss, BOPs."""

from __future__ import annotations


import numpy as np
import pytest

from trigger.config import DistillSection, LayerQuant, PruningSection, QuantSection, TrainSection
from trigger.errors import TriggerError

HIGH_BITS = QuantSection(weight_bits=24, weight_integer=6, activation_bits=24, activation_integer=8,
                         input_bits=24, input_integer=8)


def _float_model_with_everything():
    """A small float model NOT in the zoo: fused and separate relu, a foldable BatchNormalization,
    a fixed 0/1 matrix, a merge, Dropout and a final softmax."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(3)
    x_in = tf.keras.Input((10,), name="features")
    h = tf.keras.layers.Dense(24, activation="relu", name="dense_a")(x_in)
    h = tf.keras.layers.Dense(12, name="dense_b")(h)
    h = tf.keras.layers.BatchNormalization(name="bn_b")(h)
    h = tf.keras.layers.Activation("relu", name="relu_b")(h)
    h = tf.keras.layers.Dropout(0.1, name="drop")(h)
    fixed = tf.keras.layers.Dense(3, use_bias=False, trainable=False, name="wiring")
    f = fixed(h)
    h = tf.keras.layers.Concatenate(name="cat")([h, f])
    out = tf.keras.layers.Dense(4, activation="softmax", name="logits")(h)
    model = tf.keras.Model(x_in, out, name="not_in_zoo")
    rng = np.random.default_rng(0)
    fixed.set_weights([(rng.random((12, 3)) > 0.5).astype("float32")])
    model.get_layer("bn_b").set_weights([rng.random(12) + 0.5, rng.normal(size=12) * 0.1,
                                         rng.normal(size=12) * 0.1, rng.random(12) + 0.5])
    return model


def test_quantize_puts_quantizers_everywhere_and_keeps_float_weights():
    from trigger.compress import quantize_model

    model = _float_model_with_everything()
    q = quantize_model(model, HIGH_BITS)
    kinds = {layer.name: type(layer).__name__ for layer in q.layers}
    # every weight layer is quantized; bn folded into dense_b; dropout gone; softmax kept plain
    assert kinds["dense_a"] == kinds["dense_b"] == kinds["wiring"] == kinds["logits"] == "QDense"
    assert "bn_b" not in kinds and "drop" not in kinds
    assert kinds["relu_b"] == "QActivation" and kinds["dense_a_relu"] == "QActivation"
    assert kinds["features_quant"] == "QActivation" and q.layers[1].name == "features_quant"
    assert type(q.layers[-1]).__name__ == "Activation" and q.layers[-1].get_config()["activation"] == "softmax"
    for layer in q.layers:
        if hasattr(layer, "kernel"):
            assert layer.kernel_quantizer_internal is not None, layer.name
    # the fixed matrix is non-trainable and exactly representable (0/1 -> quantized_bits(2,1))
    wiring = q.get_layer("wiring")
    assert not wiring.trainable
    np.testing.assert_array_equal(wiring.kernel_quantizer_internal(wiring.kernel).numpy(),
                                  model.get_layer("wiring").kernel.numpy())
    x = np.random.default_rng(1).normal(size=(256, 10)).astype("float32")
    np.testing.assert_allclose(q.predict(x, verbose=0), model.predict(x, verbose=0), atol=2e-4)


def test_per_layer_bits_override_defaults():
    from trigger.compress import quantize_model

    quant = QuantSection(layers={"dense_a": LayerQuant(weight_bits=4, weight_integer=1, activation_bits=3)})
    q = quantize_model(_float_model_with_everything(), quant)
    assert q.get_layer("dense_a").kernel_quantizer_internal.bits == 4
    assert q.get_layer("dense_a").kernel_quantizer_internal.integer == 1
    assert q.get_layer("dense_a_relu").quantizer.bits == 3
    assert q.get_layer("dense_b").kernel_quantizer_internal.bits == 6
    with pytest.raises(TriggerError, match="nosuchlayer"):
        quantize_model(_float_model_with_everything(), QuantSection(layers={"nosuchlayer": LayerQuant()}))


def test_per_layer_override_of_bits_a_layer_does_not_have_is_an_error():
    """dense_b has a linear activation (its ReLU is the layer relu_b, after a folded batch norm):
    activation bits set on dense_b would quantize nothing, so they are refused with the fix."""
    from trigger.compress import quantize_model

    with pytest.raises(TriggerError, match=r"quantization.layers.dense_b .*activation layer 'relu_b'"):
        quantize_model(_float_model_with_everything(),
                       QuantSection(layers={"dense_b": LayerQuant(activation_bits=10, activation_integer=1)}))
    with pytest.raises(TriggerError, match=r"quantization.layers.relu_b sets weight bits"):
        quantize_model(_float_model_with_everything(), QuantSection(layers={"relu_b": LayerQuant(weight_bits=4)}))
    q = quantize_model(_float_model_with_everything(),
                       QuantSection(layers={"relu_b": LayerQuant(activation_bits=10, activation_integer=1)}))
    assert (q.get_layer("relu_b").quantizer.bits, q.get_layer("relu_b").quantizer.integer) == (10, 1)


def test_exact_quantizer_for_fixed_values():
    from trigger.compress.quantize import exact_quantizer_bits

    assert exact_quantizer_bits(np.array([0.0, 1.0])) == (2, 1, True)
    assert exact_quantizer_bits(np.array([0.0, 0.25, -3.0])) == (5, 2, True)
    bits, integer, exact = exact_quantizer_bits(np.array([1 / 3]))
    assert not exact and bits <= 32


def test_unsupported_layer_is_named():
    import tensorflow as tf

    from trigger.compress import quantize_model

    x_in = tf.keras.Input((8, 4))
    h = tf.keras.layers.LSTM(5, name="my_lstm")(x_in)
    model = tf.keras.Model(x_in, tf.keras.layers.Dense(2)(h))
    with pytest.raises(TriggerError) as err:
        quantize_model(model, QuantSection())
    msg = str(err.value)
    assert "my_lstm" in msg and "LSTM" in msg and "Conv2D" in msg and "\n" not in msg


def test_distillation_loss_matches_hand_computation():
    from trigger.compress import distillation_loss

    labels = np.array([0, 2])
    t = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 1.5]])
    s = np.array([[1.0, 1.0, 0.0], [0.0, -1.0, 2.0]])
    alpha, temp = 0.3, 2.0

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    ce = -np.log(softmax(s)[[0, 1], labels])
    pt, ps = softmax(t / temp), softmax(s / temp)
    kl = np.sum(pt * np.log(pt / ps), axis=1)
    expected = np.mean(alpha * ce + (1 - alpha) * temp**2 * kl)
    got = distillation_loss(labels, t, s, alpha=alpha, temperature=temp)
    assert got == pytest.approx(expected, rel=1e-5)
    # alpha = 1 is plain cross entropy; identical logits leave only the label term
    assert distillation_loss(labels, t, s, alpha=1.0, temperature=temp) == pytest.approx(ce.mean(), rel=1e-5)
    assert distillation_loss(labels, s, s, alpha=0.0, temperature=temp) == pytest.approx(0.0, abs=1e-6)


def _toy_classification(n=2400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10)).astype("float32") * 0.5
    w = rng.normal(size=(10, 4))
    y = np.argmax(x @ w + 0.3 * rng.normal(size=(n, 4)), axis=1)
    return x, y


@pytest.fixture(scope="module")
def compressed_toy():
    """One QAP run (75 % constant sparsity, distillation) on a model not in the zoo."""
    from trigger.compress import compress_model

    x, y = _toy_classification()
    teacher = _float_model_with_everything()
    teacher.compile("adam", "sparse_categorical_crossentropy")
    teacher.fit(x[:1600], y[:1600], epochs=8, batch_size=64, verbose=0)
    result = compress_model(teacher, x_train=x[:1600], y_train=y[:1600], x_val=x[1600:2000], y_val=y[1600:2000],
                            task="classification", teacher=teacher, quant=QuantSection(),
                            pruning=PruningSection(sparsity=0.75, begin_fraction=0.2),
                            distillation=DistillSection(enabled=True), train=TrainSection(epochs=8, batch_size=64),
                            seed=5)
    return teacher, result, x[2000:], y[2000:]


@pytest.mark.slow
def test_compress_reaches_sparsity_and_zeros_survive_save(compressed_toy, tmp_path):
    from trigger.compress import model_sparsity
    from trigger.models.io import load_model, save_model

    teacher, result, x_test, y_test = compressed_toy
    sp = result.sparsity
    # hidden weight layers pruned to 75 % (within 2 points); output and fixed wiring untouched
    assert abs(sp["dense_a"] - 0.75) <= 0.02 and abs(sp["dense_b"] - 0.75) <= 0.02
    assert sp["logits"] < 0.1 and result.targets == {"dense_a": 0.75, "dense_b": 0.75}
    wiring = result.model.get_layer("wiring").kernel.numpy()
    np.testing.assert_array_equal(wiring, teacher.get_layer("wiring").kernel.numpy())
    assert not any("prune" in type(layer).__name__.lower() for layer in result.model.layers)
    assert len(result.history["val_loss"]) >= 1 and len(result.history["sparsity"]) == len(result.history["loss"])
    path = save_model(result.model, tmp_path / "student.h5", meta={"role": "student"})
    back = load_model(path)
    assert model_sparsity(back) == pytest.approx(sp)
    np.testing.assert_array_equal(back.predict(x_test, verbose=0), result.model.predict(x_test, verbose=0))
    # the student still learned the task (chance is 0.25)
    acc = np.mean(back.predict(x_test, verbose=0).argmax(axis=1) == y_test)
    assert acc > 0.6


def test_bops_on_a_hand_computable_model():
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    from trigger.compress import model_bops

    x_in = tf.keras.Input((4,))
    h = QActivation(quantized_bits(8, 3, alpha=1), name="in_q")(x_in)
    h = QDense(2, kernel_quantizer=quantized_bits(6, 2, alpha=1), bias_quantizer=quantized_bits(6, 2, alpha=1),
               name="d1")(h)
    h = QActivation(quantized_relu(5, 2), name="relu")(h)
    out = QDense(1, kernel_quantizer=quantized_bits(4, 1, alpha=1), bias_quantizer=quantized_bits(4, 1, alpha=1),
                 name="d2")(h)
    q = tf.keras.Model(x_in, out)
    q.get_layer("d1").set_weights([np.array([[0, 1], [0.5, 0], [-1, 0.25], [2, -0.5]], "float32"), np.zeros(2, "float32")])
    q.get_layer("d2").set_weights([np.array([[1], [-0.5]], "float32"), np.zeros(1, "float32")])
    bops = model_bops(q)
    # d1: m*n*((1-f)*b_a*b_w + b_a + b_w + log2 n) = 2*4*(0.75*8*6 + 8 + 6 + 2) = 416
    assert bops["layers"]["d1"]["zero_fraction"] == 0.25
    assert bops["layers"]["d1"]["bops"] == pytest.approx(416.0)
    # d2: 1*2*(1*5*4 + 5 + 4 + 1) = 60
    assert bops["layers"]["d2"]["activation_bits"] == 5 and bops["layers"]["d2"]["weight_bits"] == 4
    assert bops["layers"]["d2"]["bops"] == pytest.approx(60.0)
    assert float(bops) == pytest.approx(476.0)
    # a float model counts every weight and activation at float_bits: 2*4*(32*32 + 64 + 2)
    f = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2, kernel_initializer="ones")])
    assert model_bops(f, float_bits=32)["total"] == pytest.approx(8 * (32 * 32 + 64 + 2))


# --- anomaly trigger ---------------------------------------------------------------------------

def _toy_ad(n=3000, seed=0):
    """Background on a 3-dim subspace of 12 features; 'signal' (label 1) off the subspace."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(3, 12)) / 2
    bg = rng.normal(size=(n, 3)) @ basis + 0.05 * rng.normal(size=(n, 12))
    sig = rng.normal(size=(n // 10, 3)) @ basis + 0.6 * rng.normal(size=(n // 10, 12))
    x = np.concatenate([bg, sig]).astype("float32")
    y = np.concatenate([np.zeros(n, int), np.ones(n // 10, int)])
    order = rng.permutation(len(y))
    return x[order], y[order]


def _ae_parts(with_reconstruction_score: bool):
    import tensorflow as tf

    L = tf.keras.layers
    x_in = tf.keras.Input((12,), name="features")
    h = L.Dense(8, activation="relu", name="enc")(x_in)
    mu = L.Dense(3, name="mu")(h)
    if with_reconstruction_score:
        rec = L.Dense(12, name="rec")(L.Dense(8, activation="relu", name="dec")(mu))
        d = L.Subtract(name="residual")([x_in, rec])
        sq = L.Multiply(name="squared")([d, d])
        width = 12
    else:
        sq = L.Multiply(name="squared")([mu, mu])
        width = 3
    score_layer = L.Dense(1, use_bias=False, trainable=False, name="score")
    model = tf.keras.Model(x_in, score_layer(sq), name="toy_ad")
    score_layer.set_weights([np.ones((width, 1), "float32")])
    return model


def test_anomaly_score_of_autoencoder_and_score_models():
    import tensorflow as tf

    from trigger.compress import anomaly_score

    x_in = tf.keras.Input((4,))
    ae = tf.keras.Model(x_in, tf.keras.layers.Dense(4, kernel_initializer="zeros")(x_in))
    x = np.array([[1.0, 2.0, 0.0, -1.0]], "float32")
    np.testing.assert_allclose(anomaly_score(ae, x), [6.0])
    scored = _ae_parts(with_reconstruction_score=False)
    assert anomaly_score(scored, np.zeros((3, 12), "float32")).shape == (3,)
    bad = tf.keras.Model(x_in, tf.keras.layers.Dense(2)(x_in))
    with pytest.raises(TriggerError, match="one score per event"):
        anomaly_score(bad, np.zeros((2, 4), "float32"))


@pytest.mark.slow
def test_anomaly_students_distilled_self_trained_or_refused():
    import tensorflow as tf

    from trigger.compress import anomaly_score, compress_model

    x, y = _toy_ad()
    tf.keras.utils.set_random_seed(0)
    x_in = tf.keras.Input((12,))
    teacher = tf.keras.Model(x_in, tf.keras.layers.Dense(12)(tf.keras.layers.Dense(3)(x_in)))
    teacher.compile("adam", "mse")
    bg = x[y == 0]
    teacher.fit(bg[:2000], bg[:2000], epochs=15, batch_size=64, verbose=0)
    common = dict(x_train=x[:2200], y_train=y[:2200], x_val=x[2200:2800], y_val=y[2200:2800], task="anomaly",
                  quant=QuantSection(weight_bits=8, weight_integer=2, activation_bits=10, activation_integer=4,
                                     input_bits=12, input_integer=4),
                  pruning=PruningSection(sparsity=0.0), train=TrainSection(epochs=6, batch_size=64), seed=1)
    test_x, test_y = x[2800:], y[2800:]

    def auc(scores):
        from sklearn.metrics import roc_auc_score
        return roc_auc_score(test_y, scores)

    # encoder-only score: distilled from the teacher's (log-scaled) reconstruction error
    student = compress_model(_ae_parts(False), teacher=teacher, distillation=DistillSection(enabled=True), **common)
    assert student.distilled and "log1p(teacher score)" in student.objective
    s_student, s_teacher = anomaly_score(student.model, test_x), anomaly_score(teacher, test_x)
    assert np.corrcoef(np.argsort(np.argsort(s_student)), np.argsort(np.argsort(s_teacher)))[0, 1] > 0.5
    assert auc(s_student) > 0.7
    # without a teacher an encoder-only score would collapse to zero: refused with one line
    with pytest.raises(TriggerError, match="needs a teacher"):
        compress_model(_ae_parts(False), teacher=None, distillation=DistillSection(enabled=False), **common)
    # an on-chip reconstruction score minimised on background is autoencoder training
    ae = compress_model(_ae_parts(True), teacher=None, distillation=DistillSection(enabled=False), **common)
    assert not ae.distilled and "reconstruction score" in ae.objective
    assert ae.history["loss"][-1] < ae.history["loss"][0]
    assert auc(anomaly_score(ae.model, test_x)) > 0.7
    # a reconstruction-score student distilled from the teacher matches it in log space
    ae_kd = compress_model(_ae_parts(True), teacher=teacher, distillation=DistillSection(enabled=True), **common)
    assert ae_kd.distilled and ae_kd.objective.startswith("MSE(log1p(student score)")
    assert auc(anomaly_score(ae_kd.model, test_x)) > 0.7


def test_shipped_compress_configs_are_valid(repo):
    from trigger.config import CompressConfig, load_config

    paths = sorted((repo / "configs" / "compress").glob("*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        config = load_config(path, CompressConfig)
        assert 0 <= config.pruning.sparsity < 1


@pytest.mark.slow
def test_polynomial_schedule_per_layer_targets_on_a_sequential_model():
    import tensorflow as tf

    from trigger.compress import compress_model

    tf.keras.utils.set_random_seed(4)
    model = tf.keras.Sequential([tf.keras.Input((10,)), tf.keras.layers.Dense(16, activation="relu", name="h1"),
                                 tf.keras.layers.Dense(16, activation="relu", name="h2"),
                                 tf.keras.layers.Dense(4, name="out")], name="seq")
    x, y = _toy_classification(n=1200)
    pruning = PruningSection(sparsity=0.5, schedule="polynomial", begin_fraction=0.1, end_fraction=0.5,
                             prune_output=True, layers={"h1": 0.8})
    result = compress_model(model, x_train=x[:900], y_train=y[:900], x_val=x[900:], y_val=y[900:],
                            task="classification", teacher=None, quant=QuantSection(), pruning=pruning,
                            distillation=DistillSection(enabled=False), train=TrainSection(epochs=6, batch_size=64),
                            seed=2)
    assert result.targets == {"h1": 0.8, "h2": 0.5, "out": 0.5}
    for name, target in result.targets.items():
        assert abs(result.sparsity[name] - target) <= 0.02, (name, result.sparsity)
    # the sparsity rose gradually, and the kept epoch is one with every target reached
    assert result.history["sparsity"][0] < result.history["sparsity"][-1]
    assert result.history["sparsity"][result.best_epoch] == pytest.approx(np.mean([0.8, 0.5, 0.5]), abs=0.02)
    with pytest.raises(TriggerError, match="pruning.layers names 'nope'"):
        compress_model(model, x_train=x[:900], y_train=y[:900], x_val=x[900:], y_val=y[900:],
                       task="classification", teacher=None, quant=QuantSection(),
                       pruning=PruningSection(sparsity=0.5, layers={"nope": 0.5}),
                       distillation=DistillSection(enabled=False), train=TrainSection(epochs=1), seed=2)
