"""Every QKeras quantizer kind through the bit-exact conversion (issue 27, deliverable 1).

Each quantizer is converted bit-exactly, or converted with its layer reported inexact
(``Conversion.inexact``), or refused in one line naming the layer and the quantizer. Many cases
share one compiled model: parallel branches from one quantized input, each branch one case, whose
hls4ml traces are compared layer by layer with the exact float64 reference. One model goes through
`trigger synth` (a chain holding one case of every class); the rest through the library.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_cli
from trigger.errors import TriggerError

INPUT_TYPE = "fixed<10,4,RND_CONV,SAT>"  # quantized_bits(10, 3, alpha=1)
N_EVENTS = 300


def _quantizers():
    import qkeras

    return qkeras


def _tree_concat(tensors: list):
    """hls4ml merges two tensors at a time: a tree of two-input Concatenate layers."""
    import tensorflow as tf

    level = 0
    while len(tensors) > 1:
        level += 1
        tensors = [tf.keras.layers.Concatenate(name=f"cat{level}_{i}")(tensors[i:i + 2]) if i + 1 < len(tensors)
                   else tensors[i] for i in range(0, len(tensors), 2)]
    return tensors[0]


def _branches_model(name: str, branches: dict):
    """Input -> quantized_bits(10, 3) -> each branch (a function of the quantized input) -> concatenated."""
    import tensorflow as tf

    q = _quantizers()
    tf.keras.utils.set_random_seed(1)
    inp = tf.keras.Input((8,), name="x")
    x = q.QActivation(q.quantized_bits(10, 3, alpha=1), name="q_in")(inp)
    outs = [build(x) for build in branches.values()]
    model = tf.keras.Model(inp, _tree_concat(outs), name=name)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # weights on a scale that exercises every quantizer's range
        if layer.get_weights():
            w = layer.get_weights()
            scale = 2.0 ** 18 if layer.name == "k_po2_big" else 0.8
            layer.set_weights([rng.normal(size=w[0].shape) * scale] + [rng.normal(size=v.shape) for v in w[1:]])
    return model


def _simulate(model, folder):
    """Convert with the recipe, run the C simulation; (conversion, csim block, traces, exact values)."""
    from trigger.config import SynthConfig
    from trigger.firmware import csim, reference
    from trigger.firmware.convert import convert_model, grid_inputs

    conversion = convert_model(model, SynthConfig(), folder)
    x = grid_inputs(conversion.input_precision, (8,), N_EVENTS, seed=0)
    block = csim.run_csim(conversion.hls_model, conversion.keras_model, x, inexact=conversion.inexact)
    _, traces = csim._trace(conversion.hls_model, x.astype(np.float64))
    exact = reference.evaluate(conversion.keras_model, x.astype(np.float64), keep=True)
    return conversion, block, traces, exact


def _layer_fraction(conversion, traces, exact, name: str) -> float:
    """Fraction of a Keras layer's values that hls4ml's trace of it computes exactly."""
    from trigger.firmware.csim import hls_source
    from trigger.ir.keras import from_keras

    source = hls_source(from_keras(conversion.keras_model), set(traces), name)
    assert source in traces, (name, source)
    return float(np.mean(traces[source].reshape(N_EVENTS, -1) == exact[name].reshape(N_EVENTS, -1)))


# --- weight quantizers (kernel and bias): all exact ------------------------------------------------

def _weight_cases() -> dict:
    q = _quantizers()
    plain = q.quantized_bits(6, 0, alpha=1)
    bias = q.quantized_bits(8, 3, alpha=1)
    cases = {
        "k_binary": (q.binary(), bias),                      # QKeras makes alpha None 'auto_po2' in a layer
        "k_binary_a1": (q.binary(alpha=1), bias),
        "k_binary_01": (q.binary(use_01=True, alpha=1), bias),
        "k_binary_auto": (q.binary(alpha="auto"), bias),
        "k_ternary": (q.ternary(), bias),
        "k_ternary_auto": (q.ternary(alpha="auto"), bias),
        "k_ternary_t": (q.ternary(alpha=0.5, threshold=0.2), bias),
        "k_po2": (q.quantized_po2(4), bias),
        "k_po2_big": (q.quantized_po2(8, max_value=2 ** 20), bias),  # weights ~2^18: hls4ml's own test
        "k_qb_auto": (q.quantized_bits(4, 0, alpha="auto"), bias),
        "k_qb_auto_po2": (q.quantized_bits(4, 0), bias),
        "k_qb_a075": (q.quantized_bits(4, 0, alpha=0.75), bias),
        "k_qb_unsigned": (q.quantized_bits(5, 1, keep_negative=False, alpha=1), bias),
        "k_qb_sym": (q.quantized_bits(6, 1, symmetric=1, alpha=1), bias),
        "k_qb_unsigned_sym": (q.quantized_bits(5, 1, keep_negative=False, symmetric=1, alpha=1), bias),
        "b_unsigned": (plain, q.quantized_bits(5, 2, keep_negative=False, alpha=1)),
        "b_po2": (plain, q.quantized_po2(4)),
        "b_alpha": (plain, q.quantized_bits(6, 2, alpha=0.5)),
        "b_sym": (plain, q.quantized_bits(6, 2, symmetric=1, alpha=1)),
        "b_float": (plain, None),                             # no bias quantizer: float32 values, typed exactly
    }
    return {name: (lambda x, name=name, kq=kq, bq=bq: q.QDense(4, kernel_quantizer=kq, bias_quantizer=bq,
                                                                name=name)(x))
            for name, (kq, bq) in cases.items()}


@pytest.fixture(scope="module")
def weights_run(tmp_path_factory):
    cases = _weight_cases()
    return cases, _simulate(_branches_model("weights", cases), tmp_path_factory.mktemp("q_weights") / "prj")


@pytest.mark.slow
def test_every_weight_quantizer_is_bit_exact(weights_run):
    cases, (conversion, block, traces, exact) = weights_run
    assert conversion.inexact == []
    assert block["reference"] == "QKeras evaluated exactly in float64"
    assert block["bit_exact_fraction"] == 1.0 and block["first_differing_layer"] is None
    for name in cases:
        assert _layer_fraction(conversion, traces, exact, name) == 1.0, name
    replaced = {r["layer"] for r in conversion.recipe if "(same values)" in r["action"]}
    assert replaced == set(cases) - {"k_qb_sym", "b_sym"}  # plain symmetric quantized_bits: typed exactly as is
    po2 = next(r["action"] for r in conversion.recipe if r["layer"] == "k_po2_big")
    assert po2 == "kernel_quantizer quantized_po2(8,1048576) as quantized_bits(21,20,0,alpha=1) (same values)"


def test_weights_needing_more_than_40_bits_are_refused_in_one_line():
    """quantized_po2(8) sends a zero weight to 2^-64: next to weights near 1 no 40-bit type holds them."""
    import tensorflow as tf

    from trigger.firmware.convert import prepare_model

    q = _quantizers()
    inp = tf.keras.Input((4,), name="x")
    model = tf.keras.Model(inp, q.QDense(2, kernel_quantizer=q.quantized_po2(8), name="wide")(inp))
    model.get_layer("wide").set_weights([np.array([[0.5, 0.0]] * 4, np.float32), np.zeros(2, np.float32)])
    with pytest.raises(TriggerError) as info:
        prepare_model(model)
    assert str(info.value) == ("layer 'wide' (QDense): kernel_quantizer quantized_po2(8) gives weights from "
                               "5.42101e-20 to 0.5 (smallest step 2^-64), which need a 65-bit fixed-point type; "
                               "trigger takes at most 40 bits: bound the quantizer's range (max_value, bits)")


# --- activation quantizers: exact, or flagged inexact ----------------------------------------------

EXACT_ACTIVATIONS = ("qb_sym", "qb_unsigned", "qb_unsigned_sym", "qb_int_big", "relu", "tanh", "tanh_sym",
                     "sigmoid", "binary", "inline_relu", "inline_tanh", "inline_sigmoid")
INEXACT_ACTIVATIONS = {
    "qb_alpha_half": "quantized_bits(6,2,0,alpha=0.5): hls4ml drops the scale alpha=0.5 of an activation",
    "qb_1bit": "quantized_bits(1,0,0,alpha=1): a 1-bit sign, which hls4ml implements as a pass-through",
    "relu_slope": "quantized_relu(6,2,0.25): hls4ml's LeakyReLU saturates negative values at -2^integer where "
                  "QKeras saturates at -0.25*2^integer",
    "relu_ub": "quantized_relu(6,2): a sigmoid mode or an upper bound that hls4ml does not apply",
    "sigmoid_real": "quantized_sigmoid(6,1): a transcendental curve, a lookup table in hls4ml",
    "sigmoid_sym": "quantized_sigmoid(6,1): hls4ml's unsigned cast keeps the zero code that symmetric=1 drops",
    "binary_01": "binary(use_01=1): hls4ml's binary/ternary tanh has its own threshold and output values",
    "ternary": "ternary(): hls4ml's binary/ternary tanh has its own threshold and output values",
    "ternary_t": "ternary(alpha=1,threshold=0.5): hls4ml's binary/ternary tanh has its own threshold and output "
                 "values",
    "inline_binary": "binary(): hls4ml's inline binary/ternary node does not output QKeras's values",
    "inline_relu_slope": "quantized_relu(6,2,0.25): hls4ml's LeakyReLU saturates negative values at -2^integer "
                         "where QKeras saturates at -0.25*2^integer",
}


def _activation_cases() -> dict:
    q = _quantizers()
    dense = q.QDense(16, kernel_quantizer=q.quantized_bits(6, 0, alpha=1),
                     bias_quantizer=q.quantized_bits(6, 2, alpha=1), name="d")
    pre = q.QActivation(q.quantized_bits(12, 4, alpha=1), name="dq")
    acts = {
        "qb_sym": q.quantized_bits(6, 2, symmetric=1, alpha=1),
        "qb_unsigned": q.quantized_bits(6, 2, keep_negative=False, alpha=1),
        "qb_unsigned_sym": q.quantized_bits(6, 2, keep_negative=False, symmetric=1, alpha=1),
        "qb_int_big": q.quantized_bits(4, 5, alpha=1),
        "qb_alpha_half": q.quantized_bits(6, 2, alpha=0.5),
        "qb_1bit": q.quantized_bits(1, 0, alpha=1),
        "relu": q.quantized_relu(6, 2),
        "relu_slope": q.quantized_relu(6, 2, negative_slope=0.25),
        "relu_ub": q.quantized_relu(6, 2, relu_upper_bound=1.5, is_quantized_clip=False),
        "tanh": q.quantized_tanh(6),
        "tanh_sym": q.quantized_tanh(6, symmetric=True),
        "sigmoid": q.quantized_sigmoid(6),
        "sigmoid_sym": q.quantized_sigmoid(6, symmetric=True),
        "sigmoid_real": q.quantized_sigmoid(6, use_real_sigmoid=True),
        "binary": q.binary(),
        "binary_01": q.binary(use_01=True),
        "ternary": q.ternary(),
        "ternary_t": q.ternary(threshold=0.5, alpha=1),
    }
    shared: dict = {}  # one Dense -> quantized_bits(12, 4) read by every activation branch

    def quantized_dense(x):
        if "d" not in shared:
            shared["d"] = pre(dense(x))
        return shared["d"]

    cases = {name: (lambda x, name=name, a=a: q.QActivation(a, name=name)(quantized_dense(x)))
             for name, a in acts.items()}
    inline = {"inline_relu": q.quantized_relu(6, 2), "inline_tanh": q.quantized_tanh(6),
              "inline_sigmoid": q.quantized_sigmoid(6), "inline_binary": q.binary(), "inline_relu_slope": q.quantized_relu(6, 2, negative_slope=0.25)}
    for name, a in inline.items():
        cases[name] = (lambda x, name=name, a=a: q.QDense(
            4, kernel_quantizer=q.quantized_bits(6, 0, alpha=1), bias_quantizer=q.quantized_bits(6, 2, alpha=1),
            activation=a, name=name)(x))
    return cases


@pytest.fixture(scope="module")
def activations_run(tmp_path_factory):
    cases = _activation_cases()
    return cases, _simulate(_branches_model("activations", cases), tmp_path_factory.mktemp("q_acts") / "prj")


@pytest.mark.slow
def test_activation_quantizers_are_exact_or_flagged_layer_by_layer(activations_run):
    cases, (conversion, block, traces, exact) = activations_run
    assert set(EXACT_ACTIVATIONS) | set(INEXACT_ACTIVATIONS) == set(cases)
    assert {e["layer"]: e["reason"] for e in conversion.inexact} == INEXACT_ACTIVATIONS
    assert block["reference"] == "QKeras evaluated exactly in float64"
    assert block["inexact_layers"] == conversion.inexact
    for name in EXACT_ACTIVATIONS:
        assert _layer_fraction(conversion, traces, exact, name) == 1.0, name
    # the flags are needed: each flagged quantizer that hls4ml keeps as its own node differs somewhere
    for name in set(INEXACT_ACTIVATIONS) - {"ternary", "ternary_t"}:  # hls4ml fuses ternary into 'd'
        assert _layer_fraction(conversion, traces, exact, name) < 1.0, name


# --- refusals: one line naming the layer and the quantizer ------------------------------------------

def _refused(case: str):
    import tensorflow as tf

    q = _quantizers()
    inp = tf.keras.Input((4,), name="x")
    x = q.QActivation(q.quantized_bits(8, 2, alpha=1), name="q_in")(inp)
    quantizer = {"po2": q.quantized_po2(4), "relu_po2": q.quantized_relu_po2(4),
                 "auto": q.quantized_bits(6, 2, alpha="auto"), "stochastic": q.quantized_bits(6, 2, alpha=1,
                                                                                        use_stochastic_rounding=True),
                 "ulaw": q.quantized_ulaw(6, 2), "noise": q.quantized_bits(6, 2, alpha=1, qnoise_factor=0.5)}[case]
    return tf.keras.Model(inp, q.QActivation(quantizer, name="act")(x))


REFUSALS = {
    "po2": "layer 'act' (QActivation): activation quantizer quantized_po2(4) is not converted by hls4ml 1.3.0 "
           "(activation quantizers: quantized_bits, quantized_relu, quantized_tanh, quantized_sigmoid, binary, "
           "ternary); use quantized_bits or quantized_relu",
    "relu_po2": "layer 'act' (QActivation): activation quantizer quantized_relu_po2(4) is not converted by hls4ml "
                "1.3.0 (activation quantizers: quantized_bits, quantized_relu, quantized_tanh, quantized_sigmoid, "
                "binary, ternary); use quantized_bits or quantized_relu",
    "auto": "layer 'act' (QActivation): activation quantizer quantized_bits(6,2,1,alpha='auto') scales each batch "
            "by its own maximum (alpha='auto'), which a firmware that sees one event cannot compute; use alpha=1 "
            "on activations",
    "stochastic": "layer 'act' (QActivation): activation quantizer quantized_bits(6,2,0,alpha=1,"
                  "use_stochastic_rounding=1) rounds at random, so no firmware can match it; "
                  "use_stochastic_rounding=False",
    "noise": "layer 'act' (QActivation): activation quantizer quantized_bits(6,2,0,alpha=1) mixes the unquantized "
             "input into its output (qnoise_factor=0.5); set qnoise_factor=1, its inference value",
    "ulaw": "layer 'act' (QActivation): activation quantizer quantized_ulaw(6,2) is not converted by hls4ml "
            "1.3.0 (activation quantizers: quantized_bits, quantized_relu, quantized_tanh, quantized_sigmoid, "
            "binary, ternary); use quantized_bits or quantized_relu",
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_unconvertible_activation_quantizer_is_refused_in_one_line(case):
    from trigger.firmware.convert import prepare_model

    with pytest.raises(TriggerError) as info:
        prepare_model(_refused(case))
    assert str(info.value) == REFUSALS[case]


# --- through `trigger synth`: one chain with a case of every class ------------------------------------

def _chain_model():
    """binary (default alpha), ternary, quantized_po2 with a large max_value, quantized_bits with
    alpha='auto' kernels; symmetric quantized_bits, quantized_tanh, quantized_sigmoid activations;
    a final quantized_relu with a negative slope (flagged inexact)."""
    import tensorflow as tf

    q = _quantizers()
    bias = q.quantized_bits(8, 3, alpha=1)
    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((8,), name="x")
    x = q.QActivation(q.quantized_bits(10, 3, alpha=1), name="q_in")(inp)
    x = q.QDense(8, kernel_quantizer=q.binary(), bias_quantizer=bias, name="d_binary")(x)
    x = q.QActivation(q.quantized_bits(8, 3, symmetric=1, alpha=1), name="a_sym")(x)
    x = q.QDense(8, kernel_quantizer=q.ternary(), bias_quantizer=q.quantized_po2(4), name="d_ternary")(x)
    x = q.QActivation(q.quantized_tanh(8), name="a_tanh")(x)
    x = q.QDense(8, kernel_quantizer=q.quantized_po2(8, max_value=2 ** 20), bias_quantizer=bias, name="d_po2")(x)
    x = q.QActivation(q.quantized_sigmoid(8), name="a_sigmoid")(x)
    x = q.QDense(4, kernel_quantizer=q.quantized_bits(4, 0, alpha="auto"), bias_quantizer=bias, name="d_auto")(x)
    out = q.QActivation(q.quantized_relu(6, 0, negative_slope=0.25), name="a_leaky")(x)  # saturates below -1
    model = tf.keras.Model(inp, out, name="quantizer_chain")
    big = model.get_layer("d_po2").get_weights()
    model.get_layer("d_po2").set_weights([big[0] * 2 ** 14, big[1]])  # weights ~2^13, sums far above fixed<16,6>
    return model


@pytest.mark.slow
def test_cli_synth_of_every_quantizer_class(tmp_path):
    path = tmp_path / "chain.h5"
    _chain_model().save(path)
    proc = run_cli("synth", path, "--out", tmp_path / "prj")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "prj" / "report.json").read_text())
    csim = report["csim"]
    assert report["model"]["input_type"] == INPUT_TYPE
    assert csim["reference"] == "QKeras evaluated exactly in float64"
    assert csim["inexact_layers"] == [{"layer": "a_leaky", "reason": LEAKY_REASON}]
    assert csim["compared"] == "outputs" and csim["output"]["kind"] == "outputs"
    # every layer before the flagged one is exact: the first difference is the flagged layer itself
    assert csim["first_differing_layer"]["layer"] == "a_leaky"
    assert csim["bit_exact_fraction"] == CHAIN_FRACTION
    assert (f"input type {INPUT_TYPE}; inexact by construction (reasons in report.md): a_leaky"
            in proc.stdout.splitlines())
    md = (tmp_path / "prj" / "report.md").read_text()
    assert f"input type `{INPUT_TYPE}`" in md and f"- `a_leaky`: {LEAKY_REASON}" in md


LEAKY_REASON = ("quantized_relu(6,0,0.25): hls4ml's LeakyReLU saturates negative values at -2^integer where "
                "QKeras saturates at -0.25*2^integer")
CHAIN_FRACTION = 0.98375  # measured: 130 of 8000 outputs where QKeras saturates at -0.25


@pytest.mark.slow
def test_cli_refuses_an_unconvertible_quantizer_with_exit_2(tmp_path):
    path = tmp_path / "po2_act.h5"
    _refused("po2").save(path)
    proc = run_cli("synth", path, "--out", tmp_path / "prj")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"trigger: error: {REFUSALS['po2']}"]
    assert not (tmp_path / "prj").exists()
