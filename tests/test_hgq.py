"""HGQ proxy models read into the IR (issue 29 item 2, issue 28 item 1): ``from_keras`` reads HGQ's
``FixedPointQuantizer`` as a per-element fixed-point cast (``trigger.ir.quantizers.FixedCast``).

- The cast is HGQ's: ``FixedCast.apply`` equals HGQ's own ``gfixed_quantizer`` for per-element widths
  (0-bit elements included), each rounding and overflow mode the IR reads.
- Small HGQ models (an MLP 16-8-5 and a Conv1D DeepSets-like one), trained for a few seeded steps,
  ``trace_minmax`` and ``to_proxy_model``: the IR's exact evaluator equals the proxy model's Keras
  output bit for bit (float32 is exact at these widths); ``ranges.py``'s bounds and formats hold every
  evaluated value; hls4ml 1.3.0's C simulation (io_parallel, Latency) equals the IR (slow: compiles C++).
- A cast mode the IR does not read and an HGQ layer without a handler are one-line refusals.

HGQ is an optional extra (``pip install -e .[hgq]``, HGQ==0.2.6); CI's ``make test`` does not install
it, so this module is skipped there.
"""

from __future__ import annotations

import numpy as np
import pytest

from trigger.ir import network as ir
from trigger.ir.evaluate import evaluate
from trigger.ir.keras import from_keras
from trigger.ir.quantizers import FixedCast, Unsupported
from trigger.ir.ranges import tensor_ranges

HGQ = pytest.importorskip("HGQ", reason="HGQ is an optional extra (pip install -e .[hgq]); CI does not install it")


def _mlp(tf):
    return tf.keras.Sequential([tf.keras.Input((16,)), HGQ.HQuantize(beta=3e-4),
                                HGQ.HDense(8, activation="relu", beta=3e-4), HGQ.HDense(5, beta=3e-4)])


def _deepsets(tf):
    """Per-particle Conv1D (kernel 1) layers, a mean over the 8 particles, a Dense head."""
    return tf.keras.Sequential([tf.keras.Input((8, 3)), HGQ.HQuantize(beta=3e-4),
                                HGQ.HConv1D(8, 1, activation="relu", beta=3e-4), HGQ.HConv1D(4, 1, beta=3e-4),
                                HGQ.PAvgPool1D(8), HGQ.PFlatten(), HGQ.HDense(5, beta=3e-4)])


#: features with different scales, so that the input quantizer's integer bits differ per element
SCALES = {"mlp": 2.0 ** np.arange(-4, 12) / 16, "deepsets": np.array([1.0, 4.0, 0.25])}


def _data(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, 16) if kind == "mlp" else (n, 8, 3)
    return (rng.normal(size=shape) * SCALES[kind]).astype(np.float32)


@pytest.fixture(scope="module", params=["mlp", "deepsets"])
def proxy(request):
    """(kind, the proxy model, its IR, test inputs) of an HGQ model trained for three short epochs."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    kind = request.param
    model = _mlp(tf) if kind == "mlp" else _deepsets(tf)
    x, y = _data(kind, 512, 0), np.random.default_rng(1).integers(0, 5, 512)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[HGQ.ResetMinMax()])
    HGQ.trace_minmax(model, x, verbose=False)
    proxy_model = HGQ.to_proxy_model(model)
    x_test = _data(kind, 2000, 2) * 2.0  # twice the traced range: some inputs wrap
    return kind, proxy_model, from_keras(proxy_model), x_test


def _casts(network: ir.Network) -> list[FixedCast]:
    return [n.op.function for n in network.nodes
            if isinstance(n.op, ir.Activate) and isinstance(n.op.function, FixedCast)]


@pytest.mark.parametrize("rounding", ["TRN", "RND"])
@pytest.mark.parametrize("overflow", ["WRAP", "SAT", "SAT_SYM"])
def test_fixed_cast_is_hgq_quantizer(rounding, overflow):
    """apply == HGQ's gfixed_quantizer on per-element widths (some 0 bits, some negative i or f),
    ties included; the bounds of the cast hold every output."""
    from HGQ.proxy.fixed_point_quantizer import gfixed_quantizer

    rng = np.random.default_rng(sum(map(ord, rounding + overflow)))
    shape = (40,)
    k = rng.integers(0, 2, shape)
    bits = rng.integers(0, 9, shape)
    integers = rng.integers(-2, 6, shape)
    cast = FixedCast.from_hgq(k[None], bits[None], integers[None], rounding, overflow, shape)
    x = rng.uniform(-80, 80, (300,) + shape)
    x[:100] = np.floor(x[:100] * 8) / 8 + 1 / 16  # exact ties on fine grids
    x = x.astype(np.float32)
    hgq = np.asarray(gfixed_quantizer(x, k[None].astype(np.int8), bits[None].astype(np.int8),
                                      integers[None].astype(np.int8), rounding, overflow), dtype=np.float64)
    np.testing.assert_array_equal(cast.apply(x), hgq)
    low, high = cast.bounds(np.full(shape, -80.0), np.full(shape, 80.0))
    assert np.all(hgq >= low) and np.all(hgq <= high)


def test_ir_equals_the_proxy_model(proxy):
    """The exact evaluator equals the proxy model's own (float32) output bit for bit; the input
    quantizer fixes the input format and at least one cast has per-element widths."""
    kind, proxy_model, network, x = proxy
    assert network.input_quantizer == proxy_model.layers[1].name
    assert any(len(np.unique(c.k + c.i + c.f)) > 1 or len(np.unique(c.f)) > 1 for c in _casts(network))
    assert not network.opaque()
    keras_out = np.asarray(proxy_model.predict(x, verbose=0), dtype=np.float64)
    np.testing.assert_array_equal(evaluate(network, x)[network.outputs[0]], keras_out)
    # the input format, cast to first, changes nothing
    quantizer = network.by_name[network.input_quantizer].op.function
    np.testing.assert_array_equal(quantizer.apply(network.input_format.cast(x)), quantizer.apply(x))


def test_ranges_hold_every_value(proxy):
    """Every evaluated value lies in its node's bounds and on its tensor format (inputs in the input format)."""
    kind, proxy_model, network, x = proxy
    values = evaluate(network, network.input_format.cast(x), keep=True)
    ranges = tensor_ranges(network)
    checked = 0
    for name, v in values.items():
        r = ranges[name]
        assert r is not None, name
        fmt = r.format
        assert np.all(v >= r.low) and np.all(v <= r.high), name
        np.testing.assert_array_equal(fmt.cast(v), v, err_msg=name)
        checked += 1
    assert checked == len(network.nodes) - 1


