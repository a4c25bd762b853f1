"""Layer coverage of `trigger synth` (issue 27, deliverable 2): QKeras models as a user of the peer
ecosystem writes them (hls4ml 1.3.0's own QKeras test models, rebuilt tiny).

Each class has its outcome asserted exactly:
- Sequential and functional models are handled alike: the input quantizer of a Sequential model
  (whose ``model.layers`` has no InputLayer) types the firmware's input, and the report says so.
- A float ``activation='relu'`` inline on a QConv2D/QDense (and ``Activation('relu')``, ``ReLU()``,
  ``QActivation('relu')``) gets its input's type, not hls4ml's default fixed<16,6>: bit-exact.
- A float ``activation='softmax'`` inline on the output QDense is a final softmax: the logits are
  compared (bit-exact) and ``--output`` applies; other inline float activations are flagged inexact.
- Depthwise and separable convolutions convert with io_stream (io_parallel does not compile or takes
  minutes in hls4ml 1.3.0), bit-exact; a depth multiplier other than 1 is refused in one line.
- QLSTM converts with input, result and accumulator types made one (the default does not compile)
  and is reported inexact (tanh/sigmoid tables); QSimpleRNN and QGRU cannot be built by QKeras 0.9.0
  on TensorFlow 2.14 and are refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from trigger.config import SynthConfig
from trigger.errors import TriggerError
from trigger.models.io import check_model_file

INPUT_TYPE = "fixed<8,3,RND_CONV,SAT>"


def _q(bits: int = 8, integer: int = 0):
    from qkeras import quantized_bits

    return quantized_bits(bits, integer, alpha=1)


def _weights(**extra) -> dict:
    return {"kernel_quantizer": _q(), "bias_quantizer": _q(), **extra}


def _set_weights(model, seed: int = 3):
    """Random weights on the quantizers' grids, large enough that every layer's result is wider than
    hls4ml's default fixed<16,6> (so a truncation would show)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-1, 1, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


def _relu_softmax_sequential(qrelu: bool = True):
    """Sequential: an input quantizer, QConv2D(activation='relu') (a 12-fractional-bit result),
    QActivation('relu') (with ``qrelu``: hls4ml 1.3.0 refuses it, trigger converts it as an
    Activation), Flatten, QDense -> ReLU(), QDense -> Activation('relu'), QDense(activation='softmax')."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense

    L = tf.keras.layers
    return _set_weights(tf.keras.Sequential([
        QActivation(_q(8, 2), input_shape=(5, 5, 1), name="qin"),
        QConv2D(3, 3, activation="relu", name="conv", **_weights()),
        *([QActivation("relu", name="qrelu")] if qrelu else []), L.Flatten(name="flat"),
        QDense(8, name="d1", **_weights()), L.ReLU(name="relu_layer"),
        QDense(6, name="d2", **_weights()), L.Activation("relu", name="act_relu"),
        QDense(4, activation="softmax", name="head", **_weights()),
    ], name="relu_softmax_seq"))


def _depthwise_functional():
    """Functional: a QDepthwiseConv2D with an inline relu and a QSeparableConv2D on a 6x6x2 image, a
    QSeparableConv1D (stride 2) on the same values as 36 positions, concatenated into a QDense."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, QDepthwiseConv2D, QSeparableConv1D, QSeparableConv2D

    L = tf.keras.layers
    inp = tf.keras.Input((6, 6, 2), name="img")
    x = QActivation(_q(8, 2), name="qin")(inp)
    a = QDepthwiseConv2D(3, depthwise_quantizer=_q(6), bias_quantizer=_q(6), activation="relu", name="dw")(x)
    a = QSeparableConv2D(3, 2, depthwise_quantizer=_q(6), pointwise_quantizer=_q(6), bias_quantizer=_q(6),
                         name="sep2")(a)
    b = L.Reshape((36, 2), name="seq")(x)
    b = QSeparableConv1D(3, 3, strides=2, depthwise_quantizer=_q(6, 1), pointwise_quantizer=_q(6),
                         bias_quantizer=_q(6), name="sep1")(b)
    x = L.Concatenate(name="cat")([L.Flatten(name="fa")(a), L.Flatten(name="fb")(b)])
    return _set_weights(tf.keras.Model(inp, QDense(4, name="head", **_weights())(x), name="depthwise_func"))


