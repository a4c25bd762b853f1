"""The latency/resource estimator (trigger.firmware.estimate): its rules, dispatch, report dict,
calibration files and refit.

Its errors against the published synthesis reports (tests/data/published/) are measured by
tests/test_estimator_heldout.py. The hls4ml-tutorial jet MLP 16-64-32-32-5 used here is built from
its record there (``build`` section), converted with hls4ml 1.3.0 (no compile).
"""

from __future__ import annotations

import math
from pathlib import Path

import hls4ml
import numpy as np
import pytest
import tensorflow as tf

from tools.estimator.published import load_design
from trigger.firmware.estimate import Estimate, estimate_model
from trigger.runtime import set_seed

PART = "xczu3eg-sbva484-1-e"
DATA = Path(__file__).resolve().parent / "data" / "published"


def jet_mlp(quantized: bool, sparsity: float = 0.0, seed: int = 8):
    """The tutorial's 16-64-32-32-5 MLP as its published record builds it (plain Keras or QKeras
    6-bit), with random weights drawn as the record says, at ``sparsity``."""
    from tools.estimator.designs import keras_model, set_weights

    name = "tutorial_jet_mlp_qkeras6_pruned_rf1" if quantized else "tutorial_jet_mlp_rf1"
    spec = load_design(DATA / f"{name}.yaml").build
    model = keras_model(spec)
    set_weights(model, spec.weights.model_copy(update={"sparsity": sparsity, "seed": seed}))
    return model


def convert(model, reuse: int, out_dir, strategy: str = "Latency", io_type: str = "io_parallel",
            softmax: str = "latency", accum: str | None = "fixed<16,6>"):
    """hls4ml config mirroring the 2021 tutorial: every 'auto' type at the default ap_fixed<16,6>
    (accumulators too, as hls4ml then did) and the softmax 'latency' implementation."""
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vivado",
                                                  default_precision="fixed<16,6>")
    config["Model"]["ReuseFactor"] = reuse
    config["Model"]["Strategy"] = strategy
    for name, layer_config in config["LayerName"].items():
        layer_config["ReuseFactor"] = reuse
        layer_config["Strategy"] = strategy
        precision = layer_config.get("Precision")
        if accum and isinstance(precision, dict):
            for key, value in list(precision.items()):
                if value == "auto":
                    precision[key] = accum
        if name == "softmax":
            layer_config["Implementation"] = softmax
    return hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, backend="Vivado", output_dir=str(out_dir), part=PART,
        clock_period=5, io_type=io_type)


@pytest.fixture(scope="module")
def float_mlp():
    set_seed(9)
    return jet_mlp(False, seed=9)


def test_other_reuse_factors_and_resource_strategy(float_mlp, tmp_path):
    """Out-of-sample plausibility: reuse 4 and the Resource strategy, not used in any fit."""
    by_rf = {rf: estimate_model(convert(float_mlp, rf, tmp_path / f"rf{rf}")).to_dict() for rf in (1, 2, 4)}
    dsp = {rf: e["resources"]["DSP"] for rf, e in by_rf.items()}
    # shared multipliers: one DSP per RF weight slots (+5 for the softmax)
    assert dsp[4] == math.ceil(16 * 64 / 4) + math.ceil(64 * 32 / 4) + math.ceil(32 * 32 / 4) \
        + math.ceil(32 * 5 / 4) + 5
    assert dsp[1] > dsp[2] > dsp[4]
    assert by_rf[4]["latency"]["interval"] == 4
    assert by_rf[1]["latency"]["max_cycles"] < by_rf[2]["latency"]["max_cycles"] < by_rf[4]["latency"]["max_cycles"]

    resource = estimate_model(convert(float_mlp, 16, tmp_path / "res", strategy="Resource")).to_dict()
    layers = {layer["name"]: layer for layer in resource["layers"]}
    # Resource strategy: block_factor = n_in*n_out/RF multipliers, a RF-cycle loop per layer
    assert layers["fc2"]["DSP"] == 64 * 32 // 16
    assert layers["fc2"]["cycles"] >= 16
    assert resource["latency"]["interval"] >= 16
    assert resource["resources"]["DSP"] < dsp[4]


