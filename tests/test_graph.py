"""trigger.models.graph: the one logits cut, anomaly score, and consumer / inbound maps."""

from __future__ import annotations

import numpy as np
import pytest

from trigger.errors import TriggerError


def _x(n: int = 5, width: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width)).astype("float32")


def test_logits_cut_sequential_with_softmax_layer():
    import tensorflow as tf

    from trigger.models.graph import is_softmax, logits_cut

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3, name="logits"),
                                 tf.keras.layers.Activation("softmax", name="softmax")])
    assert is_softmax(model.get_layer("softmax")) and not is_softmax(model.get_layer("logits"))
    head, is_logits = logits_cut(model)
    assert is_logits and head is not model and head.output_shape == (None, 3)
    x = _x()
    np.testing.assert_allclose(head(x).numpy(), model.get_layer("logits")(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(tf.nn.softmax(head(x)).numpy(), model(x).numpy(), rtol=1e-6)
    # a model without a softmax already outputs logits
    plain = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
    assert logits_cut(plain) == (plain, True)


def test_logits_cut_softmax_layer_class():
    import tensorflow as tf

    from trigger.models.graph import logits_cut

    x_in = tf.keras.Input((4,))
    logits = tf.keras.layers.Dense(3, name="logits")(x_in)
    model = tf.keras.Model(x_in, tf.keras.layers.Softmax()(logits))
    head, is_logits = logits_cut(model)
    assert is_logits and head.layers[-1].name == "logits"


def test_logits_cut_fused_softmax():
    import tensorflow as tf

    from trigger.models.graph import has_fused_softmax, logits_cut

    x_in = tf.keras.Input((4,))
    dense = tf.keras.layers.Dense(3, activation="softmax")
    model = tf.keras.Model(x_in, dense(x_in))
    assert has_fused_softmax(dense)
    assert logits_cut(model) == (model, False)  # probabilities: the logits are inside the Dense


def test_logits_cut_functional_branching_model():
    import tensorflow as tf

    from trigger.models.graph import logits_cut

    x_in = tf.keras.Input((4,), name="x")
    a = tf.keras.layers.Dense(3, name="branch_a")(x_in)
    b = tf.keras.layers.Dense(3, name="branch_b")(x_in)
    logits = tf.keras.layers.Add(name="logits")([a, b])
    side = tf.keras.layers.Dense(2, name="unused_side")(a)  # a layer after the logits that is no output
    del side
    model = tf.keras.Model(x_in, tf.keras.layers.Activation("softmax", name="softmax")(logits))
    head, is_logits = logits_cut(model)
    assert is_logits and head.output.node.layer.name == "logits"
    x = _x()
    np.testing.assert_allclose(tf.nn.softmax(head(x)).numpy(), model(x).numpy(), rtol=1e-6)


def test_logits_cut_follows_the_model_output_with_shared_layers():
    """Pruning wrappers share the quantized model's layers: the softmax layer then has two calls,
    and the cut must follow the wrapped model's own call, not the layer's first."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from trigger.models.graph import logits_cut

    x_in = tf.keras.Input((4,), name="x")
    h = tf.keras.layers.Dense(8, activation="relu", name="hidden")(x_in)
    logits = tf.keras.layers.Dense(3, name="logits")(h)
    base = tf.keras.Model(x_in, tf.keras.layers.Activation("softmax", name="softmax")(logits))

    def wrap(layer):
        if layer.name == "hidden":
            return tfmot.sparsity.keras.prune_low_magnitude(layer)
        return layer  # shared with base

    full = tf.keras.models.clone_model(base, clone_function=wrap)
    assert len(full.get_layer("softmax")._inbound_nodes) == 2  # one call per model
    head, is_logits = logits_cut(full)
    assert is_logits
    assert any(type(layer).__name__ == "PruneLowMagnitude" for layer in head.layers)
    assert "hidden" not in {layer.name for layer in head.layers}  # not the base model's graph
    base_head, _ = logits_cut(base)
    assert "hidden" in {layer.name for layer in base_head.layers}


def test_anomaly_score_of_autoencoder_is_the_sum_of_squares():
    import tensorflow as tf

    from trigger.models.graph import anomaly_score, anomaly_score_from_outputs

    tf.keras.utils.set_random_seed(1)
    x_in = tf.keras.Input((3, 2))
    ae = tf.keras.Model(x_in, tf.keras.layers.Dense(2)(x_in))
    x = np.random.default_rng(1).normal(size=(6, 3, 2)).astype("float32")
    out = ae.predict(x, verbose=0).astype(np.float64)
    expected = ((x.astype(np.float64) - out) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(anomaly_score(ae, x), expected, rtol=1e-12)
    np.testing.assert_allclose(anomaly_score_from_outputs(out, x), expected, rtol=1e-12)
    # firmware returns the reconstruction flattened per event
    np.testing.assert_allclose(anomaly_score_from_outputs(out.reshape(6, -1), x), expected, rtol=1e-12)


def test_anomaly_score_of_a_score_model_is_its_output():
    import tensorflow as tf

    from trigger.models.graph import anomaly_score, anomaly_score_from_outputs

    x_in = tf.keras.Input((4,))
    model = tf.keras.Model(x_in, tf.keras.layers.Dense(1, name="score")(x_in))
    x = _x(7)
    score = anomaly_score(model, x)
    assert score.shape == (7,) and score.dtype == np.float64
    np.testing.assert_allclose(score, model.predict(x, verbose=0)[:, 0], rtol=1e-6)
    with pytest.raises(TriggerError, match="one score per event"):
        anomaly_score_from_outputs(np.zeros((7, 2)), x)


def test_consumer_and_inbound_maps_of_a_branching_model():
    import tensorflow as tf

    from trigger.models.graph import kernel, layer_graph, weight_layers

    x_in = tf.keras.Input((4,), name="x")
    a = tf.keras.layers.Dense(3, name="a")(x_in)
    b = tf.keras.layers.Dense(3, name="b")(x_in)
    s = tf.keras.layers.Subtract(name="s")([a, b])
    c = tf.keras.layers.Concatenate(name="c")([s, a])
    model = tf.keras.Model(x_in, tf.keras.layers.Dense(1, name="out")(c))
    g = layer_graph(model)
    assert g.inbound == {"x": [], "a": ["x"], "b": ["x"], "s": ["a", "b"], "c": ["s", "a"], "out": ["c"]}
    assert g.consumers == {"x": ["a", "b"], "a": ["s", "c"], "b": ["s"], "s": ["c"], "c": ["out"]}
    assert g.outputs == ["out"] and g.classes["s"] == "Subtract"
    assert [layer.name for layer in g.parents("s")] == ["a", "b"]
    assert [layer.name for layer in g.children("x")] == ["a", "b"]
    assert [layer.name for layer in weight_layers(model)] == ["a", "b", "out"]
    np.testing.assert_array_equal(kernel(model.get_layer("a")), model.get_layer("a").kernel.numpy())
    # a Sequential model is read through its functional view
    seq = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2, name="d1"),
                               tf.keras.layers.Dense(1, name="d2")])
    sg = layer_graph(seq)
    assert sg.inbound["d2"] == ["d1"] and sg.outputs == ["d2"]