def _lstm():
    """hls4ml's test_qlstm model behind an input quantizer (inputs on an 8-bit grid)."""
    import tensorflow as tf
    from qkeras import QLSTM, QActivation

    q = "quantized_bits(8, 0, alpha=1)"
    return tf.keras.Sequential([
        QActivation(_q(8, 0), input_shape=(5, 2), name="qin"),
        QLSTM(4, kernel_quantizer=q, recurrent_quantizer=q, bias_quantizer=q, state_quantizer=q,
              activation="tanh", recurrent_activation="sigmoid", name="lstm"),
    ], name="qlstm")


# --- through `trigger synth` ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_reports(tmp_path_factory) -> dict:
    """The two representative models saved as .h5 and run through `trigger synth` (random inputs on
    the input grid): {name: report.json}."""
    folder = tmp_path_factory.mktemp("user_layers")
    reports = {}
    for name, build in (("relu_softmax_seq", _relu_softmax_sequential), ("depthwise_func", _depthwise_functional)):
        path = folder / f"{name}.h5"
        build().save(path)
        proc = run_cli("synth", path, "--out", folder / name)
        assert proc.returncode == 0, proc.stderr[-3000:]
        reports[name] = json.loads((folder / name / "report.json").read_text())
    return reports


@pytest.mark.slow
def test_sequential_inline_relu_and_softmax_are_bit_exact(cli_reports):
    report = cli_reports["relu_softmax_seq"]
    csim = report["csim"]
    assert report["model"]["input_type"] == INPUT_TYPE  # the Sequential model's input quantizer
    assert csim["bit_exact_fraction"] == 1.0, csim["first_differing_layer"]
    assert (csim["compared"], csim["compared_layer"]) == ("logits", "head")
    assert csim["output"]["kind"] == "logits" and csim["output"]["bit_exact_fraction"] == 1.0
    assert csim["inexact_layers"] == []
    actions = {(r["layer"], r["action"].split(" (")[0]) for r in report["recipe"]}
    assert {("qin_input", f"input type {INPUT_TYPE}"), ("conv", "relu result type ufixed<20,8>"),
            ("head_softmax", "the output layer's own softmax as a separate layer"),
            ("head_softmax", "left out: the firmware outputs the logits")} <= actions
    relu_layers = {r["layer"] for r in report["recipe"] if r["action"].startswith("relu result type")}
    assert relu_layers == {"conv", "qrelu", "relu_layer", "act_relu"}


@pytest.mark.slow
def test_depthwise_and_separable_convert_with_io_stream_bit_exactly(cli_reports):
    report = cli_reports["depthwise_func"]
    csim = report["csim"]
    assert report["config"]["io_type"] == "io_stream" and report["config"]["io"] == "stream"
    assert report["model"]["input_type"] == INPUT_TYPE
    assert csim["reference"] == "QKeras evaluated exactly in float64"
    assert csim["bit_exact_fraction"] == 1.0, csim["first_differing_layer"]
    assert (csim["compared"], csim["output"]["kind"]) == ("outputs", "outputs")
    assert csim["inexact_layers"] == []
    assert {"layer": "dw, sep2, sep1", "action": "converted with io_stream instead of io_parallel",
            "why": "hls4ml 1.3.0's io_parallel separable convolution does not compile and its depthwise one "
                   "takes minutes to compile (one statement per pixel and tap)"} in report["recipe"]


# --- through the library --------------------------------------------------------------------------