def test_default_accumulators_cost_more_and_narrow_products_use_luts(float_mlp, tmp_path):
    """hls4ml 1.3.0's 'auto' accumulators (exact, ~37 bits) cost more LUT than ap_fixed<16,6>,
    and an 8-bit design puts no product on a DSP."""
    narrow = estimate_model(convert(float_mlp, 1, tmp_path / "a")).to_dict()
    wide = estimate_model(convert(float_mlp, 1, tmp_path / "b", accum=None)).to_dict()
    assert wide["resources"]["LUT"] > narrow["resources"]["LUT"]
    config = hls4ml.utils.config_from_keras_model(float_mlp, granularity="model", backend="Vivado",
                                                  default_precision="fixed<8,3>")
    small = hls4ml.converters.convert_from_keras_model(
        float_mlp, hls_config=config, backend="Vivado", output_dir=str(tmp_path / "c"), part=PART,
        clock_period=5, io_type="io_parallel")
    dense = [layer for layer in estimate_model(small).to_dict()["layers"] if layer["class"] == "Dense"]
    assert all(layer["DSP"] == 0 and layer["LUT"] > 0 for layer in dense)


def test_cnn_stream_and_parallel_and_merge_layers(tmp_path):
    """Conv2D/pooling/merge/global pooling are estimated in both IO types; unknown layers warn."""
    from tensorflow.keras import layers

    set_seed(10)
    inp = layers.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same", name="conv1")(inp)
    x = layers.Activation("relu", name="r1")(x)
    y = layers.Conv2D(4, 1, name="conv2")(x)
    z = layers.Add(name="add")([x, y])
    z = layers.MaxPooling2D(2, name="pool")(z)
    z = layers.GlobalAveragePooling2D(name="gap")(z)
    out = layers.Dense(3, name="out")(z)
    model = tf.keras.Model(inp, out)
    for io_type in ("io_parallel", "io_stream"):
        config = hls4ml.utils.config_from_keras_model(model, granularity="model", backend="Vivado")
        hls_model = hls4ml.converters.convert_from_keras_model(
            model, hls_config=config, backend="Vivado", output_dir=str(tmp_path / io_type), part=PART,
            clock_period=5, io_type=io_type)
        estimate = estimate_model(hls_model)
        assert isinstance(estimate, Estimate)
        result = estimate.to_dict()
        layers_by_name = {layer["name"]: layer for layer in result["layers"]}
        assert layers_by_name["conv1"]["DSP"] > 0 and layers_by_name["conv1"]["cycles"] > 0
        assert layers_by_name["add"]["LUT"] > 0 and layers_by_name["add"]["DSP"] == 0
        assert layers_by_name["pool"]["LUT"] > 0
        assert layers_by_name["gap"]["LUT"] > 0
        assert not any("warning" in layer for layer in result["layers"])
        assert result["latency"]["max_cycles"] >= max(layer["cycles"] for layer in result["layers"]) \
            if io_type == "io_parallel" else result["latency"]["max_cycles"] > 64
        if io_type == "io_stream":
            # one input pixel per cycle through the line buffer: the first conv sets the interval
            assert result["latency"]["interval"] >= 64


def test_unknown_layer_is_zero_cost_with_warning(tmp_path):
    from types import SimpleNamespace

    class Strange:
        name = "strange"
        class_name = "StrangeLayer"

    class Graph:
        config = SimpleNamespace(get_config_value=lambda key: {"ClockPeriod": 5, "IOType": "io_parallel",
                                                                "Part": PART}.get(key))

        def get_layers(self):
            return [Strange()]

    result = estimate_model(Graph()).to_dict()
    assert result["layers"][0]["DSP"] == 0 and "not modelled" in result["layers"][0]["warning"]


