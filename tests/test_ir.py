"""The quantized-network IR (issue 28): one description every back end reads.

- A quantizer's exact semantics and its output format agree: for every cast quantizer (quantized_bits
  with alpha 1, quantized_relu), applying it equals casting to its format, the values lie on that
  format's grid and range, and QKeras's own float32 output agrees where float32 is exact.
- The input format is decided once: a model whose input has no quantizer gets the same input type in
  `trigger synth`'s conversion and in `trigger rtl`'s trace, and the RTL computes the exact reference
  on the cast inputs.
- A layer without a handler, or a configuration a handler cannot express, is one line naming it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trigger.ir.formats import DEFAULT_INPUT, FixedFormat, grid_of, parse_hls_type
from trigger.ir.quantizers import Unsupported, read_quantizer


@st.composite
def cast_quantizers(draw):
    """A QKeras quantized_bits(alpha=1) or quantized_relu with random widths."""
    from qkeras import quantized_bits, quantized_relu

    bits = draw(st.integers(2, 14))
    integer = draw(st.integers(0, bits - 1))
    if draw(st.booleans()):
        return quantized_relu(bits, integer)
    return quantized_bits(bits, integer, keep_negative=draw(st.booleans()), symmetric=draw(st.booleans()), alpha=1)


@settings(max_examples=60, deadline=None)
@given(cast_quantizers(), st.integers(0, 2 ** 31 - 1))
def test_cast_quantizer_is_its_format(quantizer, seed):
    """apply == cast to the format; on the grid, in range; QKeras's float32 output agrees."""
    import tensorflow as tf

    q = read_quantizer(quantizer)
    fmt = q.cast_format
    assert fmt is not None and parse_hls_type(fmt.hls_type()) == fmt
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0 * 2 ** q.integer, 2.0 * 2 ** q.integer, 500)
    x[:50] = np.round(x[:50] / fmt.step) * fmt.step + fmt.step / 2  # exact ties: half to even
    exact = q.apply(x)
    np.testing.assert_array_equal(exact, fmt.cast(x))
    assert np.all(exact >= fmt.low) and np.all(exact <= fmt.high)
    np.testing.assert_array_equal(np.round(exact / fmt.step) * fmt.step, exact)
    qkeras = np.asarray(quantizer(tf.constant(x.astype(np.float32))), dtype=np.float64)
    np.testing.assert_array_equal(qkeras, q.apply(x.astype(np.float32)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-2 ** 12, 2 ** 12), min_size=1, max_size=30), st.integers(0, 8))
def test_grid_of_holds_every_value_and_is_narrowest(codes, frac):
    """grid_of: every value exactly representable; one fraction bit fewer would not hold them."""
    values = np.asarray(codes, dtype=np.float64) * 2.0 ** -frac
    fmt = grid_of(values)
    np.testing.assert_array_equal(fmt.cast(values), values)
    nonzero = values[values != 0]
    if fmt.f > 0 and fmt.width > 2 and nonzero.size:  # 2 bits is the floor, which can pad f
        coarser = FixedFormat(fmt.k, fmt.i + 1, fmt.f - 1)
        assert not np.array_equal(coarser.cast(values), values)


def _unquantized_input_model():
    """8 inputs read directly by a QDense (no input quantizer), then a quantized_relu and a QDense."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(5)
    inp = tf.keras.Input((8,), name="x")
    x = QDense(6, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="fc1")(inp)
    x = QActivation(quantized_relu(8, 3), name="fc1_relu")(x)
    x = QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="out")(x)
    return tf.keras.Model(inp, x, name="raw_input")


def test_input_without_quantizer_has_one_type_for_synth_and_rtl(tmp_path):
    """synth's conversion and rtl's trace report the same input type (hls4ml's default, values
    truncated), and the RTL logic computes the exact reference on the cast inputs."""
    from da4ml.trace import comb_trace

    from trigger.config import SynthConfig
    from trigger.firmware.convert import convert_model
    from trigger.ir.evaluate import evaluate, input_values
    from trigger.rtl.trace import trace_model

    model = _unquantized_input_model()
    conversion = convert_model(model, SynthConfig(), tmp_path / "hls")
    traced = trace_model(model)
    assert conversion.input_precision == traced.input_format.hls_type() == DEFAULT_INPUT.hls_type() == "fixed<16,6>"
    assert any(e["layer"] == "x" and "truncated" in e["reason"] for e in conversion.inexact)
    x = np.random.default_rng(0).normal(0, 8, (200, 8))
    received = input_values(traced.network, x)
    np.testing.assert_array_equal(received, DEFAULT_INPUT.cast(x))
    expected = evaluate(traced.network, received)["out"]
    got = np.asarray(comb_trace(traced.inputs, traced.outputs).predict(received), dtype=np.float64)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def test_layer_a_handler_cannot_express_is_refused_by_name():
    """A ReLU with a bound has no exact fixed-point form (a Lookup node): the evaluator and the RTL
    tracer each refuse it in one line naming the layer and why."""
    import tensorflow as tf
    from qkeras import QActivation, quantized_bits

    from trigger.errors import TriggerError
    from trigger.ir.evaluate import evaluate
    from trigger.ir.keras import from_keras
    from trigger.ir.network import Lookup
    from trigger.rtl.trace import trace_model

    inp = tf.keras.Input((4,), name="x")
    q = QActivation(quantized_bits(8, 3, alpha=1), name="x_quant")(inp)
    out = tf.keras.layers.ReLU(max_value=2.0, name="bounded")(q)
    model = tf.keras.Model(inp, out)
    network = from_keras(model)
    assert isinstance(network.by_name["bounded"].op, Lookup)
    with pytest.raises(Unsupported, match=r"layer .bounded. \(ReLU\): a float slope, bound"):
        evaluate(network, np.zeros((1, 4)))
    with pytest.raises(TriggerError, match=r"layer 'bounded' \(ReLU\) is not supported by `trigger rtl`: a float slope") as err:
        trace_model(model)
    assert "\n" not in str(err.value)


def _ranged_model():
    """Input quantizer, Conv1D, relu, average pooling over 2, Dense, a skip Add and Concatenate."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense, quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(9)
    w = dict(kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 1, alpha=1))
    inp = tf.keras.Input((8, 2), name="x")
    x = QActivation(quantized_bits(8, 2, alpha=1), name="xq")(inp)
    c = QConv1D(3, 3, padding="same", name="conv", **w)(x)
    c = QActivation(quantized_relu(7, 3), name="relu")(c)
    p = tf.keras.layers.AveragePooling1D(2, name="pool")(c)
    d = QDense(3, name="pointwise", **w)(p)
    s = tf.keras.layers.Add(name="skip")([d, p])
    f = tf.keras.layers.Flatten(name="flat")(tf.keras.layers.Concatenate(name="cat")([s, p]))
    return tf.keras.Model(inp, QDense(4, name="out", **w)(f))


