"""`trigger rtl` (issue 17): Verilog through da4ml, bit-exact Verilator simulation, yosys counts.

The expensive part (two reference students traced, Verilated and simulated on their check samples;
a tiny model through the whole flow with yosys) is built once per module by ``rtl_runs`` and marked
slow. The round-half-even construction and the refusal of
an unsupported layer are quick.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from trigger.rtl.tools import set_cache_env

set_cache_env()  # numba's and YoWASP's caches in ~/.cache/trigger, as `trigger rtl` has them
da4ml = pytest.importorskip("da4ml", reason="the 'da' extra (da4ml) is not installed")


# --- round half to even from da4ml primitives ----------------------------------------------------

def _traced_rounding(fmt, in_kif, exact=True):
    """da4ml logic quantizing one input of format ``in_kif`` with ``fmt`` (exact or half-up)."""
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    from trigger.rtl.quantizers import apply_qkeras, round_half_up

    k, i, f = in_kif
    x = FixedVariableArray.from_kif(np.array([k]), np.array([i]), np.array([f]), HWConfig(1, -1, -1))
    rounding = apply_qkeras if exact else round_half_up
    y = FixedVariableArray(np.array([rounding(v, fmt) for v in x._vars.ravel()], dtype=object))
    return comb_trace(x, y)


@pytest.mark.parametrize("fmt_kif", [(1, 2, 1), (0, 2, 2), (1, 0, 3)])
def test_round_half_even_is_exact_on_every_input_including_ties(fmt_kif):
    """Every value of a 4-fraction-bit input through quantize(round half even, saturate) equals
    QKeras's rule (np.round is half to even, then clip) -- including the exact ties, odd and even."""
    from trigger.ir.formats import FixedFormat

    fmt = FixedFormat(*fmt_kif)
    logic = _traced_rounding(fmt, (1, 4, 4))
    values = np.arange(-16, 16, 2.0 ** -4)
    got = logic.predict(values.reshape(-1, 1)).ravel()
    step = 2.0 ** -fmt.f
    expected = np.clip(np.round(values / step) * step, fmt.low, fmt.high)
    ties = (values / step) % 1 == 0.5
    odd_below = ties & (np.floor(values / step) % 2 == 1)
    assert odd_below.any() and (ties & ~odd_below).any()  # both kinds of tie are exercised
    np.testing.assert_array_equal(got, expected)


def test_round_half_even_on_named_ties_and_half_up_differs():
    """0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2 at 0 fraction bits; da4ml's own half-up
    rounding gives 1, 2, 3, 0, -1 there (why the exact construction exists)."""
    from trigger.ir.formats import FixedFormat

    fmt = FixedFormat(1, 3, 0)
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5]).reshape(-1, 1)
    exact = _traced_rounding(fmt, (1, 3, 1)).predict(ties).ravel()
    half_up = _traced_rounding(fmt, (1, 3, 1), exact=False).predict(ties).ravel()
    np.testing.assert_array_equal(exact, [0.0, 2.0, 2.0, 0.0, -2.0])
    np.testing.assert_array_equal(half_up, [1.0, 2.0, 3.0, 0.0, -1.0])


# --- a layer it cannot express ----------------------------------------------------------------------

def test_refused_layer_is_one_line_and_exit_2(tmp_path):
    """A BatchNormalization (a non-power-of-two scale, inexact in fixed point) is refused by name,
    with one line and exit 2, and nothing is written."""
    import tensorflow as tf
    from qkeras import QActivation, quantized_bits

    inp = tf.keras.Input((4,), name="x")
    q = QActivation(quantized_bits(8, 3, alpha=1), name="x_quant")(inp)
    out = tf.keras.layers.BatchNormalization(name="odd_norm")(q)
    path = tmp_path / "bn.h5"
    tf.keras.Model(inp, out).save(path)
    proc = run_cli("rtl", path, "--out", tmp_path / "rtl", "--no-synth")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("trigger: error")]
    assert len(lines) == 1 and "odd_norm" in lines[0] and "BatchNormalization" in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "rtl").exists()


# --- the reference students through RTL (slow) ------------------------------------------------------

#: Reference students through `trigger rtl` in CI (Verilator only: yosys takes minutes on each).
RTL_MODELS = ("jet_mlp", "ad_autoencoder")
#: Adder levels per stage given to the tiny model (`--pipeline N`; the references use `auto`).
TINY_LEVELS = 2