@pytest.mark.slow
def test_distributed_arithmetic_jet_mlp_uses_no_dsp(tmp_path):
    """hls4ml 1.3.0 Strategy='distributed_arithmetic' through da4ml: dense layers get da4ml's LUT
    cost and 0 DSP. da4ml is the '[da]' extra, which `make test` installs; its first use in a fresh
    environment compiles numba kernels for ~3 minutes (cached afterwards)."""
    import da4ml  # noqa: F401  (a missing extra is a failure here, not a skip)

    from trigger.firmware.estimate import load_calibration

    set_seed(12)
    model = jet_mlp(True, 0.75, seed=12)
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vivado",
                                                  default_precision="fixed<16,6>")
    for name, layer_config in config["LayerName"].items():
        if name.startswith("fc") or name == "output":
            layer_config["Strategy"] = "distributed_arithmetic"
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, backend="Vivado", output_dir=str(tmp_path / "da"), part=PART,
        clock_period=5, io_type="io_parallel")
    result = estimate_model(hls_model).to_dict()
    dense = [layer for layer in result["layers"] if layer["class"] == "Dense"]
    assert len(dense) == 4
    for layer in dense:
        node = hls_model.graph[layer["name"]]
        assert layer["DSP"] == 0 and "warning" not in layer
        # da4ml's cost is adder bits, LUTs at the calibration's factor per logic LUT
        assert layer["LUT"] == round(load_calibration().lut_per_logic * node.get_attr("da_kernel_cost")) > 0
        assert layer["cycles"] >= 1
    # only the softmax (not a DA layer) keeps its DSPs
    assert result["resources"]["DSP"] == sum(layer["DSP"] for layer in result["layers"]
                                             if layer["class"] == "Softmax")
    print("\nDA jet MLP:", result["latency"], result["resources"],
          [(layer["name"], layer["LUT"], layer["cycles"]) for layer in dense])


def test_depthwise_conv_warns_instead_of_guessing(tmp_path):
    from tensorflow.keras import layers

    set_seed(13)
    inp = layers.Input((8, 8, 3))
    x = layers.DepthwiseConv2D(3, name="dw")(inp)
    out = layers.Dense(2, name="out")(layers.Flatten()(x))
    model = tf.keras.Model(inp, out)
    config = hls4ml.utils.config_from_keras_model(model, granularity="model", backend="Vivado")
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, backend="Vivado", output_dir=str(tmp_path / "dw"), part=PART,
        clock_period=5, io_type="io_parallel")
    layers_by_name = {layer["name"]: layer for layer in estimate_model(hls_model).to_dict()["layers"]}
    assert "not modelled" in layers_by_name["dw"]["warning"] and layers_by_name["dw"]["DSP"] == 0
    assert layers_by_name["out"]["DSP"] > 0 and "warning" not in layers_by_name["out"]


@pytest.mark.parametrize("family", ["mlp", "cnn", "gnn", "vae_encoder"])
def test_every_model_family_is_estimated_without_warnings(family, tmp_path):
    """The firmware stage's example model of each family, converted the way `trigger synth` does."""
    from trigger.config import SynthConfig
    from trigger.firmware import examples
    from trigger.firmware.convert import convert as synth_convert

    hls_model = synth_convert(getattr(examples, family)(), SynthConfig(), tmp_path / family)
    result = estimate_model(hls_model).to_dict()
    assert not [layer for layer in result["layers"] if "warning" in layer]
    assert result["latency"]["max_cycles"] > 0 and result["resources"]["LUT"] > 0
    assert result["latency"]["ns"] == result["latency"]["max_cycles"] * SynthConfig().clock_ns


