"""Every committed reference model reproduces its recorded metric and is bit-exact in csim.

For each `models/<name>/` (written by `make reference`): `trigger synth` of the committed student
on its committed check sample (held-out test events) must give C-simulation outputs exactly equal
to QKeras, the QKeras and fixed-point metrics recorded in `check.json`, and a design inside the
Level-1 budget (latency, interval and the part's resources, as docs/RESULTS.md states).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, run_cli
from trigger.config import SynthConfig, load_config
from trigger.stages.reference import REFERENCES, reference_firmware

pytestmark = pytest.mark.slow  # compiles each reference model's HLS project

BUILT = [n for n in REFERENCES if (REPO / "models" / n / "check.json").is_file()]


def test_reference_models_are_committed():
    assert BUILT == list(REFERENCES), f"missing reference models: {set(REFERENCES) - set(BUILT)}"
    for name in BUILT:
        d = REPO / "models" / name
        for f in ("model.h5", "teacher.h5", "metrics.json", "README.md", "check_sample.h5", "check.json"):
            assert (d / f).is_file(), f"{name}/{f}"
        assert (REPO / "firmware_projects" / name / "report.md").is_file()


@pytest.mark.parametrize("name", BUILT)
def test_reference_student_reproduces_recorded_metric_bit_exactly(name, tmp_path):
    d = REPO / "models" / name
    check = json.loads((d / "check.json").read_text())
    proc = run_cli("synth", d / "model.h5", "--config", REPO / reference_firmware(name), "--data",
                   d / "check_sample.h5", "--teacher", d / "teacher.h5", "--out", tmp_path / "fw")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "fw" / "report.json").read_text())
    csim = report["csim"]
    assert csim["n_events"] == check["n_events"]
    assert csim["bit_exact_fraction"] == 1.0, csim.get("first_differing_layer")
    phys = csim["physics"]
    metric = check["metric"]
    assert phys["qkeras"][metric] == pytest.approx(check["qkeras"][metric], abs=1e-9)
    assert phys["csim"][metric] == pytest.approx(check["csim"][metric], abs=1e-9)
    assert phys["teacher"][metric] == pytest.approx(check["teacher"][metric], abs=1e-9)
    # docs/RESULTS.md says every reference student fits the Level-1 budget (by the estimate)
    budget = report["budget"]
    assert budget["fits"] is True, budget
    assert report["config"]["strategy"] == load_config(REPO / reference_firmware(name), SynthConfig).strategy
    # the firmware's final output (the default, `output: logits`) agrees with the model there
    output = csim["output"]
    if check["metric"] == "accuracy":
        assert report["config"]["output"] == "logits" and output["kind"] == "logits"
        assert output["bit_exact_fraction"] == 1.0 and output["argmax_agreement"] >= 0.999
    else:
        assert output == {"kind": "outputs", "n_events": check["n_events"], "bit_exact_fraction": 1.0}


CLASSIFIERS = [n for n in BUILT if json.loads((REPO / "models" / n / "check.json").read_text())["metric"] == "accuracy"]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_softmax_output_meets_its_bounds_on_the_check_sample(name, tmp_path):
    """`--output softmax`: the tables trigger sizes give argmax agreement >= 0.999 and probabilities
    within 2^-8 of QKeras on every classifier's check sample. The softmax reads the bit-exact logits,
    so it is checked on its own: a QKeras model of the reference's logits type and its softmax,
    converted as `trigger synth --output softmax` does and C-simulated on the exact logits (one
    small compile instead of the whole network). Measured: 1.0 / 0.0019, 1.0 / 0.0018, 1.0 / 0.0017."""
    import numpy as np
    import tensorflow as tf
    from qkeras import QActivation, quantized_bits

    from trigger.config import SynthConfig
    from trigger.firmware import reference
    from trigger.firmware.convert import convert_model, prepare_model
    from trigger.firmware.csim import compared_layer, output_agreement
    from trigger.ir.keras import from_keras
    from trigger.models.io import load_meta, load_model
    from trigger.firmware.events import csim_inputs

    d = REPO / "models" / name
    model, _ = prepare_model(load_model(d / "model.h5"))
    logits_name, ends_in_softmax = compared_layer(from_keras(model))
    assert ends_in_softmax
    x, *_ = csim_inputs(d / "check_sample.h5", load_meta(d / "model.h5"), model, None, SynthConfig(), 0)
    logits = reference.evaluate(model, x.astype(np.float64), keep=True)[logits_name]
    full = convert_model(model, SynthConfig(), tmp_path / "full")  # conversion only: the logits' type
    node = next(l for l in full.hls_model.get_layers() if l.name == logits_name)
    precision = node.get_output_variable().type.precision
    signed, width, integer = precision.signed, precision.width, precision.integer
    assert signed
    n = logits.shape[1]
    inp = tf.keras.Input((n,), name="logits_in")
    q = QActivation(quantized_bits(width, integer - 1, alpha=1), name="logits_q")(inp)
    head = tf.keras.Model(inp, tf.keras.layers.Activation("softmax", name="softmax")(q), name=f"{name}_softmax")
    conversion = convert_model(head, SynthConfig(output="softmax"), tmp_path / "softmax")
    assert any(r["layer"] == "softmax" and "stable softmax" in r["action"] for r in conversion.recipe)
    conversion.hls_model.compile()
    probs = np.asarray(conversion.hls_model.predict(logits.astype(np.float64))).reshape(len(x), -1)
    qkeras_probs = model.predict(x, verbose=0)  # the reference model's own output
    out = output_agreement("softmax", probs, logits, qkeras_probs)
    assert out["kind"] == "softmax" and out["n_events"] == len(x)
    assert out["argmax_agreement"] >= 0.999 and out["max_abs_diff_probabilities"] <= 2.0 ** -8, out