def test_every_tensor_value_lies_in_its_inferred_format():
    """The evaluator's values on random inputs (and on the extreme inputs) are within each node's
    interval and unchanged by a cast to its format; a Dense's grid adds its kernel's fraction bits."""
    from trigger.ir.evaluate import evaluate, input_values
    from trigger.ir.keras import from_keras
    from trigger.ir.ranges import tensor_ranges

    network = from_keras(_ranged_model())
    ranges = tensor_ranges(network)
    assert all(r is not None for r in ranges.values())
    fmt = network.input_format
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(fmt.low, fmt.high, (300, 8, 2)), np.full((1, 8, 2), fmt.low),
                        np.full((1, 8, 2), fmt.high)])
    values = evaluate(network, input_values(network, x), keep=True)
    for name, v in values.items():
        r = ranges[name]
        assert np.all(v >= r.low - 1e-12) and np.all(v <= r.high + 1e-12), name
        np.testing.assert_array_equal(r.format.cast(v), v, err_msg=name)
    assert ranges["conv"].format.width >= 8 and ranges["out"].format.f == ranges["flat"].f + 4


def test_a_dense_bound_is_reached_by_the_input_at_its_weights_signs():
    """The high bound of each Dense output is the value at the input corner that follows the signs
    of that output's weights: the bounds are exact, not loose."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    from trigger.ir.evaluate import evaluate
    from trigger.ir.keras import from_keras
    from trigger.ir.ranges import tensor_ranges

    tf.keras.utils.set_random_seed(4)
    inp = tf.keras.Input((6,), name="x")
    x = QActivation(quantized_bits(6, 1, alpha=1), name="xq")(inp)
    model = tf.keras.Model(inp, QDense(3, kernel_quantizer=quantized_bits(4, 0, alpha=1),
                                       bias_quantizer=quantized_bits(4, 0, alpha=1), name="d")(x))
    network = from_keras(model)
    r, fmt = tensor_ranges(network)["d"], network.input_format
    kernel = network.by_name["d"].op.kernel.values
    corners = np.where(kernel.T > 0, fmt.high, fmt.low)  # one input per output
    out = evaluate(network, corners)["d"]
    np.testing.assert_array_equal(np.diag(out), r.high)


def test_an_on_chip_reconstruction_error_is_a_score_output():
    """An autoencoder that subtracts its reconstruction from its input and sums the squares outputs
    one value per event: the IR's output kind is 'score'; a model scoring its latent is 'values'."""
    import tensorflow as tf

    from trigger.ir.keras import from_keras

    layers = tf.keras.layers
    x_in = tf.keras.Input((12,), name="features")
    mu = layers.Dense(3, name="mu")(layers.Dense(8, activation="relu", name="enc")(x_in))
    residual = layers.Subtract(name="residual")([x_in, layers.Dense(12, name="rec")(mu)])
    squared = layers.Multiply(name="squared")([residual, residual])
    scored = tf.keras.Model(x_in, layers.Dense(1, use_bias=False, name="score")(squared))
    latent = tf.keras.Model(x_in, layers.Dense(1, use_bias=False, name="norm")(layers.Multiply()([mu, mu])))
    assert from_keras(scored).output.kind == "score" and from_keras(scored).output.node == "score"
    assert from_keras(latent).output.kind == "values"