def test_merge_layers_and_free_layers(tmp_path):
    """Multiply uses DSPs for wide operands, Subtract adders, Concatenate/Reshape are free.
    (Permute is in the free list too, but hls4ml 1.3.0 fails to write its io_parallel template.)"""
    from tensorflow.keras import layers

    set_seed(14)
    inp = layers.Input((4, 6))
    flat = layers.Reshape((24,), name="reshape")(inp)
    a = layers.Dense(8, name="a")(flat)
    b = layers.Dense(8, name="b")(flat)
    merged = layers.Concatenate(name="cat")([layers.Multiply(name="mul")([a, b]),
                                             layers.Subtract(name="sub")([a, b])])
    model = tf.keras.Model(inp, layers.Dense(2, name="out")(merged))
    config = hls4ml.utils.config_from_keras_model(model, granularity="model", backend="Vivado",
                                                  default_precision="fixed<16,6>")
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, backend="Vivado", output_dir=str(tmp_path / "merge"), part=PART,
        clock_period=5, io_type="io_parallel")
    by_name = {layer["name"]: layer for layer in estimate_model(hls_model).to_dict()["layers"]}
    assert by_name["mul"]["DSP"] == 8 and by_name["mul"]["cycles"] >= 1
    from trigger.firmware.estimate import load_calibration

    assert by_name["sub"]["DSP"] == 0 and by_name["sub"]["LUT"] == round(load_calibration().lut_per_logic * 8 * 16)
    for free in ("cat", "reshape"):
        if free in by_name:  # hls4ml may optimise a layer away entirely
            assert by_name[free]["DSP"] == by_name[free]["LUT"] == 0 and "warning" not in by_name[free]
    assert not any("warning" in layer for layer in by_name.values())


def test_profiles_differ_only_where_the_tools_do(tmp_path):
    """16-bit inputs x 6-bit weights: DSPs in Vivado HLS 2019.2 (bit length >= 4), only the
    constants of >= 3 CSD digits in newer tools; 6-bit x 6-bit: LUTs in both."""
    from trigger.firmware.estimate.products import csd_digits, quantized_mantissas

    set_seed(16)
    model = jet_mlp(True, 0.75, seed=16)
    hls_model = convert(model, 1, tmp_path / "q")
    old = {layer["name"]: layer for layer in estimate_model(hls_model, profile="vivado2019").to_dict()["layers"]}
    new = {layer["name"]: layer for layer in estimate_model(hls_model).to_dict()["layers"]}
    kernel = hls_model.graph["fc1"].weights["weight"]
    mant = quantized_mantissas(np.asarray(kernel.data), kernel.type.precision)
    assert old["fc1"]["DSP"] > 150 and 0 < new["fc1"]["DSP"] == int(np.sum(csd_digits(mant) >= 3)) < old["fc1"]["DSP"]
    assert old["fc2"]["DSP"] == new["fc2"]["DSP"] == 0
    assert old["softmax"] == new["softmax"]
    from trigger.errors import TriggerError

    with pytest.raises(TriggerError, match="unknown estimator profile"):
        estimate_model(hls_model, profile="vivado2030")


# --- the dispatch, the rule registry and the precision parser (no hls4ml conversion) -------------

def _fake_graph(*layers):
    """The smallest object estimate_model reads: a config and a list of layers."""
    from types import SimpleNamespace

    values = {"ClockPeriod": 5, "IOType": "io_parallel", "Part": PART}
    return SimpleNamespace(config=SimpleNamespace(get_config_value=values.get),
                           get_layers=lambda: list(layers))


class _FakeLayer:
    def __init__(self, name: str, class_name: str):
        self.name, self.class_name = name, class_name


def test_a_bug_in_a_layer_rule_raises_instead_of_becoming_a_zero_cost_layer(monkeypatch):
    from trigger.firmware.estimate import registry

    def broken(layer, ctx):
        raise RuntimeError("bug in the Dense rule")

    monkeypatch.setitem(registry.HANDLERS, "Dense", registry.Rule(broken))
    with pytest.raises(RuntimeError, match="bug in the Dense rule"):
        estimate_model(_fake_graph(_FakeLayer("fc", "Dense")))


def test_a_rule_raising_not_modelled_gives_a_zero_cost_layer_with_warning(monkeypatch):
    from trigger.firmware.estimate import NotModelled, layer_handler, registry

    monkeypatch.setattr(registry, "HANDLERS", dict(registry.HANDLERS))

    @layer_handler("Exotic")
    def exotic(layer, ctx):
        raise NotModelled("layer class Exotic is not modelled in this configuration")

    assert registry.HANDLERS["Exotic"].func is exotic
    with pytest.raises(ValueError, match="already has the rule"):
        layer_handler("Exotic")(exotic)
    result = estimate_model(_fake_graph(_FakeLayer("x", "Exotic"), _FakeLayer("flat", "Flatten"))).to_dict()
    exotic_layer, flat = result["layers"]
    assert exotic_layer["DSP"] == exotic_layer["LUT"] == exotic_layer["cycles"] == 0
    assert exotic_layer["warning"] == "layer class Exotic is not modelled in this configuration; counted as zero cost"
    assert "warning" not in flat and result["resources"]["LUT"] == 0