@pytest.mark.slow
def test_qlstm_compiles_and_is_reported_inexact(tmp_path):
    from trigger.firmware.convert import convert_model, grid_inputs
    from trigger.firmware.csim import run_csim

    conversion = convert_model(_lstm(), SynthConfig(), tmp_path / "lstm")
    assert conversion.input_precision == "fixed<8,1,RND_CONV,SAT>"
    assert conversion.inexact == [{"layer": "lstm", "reason": "QLSTM: activations tanh and sigmoid are lookup "
                                   "tables in hls4ml, and its state is computed in the accumulator type; "
                                   "QKeras float32 is compared"}]
    assert {"layer": "lstm", "action": "result type fixed<8,1,RND_CONV,SAT,0> (its input's type, also its "
            "accumulator type)", "why": "hls4ml's recurrent layers compile only when input, result and "
            "accumulator types are one type (the defaults fail to compile)"} in conversion.recipe
    x = grid_inputs(conversion.input_precision, (5, 2), 200, seed=1)
    csim = run_csim(conversion.hls_model, conversion.keras_model, x, inexact=conversion.inexact)
    assert csim["reference"] == ("QKeras float32 (exact evaluation unavailable: layer 'lstm' (QLSTM): "
                                 "not evaluated exactly)")
    assert csim["inexact_layers"] == conversion.inexact
    assert 0.0 < csim["max_abs_diff"] < 0.1  # tables, not a wrong computation
    # the estimator has no LSTM rule: its figures are lower bounds, and the budget gives no verdict
    from trigger.firmware.estimate import estimate_model
    from trigger.firmware.synth import report_figures

    estimate = estimate_model(conversion.hls_model).report()
    assert estimate.not_modelled == ["lstm (LSTM)"]
    budget = report_figures(estimate, None, SynthConfig(), [])["budget"]
    assert budget["fits"] is None and budget["note"].startswith("no verdict: the estimate has no model for "
                                                                "lstm (LSTM)")


def test_sequential_and_functional_get_the_same_configuration():
    """The same layers as Sequential and as functional: the same input type, recipe and flags."""
    import tensorflow as tf

    from trigger.firmware.convert import hls_config

    seq = _relu_softmax_sequential(qrelu=False)
    inp = tf.keras.Input((5, 5, 1), name="qin_input")
    x = inp
    for layer in seq.layers:
        x = layer(x)
    func = tf.keras.Model(inp, x, name="relu_softmax_func")
    (_, seq_recipe, seq_inexact, seq_input), (_, func_recipe, func_inexact, func_input) = (
        hls_config(model, SynthConfig()) for model in (seq, func))
    assert seq_input == func_input == INPUT_TYPE
    assert seq_recipe == func_recipe and seq_inexact == func_inexact