@pytest.mark.slow
def test_hls4ml_csim_equals_ir(proxy, tmp_path):
    """hls4ml 1.3.0 converts the proxy model (io_parallel, Latency); its C simulation equals the IR."""
    import hls4ml

    kind, proxy_model, network, x = proxy
    config = {"Model": {"Precision": "fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"}}
    hls_model = hls4ml.converters.convert_from_keras_model(
        proxy_model, hls_config=config, backend="Vivado", output_dir=str(tmp_path / kind), io_type="io_parallel")
    hls_model.compile()
    expected = evaluate(network, x)[network.outputs[0]]
    csim = np.asarray(hls_model.predict(np.ascontiguousarray(x, dtype=np.float64)), dtype=np.float64)
    np.testing.assert_array_equal(csim.reshape(expected.shape), expected)


def test_refusals_name_the_layer():
    """A cast mode the IR does not read, and an HGQ layer without a handler, are one line naming it."""
    import tensorflow as tf
    from HGQ.proxy import FixedPointQuantizer, UnaryLUT

    inputs = tf.keras.Input((4,))
    cast = FixedPointQuantizer(1, 8, 3, RND="RND_CONV", SAT="WRAP", name="odd_cast")(inputs)
    lut = UnaryLUT((0, 2, 2), (1, 2, 3), table=np.zeros(16, np.float32), name="lut")(cast)
    network = from_keras(tf.keras.Model(inputs, lut))
    assert {n.name: n.op.reason for n in network.opaque()} == {
        "odd_cast": "an HGQ cast with rounding RND_CONV and overflow WRAP (the IR reads TRN or RND, and WRAP, "
                    "SAT or SAT_SYM)",
        "lut": "no IR handler for UnaryLUT"}
    with pytest.raises(Unsupported, match=r"^layer 'odd_cast' \(FixedPointQuantizer\): an HGQ cast with rounding "
                                          r"RND_CONV[^\n]*$"):
        evaluate(network, np.zeros((1, 4)))


def test_rtl_trace_of_the_proxy_model_equals_the_ir(proxy):
    """`trigger rtl`'s trace of the proxy model (per-element casts as da4ml quantizes): da4ml's
    interpreter of the traced logic equals the IR's exact evaluator on the firmware's inputs."""
    from da4ml.trace import comb_trace

    from trigger.ir.evaluate import input_values
    from trigger.rtl.trace import trace_model

    kind, proxy_model, network, x = proxy
    traced = trace_model(proxy_model)
    received = input_values(network, x[:300])
    expected = evaluate(network, received if network.input_quantizer is None else x[:300])[traced.output_layer]
    got = np.asarray(comb_trace(traced.inputs, traced.outputs).predict(received.reshape(len(received), -1)),
                     dtype=np.float64)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


@pytest.mark.slow
def test_trigger_conversion_of_the_proxy_model_is_bit_exact(proxy, tmp_path):
    """The proxy model through trigger's own conversion (`trigger synth`'s `convert_model`, the
    recipe read from the IR) and C simulation: every output equal to the IR's exact evaluation,
    nothing flagged inexact."""
    from trigger.config import SynthConfig
    from trigger.firmware.convert import convert_model
    from trigger.firmware.csim import run_csim

    kind, proxy_model, network, x = proxy
    conversion = convert_model(proxy_model, SynthConfig(), tmp_path / "prj")
    assert conversion.inexact == [], conversion.inexact
    assert conversion.input_precision == network.input_format.hls_type()
    csim = run_csim(conversion.hls_model, conversion.keras_model, x[:300])
    assert csim["bit_exact_fraction"] == 1.0 and csim["reference"].endswith("evaluated exactly in float64"), csim


@pytest.mark.slow
def test_trigger_synth_and_rtl_take_a_saved_proxy_model(proxy, tmp_path):
    """A proxy model saved as .h5 is read as data first (FixedPointQuantizer is a known class), then
    `trigger synth` converts it bit-exactly and `trigger rtl` (Verilator) reproduces it bit for bit."""
    import json

    from tests.conftest import run_cli

    kind, proxy_model, network, x = proxy
    if kind != "mlp":
        pytest.skip("one saved model is enough for the command line")
    path = tmp_path / "hgq_mlp.h5"
    proxy_model.save(path)
    synth = run_cli("synth", path, "--out", tmp_path / "fw")
    assert synth.returncode == 0, synth.stderr[-2000:]
    report = json.loads((tmp_path / "fw" / "report.json").read_text())
    assert report["csim"]["bit_exact_fraction"] == 1.0 and report["csim"]["inexact_layers"] == []
    rtl = run_cli("rtl", path, "--out", tmp_path / "rtl", "--no-synth", "--no-hls")
    assert rtl.returncode == 0, rtl.stderr[-2000:]
    assert json.loads((tmp_path / "rtl" / "report.json").read_text())["rtl_sim"]["bit_exact_fraction"] == 1.0