def test_the_da4ml_check_of_conversion_loads_no_estimator():
    """Conversion asks trigger.firmware.da whether da4ml is there; that must not load the estimator
    (its DA figures are trigger.firmware.estimate.da). Import cycles, package __init__ files
    included, are tests/test_architecture.py's."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, trigger.firmware.da; "
            "print(sorted(m for m in sys.modules if m.startswith('trigger.firmware.estimate')))")
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=repo).stdout
    assert out.strip() == "[]"


def test_precision_parser_on_strings_and_hls4ml_types():
    from hls4ml.model.types import (ExponentPrecisionType, FixedPrecisionType, IntegerPrecisionType,
                                    XnorPrecisionType)

    from trigger.firmware.precision import Precision, bit_width, fraction_bits, parse_precision

    assert parse_precision("ap_fixed<16,6>") == Precision(signed=True, width=16, integer=6)
    assert parse_precision("ap_fixed<16,6>").fractional == 10
    assert parse_precision("ap_ufixed<8,0,AP_RND,AP_SAT>") == (False, 8, 0)
    assert parse_precision("fixed<12,5,RND_CONV,SAT>") == (True, 12, 5)
    assert parse_precision("ufixed<6,-2>") == (False, 6, -2)
    assert parse_precision("ap_int<8>") == (True, 8, 8)
    assert parse_precision("uint<4>") == (False, 4, 4)
    for other in (None, "float", "auto", "ap_fixed<16>"):
        assert parse_precision(other) is None
    assert parse_precision(FixedPrecisionType(10, 3, signed=False)) == (False, 10, 3)
    fixed = FixedPrecisionType(18, 8, rounding_mode="RND", saturation_mode="SAT")
    assert parse_precision(fixed) == parse_precision(str(fixed)) == (True, 18, 8)
    assert parse_precision(IntegerPrecisionType(6)) == (True, 6, 6)
    assert parse_precision(XnorPrecisionType()) == (False, 1, 1)
    assert parse_precision(ExponentPrecisionType(4)) is None  # has a width, but is not fixed-point
    assert bit_width(ExponentPrecisionType(4)) == 4
    assert bit_width("ap_fixed<18,8>") == 18 and bit_width(FixedPrecisionType(7, 2)) == 7
    assert bit_width(None) is None and bit_width(None, 16) == 16 and bit_width("float", 32) == 32
    assert fraction_bits(FixedPrecisionType(16, 6)) == 10 and fraction_bits(IntegerPrecisionType(8)) == 0
    assert fraction_bits(None) == 0 and fraction_bits("ap_ufixed<8,0>") == 8


# --- the calibration: two targets, uncertainties, loading, saving and refitting -------------------

def test_estimate_dict_has_both_targets_the_calibration_and_the_features(tmp_path):
    from tensorflow.keras import layers

    from trigger.firmware.estimate import features_of, load_calibration

    set_seed(17)
    model = tf.keras.Sequential([layers.Input((8,)), layers.Dense(4, name="fc"), layers.Activation("relu")])
    config = hls4ml.utils.config_from_keras_model(model, granularity="model", backend="Vivado")
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, backend="Vivado", output_dir=str(tmp_path / "small"), part=PART,
        clock_period=5, io_type="io_parallel")
    estimate = estimate_model(hls_model)
    result = estimate.to_dict()
    assert estimate.report().model_dump(by_alias=True, exclude_unset=True) == result  # the typed block is the dict
    cal = load_calibration()
    assert result["calibration"] == {"name": cal.name, "tool": cal.tool, "source": "builtin"}
    csynth, synth = result["targets"]["csynth"], result["targets"]["synth"]
    assert csynth["latency"] == synth["latency"] == result["latency"]
    assert csynth["resources"] == result["resources"]
    assert set(synth["resources"]) == {"DSP", "LUT", "FF", "BRAM_18K"}
    assert synth["resources"]["LUT"] == round(cal.synth_ratio.LUT * result["resources"]["LUT"])
    for target in (csynth, synth):
        assert set(target["uncertainty"]) == {"cycles", "DSP", "LUT", "FF", "BRAM_18K"}
        assert isinstance(target["uncertainty"]["cycles"], int)
    features = features_of(estimate.report())
    assert features["cycles"] == result["latency"]["max_cycles"] and features["lut_logic"] > 0
    # a calibration with other factors changes LUT and FF, not the structure
    other = cal.model_copy(update={"lut_per_logic": 2 * cal.lut_per_logic, "ff_per_bit": 3 * cal.ff_per_bit})
    scaled = estimate_model(hls_model, calibration=other).to_dict()
    assert scaled["features"] == result["features"] and scaled["resources"]["DSP"] == result["resources"]["DSP"]
    assert scaled["resources"]["LUT"] > result["resources"]["LUT"] and scaled["resources"]["FF"] > result["resources"]["FF"]


def test_calibration_file_round_trip_and_malformed_files(tmp_path):
    from trigger.errors import TriggerError
    from trigger.firmware.estimate import load_calibration, save_calibration

    cal = load_calibration()
    path = tmp_path / "cal.yaml"
    save_calibration(cal, path)
    assert load_calibration(path) == cal
    assert estimate_model(_fake_graph(), calibration=path).to_dict()["calibration"]["source"] == str(path)
    text = path.read_text()
    for broken, key in ((text.replace("ff_per_bit:", "ff_per_bits:"), "ff_per_bit"),
                        (text.replace("lut_per_logic: ", "lut_per_logic: -"), "lut_per_logic")):
        path.write_text(broken)
        with pytest.raises(TriggerError) as info:
            load_calibration(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value) and key in str(info.value)
    with pytest.raises(TriggerError, match="cannot read"):
        load_calibration(tmp_path / "missing.yaml")


def test_refit_follows_user_samples_that_disagree_and_refuses_empty_ones():
    from trigger.errors import TriggerError
    from trigger.firmware.estimate import CalibrationSample, load_calibration, refit

    base = load_calibration()
    features = {"lut_logic": 1000.0, "ff_bits": 2000.0, "lut_mult_bits.modern": 0.0, "DSP": 10.0,
                "BRAM_18K": 0.0, "cycles": 5.0, "interval": 1.0}
    # the user's tool reports twice the builtin LUT and FF, and post-synthesis LUT at 30 %
    samples = [CalibrationSample(name=f"user{i}", tool="Vitis HLS 2030.1", features=features,
                                 csynth={"LUT": 2000.0 * base.lut_per_logic, "FF": 4000.0 * base.ff_per_bit,
                                         "DSP": 10.0, "max_cycles": 5.0},
                                 post_synth={"LUT": 600.0 * base.lut_per_logic, "DSP": 10.0})
               for i in range(3)]
    fitted = refit(base, samples, name="mine")
    assert fitted.name == "mine" and fitted.tool == "Vitis HLS 2030.1"
    assert fitted.lut_per_logic > base.lut_per_logic and fitted.ff_per_bit > base.ff_per_bit
    assert fitted.synth_ratio.LUT < base.synth_ratio.LUT
    assert fitted.fit_designs[-3:] == ["user0", "user1", "user2"]
    # the user's designs keep their weight when the calibration is refitted again
    assert [s.weight for s in fitted.fit_data[-3:]] == [10.0] * 3 and fitted.fit_data[0].weight == 1.0
    again = refit(fitted, samples[:1], name="mine2")
    assert [s.weight for s in again.fit_data[-4:]] == [10.0] * 4
    empty = CalibrationSample(name="empty", tool="x", features=features, csynth={}, post_synth=None)
    with pytest.raises(TriggerError, match="calibration sample empty: no usable figures"):
        refit(base, [empty], name="mine")