def test_inline_float_activations_are_flagged():
    """tanh, sigmoid, elu, selu, softplus, softsign, hard_sigmoid and swish inline on Q-layers,
    LeakyReLU and ReLU(max_value) layers, and a softmax inline before the output: each layer flagged
    (hls_config only, nothing compiled)."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense

    from trigger.firmware.convert import hls_config

    acts = ["tanh", "sigmoid", "elu", "selu", "softplus", "softsign", "hard_sigmoid", "swish"]
    inp = tf.keras.Input((8,), name="x")
    x = QActivation(_q(8, 2), name="qin")(inp)
    x = QConv1D(2, 3, activation="linear", name="conv",
                **_weights())(tf.keras.layers.Reshape((8, 1), name="r")(x))
    x = tf.keras.layers.Flatten(name="flat")(x)
    for act in acts:
        x = QDense(6, activation=act, name=f"d_{act}", **_weights())(x)
    x = tf.keras.layers.ReLU(max_value=4.0, name="relu4")(tf.keras.layers.LeakyReLU(name="leaky")(x))
    x = QDense(6, activation="softmax", name="inner_softmax", **_weights())(x)
    model = tf.keras.Model(inp, QDense(3, name="out", **_weights())(x))
    _, _, inexact, input_precision = hls_config(model, SynthConfig())
    assert input_precision == INPUT_TYPE
    assert inexact == [{"layer": f"d_{act}", "reason": f"inline activation {act}: a lookup table or float "
                        "scale in hls4ml, not bit-exact"} for act in acts] + [
        {"layer": name, "reason": f"{cls} layer: a float slope, bound or lookup table in hls4ml, not bit-exact"}
        for name, cls in (("leaky", "LeakyReLU"), ("relu4", "ReLU"))] + [
        {"layer": "inner_softmax", "reason": "inline softmax before the model output: a lookup table"}]


def test_depth_multiplier_is_refused_in_one_line(tmp_path):
    import tensorflow as tf
    from qkeras import QDepthwiseConv2D

    from trigger.firmware.convert import convert_model

    model = tf.keras.Sequential([QDepthwiseConv2D(3, depth_multiplier=2, depthwise_quantizer=_q(6),
                                                  bias_quantizer=_q(6), input_shape=(6, 6, 2), name="dw")])
    with pytest.raises(TriggerError) as info:
        convert_model(model, SynthConfig(), tmp_path / "dw")
    assert str(info.value) == ("layer 'dw' (QDepthwiseConv2D) has depth_multiplier=2: hls4ml 1.3.0 computes "
                               "depth multiplier 1 only (other values give wrong outputs); use depth_multiplier=1")


@pytest.mark.parametrize("cls", ["QSimpleRNN", "QGRU"])
def test_rnn_qkeras_cannot_build_is_refused_in_one_line(cls, tmp_path):
    """QKeras 0.9.0's QSimpleRNN/QGRU cells call tf.nest.is_sequence (gone in TF 2.14): building one
    fails, and a model configuration read as data is refused before Keras tries."""
    import tensorflow as tf
    from qkeras import QGRU, QSimpleRNN

    from trigger.models.safety import check_buildable

    layer = {"QSimpleRNN": QSimpleRNN, "QGRU": QGRU}[cls](4, name="rnn")
    with pytest.raises(AttributeError, match="is_sequence"):
        tf.keras.Sequential([tf.keras.Input((5, 2)), layer])
    plain = tf.keras.Sequential([tf.keras.Input((5, 2)), getattr(tf.keras.layers, cls[1:])(4, name="rnn")])
    config = json.loads(plain.to_json().replace(f'"class_name": "{cls[1:]}"', f'"class_name": "{cls}"'))
    with pytest.raises(TriggerError) as info:
        check_buildable(config)
    path = tmp_path / "rnn.h5"  # and a model file holding one, before Keras reads it
    plain.save(path)
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(TriggerError) as from_file:
        check_model_file(path)
    assert str(from_file.value) == str(info.value)
    assert str(info.value) == (
        f"layer 'rnn' ({cls}) cannot be used: QKeras 0.9.0's {cls} calls tf.nest.is_sequence, which "
        "TensorFlow 2.14 removed, so the layer cannot be built; use QLSTM (converted, its tanh/sigmoid tables "
        "reported inexact) or QDense/QConv layers")


def test_fused_softmax_is_split_into_its_own_layer():
    """The split model computes the same probabilities, and its logits layer is found."""
    from trigger.models.graph import softmax_input, split_fused_softmax

    model = _relu_softmax_sequential()
    split, name = split_fused_softmax(model)
    assert name == "head_softmax" and softmax_input(model) is None
    assert softmax_input(split)._keras_history.layer.name == "head"
    x = np.random.default_rng(0).uniform(-4, 4, (64, 5, 5, 1)).astype(np.float32)
    np.testing.assert_array_equal(split.predict(x, verbose=0), model.predict(x, verbose=0))
    assert split_fused_softmax(split) == (split, None)


def test_a_layer_hls4ml_has_no_handler_for_is_refused_in_one_line(tmp_path):
    """A Lambda (which only a trusted model file can hold) stops the conversion with one line naming
    it, not hls4ml's bare "ERROR: Unsupported layer type" Exception."""
    import tensorflow as tf

    from trigger.firmware.convert import convert_model

    inp = tf.keras.Input((4,), name="x")
    out = tf.keras.layers.Dense(2, name="d")(tf.keras.layers.Lambda(lambda t: 2 * t, name="double")(inp))
    with pytest.raises(TriggerError) as info:
        convert_model(tf.keras.Model(inp, out), SynthConfig(), tmp_path / "prj")
    assert str(info.value) == ("layer 'double' (Lambda) is not converted by hls4ml 1.3.0; replace it with supported "
                               "layers (docs/firmware.md lists what trigger converts)")
    assert not (tmp_path / "prj").exists()