def _tiny_model(path):
    """A small QKeras MLP (8 -> 6 -> 3) whose yosys run takes seconds, saved to ``path``."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((8,), name="x")
    x = QActivation(quantized_bits(10, 3, alpha=1), name="x_quant")(inp)
    x = QDense(6, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="fc1")(x)
    x = QActivation(quantized_relu(6, 2), name="fc1_relu")(x)
    x = QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="out")(x)
    tf.keras.Model(inp, x, name="tiny").save(path)
    return path


@pytest.fixture(scope="module")
def rtl_runs(tmp_path_factory) -> dict:
    """`trigger rtl` of each RTL_MODELS student on its committed check sample (no yosys), and of a
    tiny model on random inputs with yosys and `--pipeline TINY_LEVELS`: {name: (dir, report)}."""
    folder = tmp_path_factory.mktemp("rtl")
    jobs = {name: [REPO / "models" / name / "model.h5", "--no-synth"] for name in RTL_MODELS}
    jobs["tiny"] = [_tiny_model(folder / "tiny.h5"), "--pipeline", str(TINY_LEVELS), "--no-hls"]
    runs = {}
    for name, (model, *flags) in jobs.items():
        out = folder / name
        proc = run_cli("rtl", model, "--out", out, *flags)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = (out, json.loads((out / "report.json").read_text()))
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("name", RTL_MODELS)
def test_reference_student_is_bit_exact_under_verilator(rtl_runs, name):
    out, report = rtl_runs[name]
    check = json.loads((REPO / "models" / name / "check.json").read_text())
    sim = report["rtl_sim"]
    assert sim["n_events"] == check["n_events"] and "check_sample.h5" in sim["inputs"]
    assert sim["n_values"] == check["n_events"] * report["model"]["n_outputs"]
    assert sim["bit_exact_fraction"] == 1.0 and sim["max_abs_diff"] == 0.0, sim
    assert sim["interpreter_bit_exact_fraction"] == 1.0
    assert report["yosys"] is None  # --no-synth
    from trigger.rtl.build import STATIC_MODULES

    assert {p.stem for p in (out / "src" / "static").glob("*.v")} <= STATIC_MODULES
    # hls4ml's own distributed-arithmetic C simulation on the same events agrees with the RTL
    hls = report["hls_csim"]
    assert hls["n_values"] == sim["n_values"] and hls["strategy"] == "distributed_arithmetic"
    assert hls["bit_exact_fraction"] == 1.0 and hls["max_abs_diff"] == 0.0, hls
    assert hls["reference_bit_exact_fraction"] == 1.0
    assert (out / "report.md").read_text().count("bit-exact fraction **1**") == 2
    est = report["estimate"]
    assert est["source"] == "estimate" and est["synth"]["LUT"] > 0 and est["synth"]["DSP"] >= 0


@pytest.mark.parametrize(("path", "name"), [("models/jet_mlp/model.h5", "jet_mlp"), ("x/module.h5", "m_module"),
                                          ("x/mux.h5", "m_mux"), ("x/3d-cnn.h5", "m_3d_cnn"),
                                          ("x/logic/model.h5", "m_logic"), ("x/wires.h5", "wires")])
def test_module_name_avoids_keywords_and_da4ml_modules(path, name):
    from pathlib import Path

    from trigger.stages.rtl import module_name

    assert module_name(Path(path)) == name


def test_hls4ml_refusal_is_a_note_not_a_crash(monkeypatch):
    """A model hls4ml cannot convert still gets its RTL: the report says why hls_csim is absent."""
    import sys

    import numpy as np

    from trigger.errors import TriggerError
    from trigger.stages.rtl import hls4ml_parts

    def refuse(*args, **kwargs):
        raise TriggerError("hls4ml cannot convert this model (Vitis, io_parallel): layer Foo")

    import trigger.firmware.convert  # noqa: F401  (the package exports a function of the same name)

    monkeypatch.setattr(sys.modules["trigger.firmware.convert"], "convert_model", refuse)
    parts = hls4ml_parts(None, np.zeros((2, 3)), np.zeros((2, 1)), 5.0)
    assert list(parts) == ["hls4ml_note"] and "layer Foo" in parts["hls4ml_note"]


@pytest.mark.slow
def test_yosys_figures_present_and_positive(rtl_runs):
    from trigger.rtl import RtlReport

    out, raw = rtl_runs["tiny"]
    report = RtlReport.read(out / "report.json")
    assert report.rtl_sim.bit_exact_fraction == 1.0 and "random events" in report.rtl_sim.inputs
    y = report.yosys
    assert y is not None and y.source == "yosys" and "before place and route" in y.note
    assert min(y.LUT, y.FF, y.CARRY, y.logic_levels) > 0, y
    assert y.LUT == sum(n for cell, n in y.cells.items() if re.fullmatch(r"LUT[1-6]", cell))
    assert report.da4ml.LUT > 0 and report.da4ml.source == "da4ml"
    assert raw["yosys"]["source"] == "yosys"
    assert report.hls_csim is None and report.estimate is None and "--no-hls" in report.hls4ml_note


@pytest.mark.slow
@pytest.mark.parametrize("name", [*RTL_MODELS, "tiny"])
def test_pipeline_depth_is_the_reported_latency(rtl_runs, name):
    """The top module registers each stage's input once: their count is the latency in cycles, and
    the Verilator binder reads the outputs that many cycles after each input (bit-exact above)."""
    out, report = rtl_runs[name]
    top = (out / "src" / f"{name}.v").read_text()
    registers = re.findall(r"^\s*stage\d+_inp <= ", top, flags=re.MULTILINE)
    lat = report["latency"]
    assert len(registers) == lat["cycles"] >= 1
    assert lat["ns"] == pytest.approx(lat["cycles"] * lat["clock_ns"])
    # the stages cut the adder levels of the deepest output at the chosen levels per stage
    assert lat["cycles"] == -(-lat["adder_levels"] // lat["adder_levels_per_stage"])
    if name == "tiny":
        assert lat["method"] == "--pipeline" and lat["adder_levels_per_stage"] == TINY_LEVELS
    else:
        assert lat["method"].startswith("adder-delay model")