# --- found by benchmarks/bench_user_models.py on hls4ml's own QKeras test models ---------------------

def test_dropout_is_not_refused_and_qkeras_activation_functions_stay_qactivations():
    """hls4ml skips Dropout (its MNIST CNN example has one); QActivation('binary_tanh') is a QKeras
    function Keras's Activation does not know, so it is left to hls4ml (was: an 'unexpected' ValueError)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense

    from trigger.firmware.convert import check_hls_layers, float_qactivations_as_activations

    model = tf.keras.Sequential([QDense(4, kernel_quantizer="binary", bias_quantizer="quantized_bits(5,2)",
                                        input_shape=(4,), name="d"),
                                 tf.keras.layers.Dropout(0.5, name="drop"), QActivation("binary_tanh", name="bt"),
                                 QActivation("relu", name="r")])
    check_hls_layers(model)
    recipe: list[dict] = []
    rebuilt = float_qactivations_as_activations(model, recipe)
    assert {type(l).__name__ for l in rebuilt.layers if l.name in ("bt", "r")} == {"QActivation", "Activation"}
    assert [type(l).__name__ for l in rebuilt.layers if l.name == "bt"] == ["QActivation"]
    assert recipe[0]["layer"] == "r"


def test_a_model_that_is_only_its_input_quantizer_is_refused_in_one_line(tmp_path):
    """A lone quantized_relu (hls4ml keeps its node, measured bit-exact) is not refused."""
    import tensorflow as tf
    from qkeras import QActivation

    from trigger.firmware.convert import convert_model
    from trigger.firmware.hls_layers import check_has_layers
    from trigger.ir.keras import from_keras

    model = tf.keras.Sequential([QActivation("quantized_bits(8,0)", input_shape=(1,), name="q")], name="only_q")
    with pytest.raises(TriggerError) as info:
        convert_model(model, SynthConfig(), tmp_path / "prj")
    assert str(info.value) == ("model 'only_q' is only its input quantizer 'q' (quantized_bits), which becomes the "
                               "firmware's input type: hls4ml's firmware of it does not compile (its input and "
                               "output become one port); add a layer after it")
    check_has_layers(from_keras(tf.keras.Sequential([QActivation("quantized_relu(4,0)", input_shape=(1,), name="r")])))


def test_a_binary_output_is_decoded_from_hls4ml_one_bit_code(tmp_path):
    """hls4ml outputs a final binary() as ap_uint<1> (0 for -1): compared undecoded, hls4ml's btnn
    model was 0.52 equal (its share of +1); decoded it is exact."""
    import tensorflow as tf
    from qkeras import QActivation, QDense

    from trigger.firmware.convert import convert_model
    from trigger.firmware.csim import binary_output_decoded
    from trigger.ir.keras import from_keras

    def binary_model(bn: bool):
        layers = [QDense(3, kernel_quantizer="ternary", bias_quantizer="quantized_bits(5,2)", input_shape=(4,),
                         name="d")] + ([tf.keras.layers.BatchNormalization(name="bn")] if bn else [])
        return tf.keras.Sequential(layers + [QActivation("binary()", name="sign")])

    code = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    # BatchNormalization then binary(): hls4ml fuses them into one node with a uint<1> output
    fused = convert_model(binary_model(True), SynthConfig(), tmp_path / "fused")
    np.testing.assert_array_equal(binary_output_decoded(from_keras(fused.keras_model), fused.hls_model, code),
                                  [[-1.0, 1.0, 1.0], [1.0, -1.0, -1.0]])
    # binary() alone: hls4ml's output is int<2>, holding -1 and +1 themselves
    plain = convert_model(binary_model(False), SynthConfig(), tmp_path / "plain")
    assert str(plain.hls_model.get_output_variables()[0].type.precision) == "int<2>"
    assert binary_output_decoded(from_keras(plain.keras_model), plain.hls_model, code) is code
