"""`trigger synth` on small QKeras models of the four families, built here (not the zoo).

Each model is synthesised (converted, compiled, C-simulated) once per session; hls4ml compiles cost
10-30 s each on the CI machine. The checks: the C simulation equals QKeras exactly on every compared
value (logits of the classifiers, the anomaly score of the VAE encoder), the report has its keys and
labels its latency/resource source, `--build` without vendor tools fails in one line and keeps the
project, bad inputs are one-line errors, and a broken recipe is detected (the comparison can fail).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from trigger.config import SynthConfig

pytestmark = pytest.mark.slow  # compiles HLS projects

FAMILIES = ("mlp", "cnn", "gnn", "vae")
REPORT_KEYS = {"model", "config", "layers", "csim", "latency", "resources"}


@pytest.fixture(scope="session")
def example_models(tmp_path_factory) -> dict[str, Path]:
    from trigger.firmware.examples import save_example

    folder = tmp_path_factory.mktemp("fw_models")
    return {family: save_example(family, folder / f"{family}.h5") for family in FAMILIES}


@pytest.fixture(scope="session")
def synthesized(example_models, tmp_path_factory):
    """family -> report.json of its project; the MLP goes through the CLI, the others through
    `trigger.firmware.synthesize`. Each is built on first use, once per session."""
    cache: dict[str, tuple[Path, dict]] = {}
    folder = tmp_path_factory.mktemp("fw_projects")

    def get(family: str) -> tuple[Path, dict]:
        if family not in cache:
            out = folder / family
            if family == "mlp":
                result = run_cli("synth", example_models[family], "--out", out)
                assert result.returncode == 0, result.stderr[-2000:]
                assert "bit-exact vs QKeras" in result.stdout
            else:
                from trigger.stages import synthesize

                synthesize(example_models[family], config=SynthConfig(), out=out)
            cache[family] = (out, json.loads((out / "report.json").read_text()))
        return cache[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_csim_bit_exact(family, synthesized):
    out, report = synthesized(family)
    assert REPORT_KEYS <= set(report)
    csim = report["csim"]
    assert csim["bit_exact_fraction"] == 1.0, csim.get("first_differing_layer")
    assert csim["max_abs_diff"] == 0.0 and csim["first_differing_layer"] is None
    assert csim["reference"] == "QKeras evaluated exactly in float64"
    assert csim["n_events"] == SynthConfig().max_csim_events
    if family == "vae":
        assert csim["compared"] == "outputs" and csim["n_values"] == csim["n_events"]  # one score per event
        assert "softmax" not in csim and csim["output"]["kind"] == "outputs"
    else:
        assert csim["compared"] == "logits" and csim["n_values"] == 5 * csim["n_events"]
        assert csim["softmax"]["argmax_agreement_logits"] == 1.0
        # the default output: the logits themselves, the softmax left out of the firmware
        assert report["config"]["output"] == "logits"
        assert csim["output"] == {"kind": "logits", "n_events": csim["n_events"], "bit_exact_fraction": 1.0,
                                  "argmax_agreement": 1.0}
        assert not any(l["class"] == "Softmax" for l in report["layers"])
        assert not any(e["layer"] == "softmax" for e in csim["inexact_layers"])
    # the project itself is there: HLS sources and the compiled C-simulation library
    assert (out / "firmware" / "myproject.cpp").is_file() and (out / "build_prj.tcl").is_file()
    assert list((out / "firmware").glob("myproject-*.so"))
    assert (out / "report.md").read_text().startswith("# Firmware report")


@pytest.mark.parametrize("family", FAMILIES)
def test_report_layers_and_sources(family, synthesized):
    _, report = synthesized(family)
    assert report["config"]["backend"] == "Vitis" and report["config"]["io_type"] == "io_parallel"
    dense = [l for l in report["layers"] if l.get("multiplications") is not None]
    assert dense and all(l["multiplications"] <= l["weights"] * max(1, np.prod(l["output_shape"])) for l in dense)
    assert report["counts"]["multiplications"] == sum(l["multiplications"] for l in dense)
    # latency/resources carry their source; without a vendor report it is never 'vendor'
    assert report["latency"]["source"] in ("estimate", "none")
    assert report["resources"]["source"] == report["latency"]["source"]
    if report["latency"]["source"] == "estimate":
        assert report["latency"]["max_cycles"] >= 1 and report["estimate"]["source"] == "estimate"
    input_layer = report["layers"][0]
    assert input_layer["class"] == "Input" and "RND_CONV,SAT" in input_layer["result"]


def test_recipe_recorded(synthesized):
    _, gnn = synthesized("gnn")
    weights = [r for r in gnn["recipe"] if r["action"] == "weights replaced by their quantized values"]
    assert weights and "edge0" in weights[0]["layer"].split(", ")  # pointwise-conv rewrite: pre-quantized
    assert any(r["layer"] == "pool" for r in gnn["recipe"])  # average pooling types explicit
    _, vae = synthesized("vae")
    assert any(r["layer"] == "mu" and "from mu_q" in r["action"] for r in vae["recipe"])
    _, cnn = synthesized("cnn")  # inline activation=quantized_bits on dense0
    assert any(r["layer"] == "dense0" and "from its activation" in r["action"] for r in cnn["recipe"])


def test_trigger_report_prints_report_md(synthesized):
    out, _ = synthesized("mlp")
    result = run_cli("report", out)
    assert result.returncode == 0
    assert result.stdout.strip() == (out / "report.md").read_text().strip()
    assert "bit-exact fraction (vs exact QKeras) | 1 |" in result.stdout


def test_existing_out_refused_without_force(synthesized, example_models):
    out, _ = synthesized("mlp")
    result = run_cli("synth", example_models["mlp"], "--out", out)
    assert result.returncode == 2
    assert "already exists" in result.stderr and result.stderr.strip().count("\n") == 0


def test_bad_model_file_is_one_line_error(tmp_path):
    bad = tmp_path / "model.h5"
    bad.write_text("not a model")
    result = run_cli("synth", bad, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "HDF5 file" in result.stderr
    assert not (tmp_path / "out").exists()


def test_build_without_vendor_tool_keeps_project(example_models, tmp_path):
    from trigger.firmware.vendor import find_tool

    if find_tool("Vitis"):
        pytest.skip("Vitis HLS is installed here; this test is for machines without it")
    config = tmp_path / "small.yaml"
    config.write_text("max_csim_events: 100\n")
    out = tmp_path / "vae_build"
    result = run_cli("synth", example_models["vae"], "--config", config, "--out", out, "--build")
    assert result.returncode == 2, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("trigger: error: --build needs Vitis HLS (`vitis-run` or `vitis_hls`) on PATH")
    # everything written before the build is kept, under the final name
    report = json.loads((out / "report.json").read_text())
    assert report["csim"]["bit_exact_fraction"] == 1.0 and report["csim"]["n_events"] == 100
    assert (out / "firmware" / "myproject.cpp").is_file() and (out / "report.md").is_file()


def test_comparison_detects_a_broken_recipe(example_models, tmp_path):
    """Without carrying mu_q's type onto 'mu' (hls4ml drops that rounding) the VAE's score differs,
    and the tracing names mu_q as the first differing layer: the comparison is not vacuous."""
    from trigger.firmware.convert import convert_model, grid_inputs
    from trigger.firmware.csim import run_csim

    conversion = convert_model(example_models["vae"], SynthConfig(), tmp_path / "broken", skip=("carry",))
    x = grid_inputs("fixed<8,7>", (57,), 300, seed=3)
    csim = run_csim(conversion.hls_model, conversion.keras_model, x)
    assert csim["bit_exact_fraction"] < 0.5
    assert csim["first_differing_layer"]["layer"] == "mu_q"


def test_synth_with_data_reports_physics(jets_file, example_models, tmp_path):
    """--data: csim on the events of a generated jets file, with accuracy of QKeras and csim."""
    import tensorflow as tf

    from trigger.stages import synthesize
    from trigger.firmware.examples import META
    from trigger.models.io import save_model

    # a float teacher with its own input transform, to check it is fed its own way
    tf.keras.utils.set_random_seed(7)
    teacher = tf.keras.Sequential([tf.keras.Input((16,)), tf.keras.layers.Dense(8, activation="relu"),
                                   tf.keras.layers.Dense(5, activation="softmax")])
    teacher_path = save_model(teacher, tmp_path / "teacher.h5",
                              meta=dict(META["mlp"], role="teacher", input_offset=[0.0] * 16, input_scale=[0.5] * 16))
    result = synthesize(example_models["mlp"], config=SynthConfig(max_csim_events=500), data=jets_file,
                        teacher=teacher_path, out=tmp_path / "mlp_data")
    csim = result.report.csim  # the typed report.json (trigger.contracts.FirmwareReport)
    assert csim.bit_exact_fraction == 1.0 and csim.n_events == 500
    phys = csim.physics
    assert None not in (phys.qkeras, phys.csim, phys.teacher) and phys.metric == "accuracy"
    assert 0.0 <= phys.csim.accuracy <= 1.0
    assert 0.0 <= phys.argmax_agreement_csim_qkeras <= 1.0
    assert "bit-exact" in result.summary()
    md = (tmp_path / "mlp_data" / "report.md").read_text()
    assert "### Physics on the same events" in md and "| teacher |" in md


def test_auto_po2_kernels_bit_exact(tmp_path):
    """alpha='auto_po2' with scales up to 4: hls4ml's own ApplyAlpha path clips the scale (measured),
    the recipe folds the scales into a plain fixed-point kernel and is exact."""
    from trigger.firmware.convert import convert_model, grid_inputs
    from trigger.firmware.csim import run_csim
    from trigger.firmware.examples import mlp

    model = mlp(kernel_alpha="auto_po2")
    scales = model.get_layer("dense0").kernel_quantizer_internal
    conversion = convert_model(model, SynthConfig(), tmp_path / "po2")
    assert float(np.max(scales.scale)) >= 4.0  # the case hls4ml gets wrong is really exercised
    assert any("auto_po2" in r["action"] for r in conversion.recipe)
    csim = run_csim(conversion.hls_model, conversion.keras_model, grid_inputs("fixed<12,5>", (16,), 500, seed=4))
    assert csim["bit_exact_fraction"] == 1.0, csim["first_differing_layer"]


def test_pruning_wrappers_are_stripped(tmp_path):
    """A model still wrapped by tfmot's prune_low_magnitude converts (conversion only, no compile)."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from trigger.firmware.convert import convert_model
    from trigger.firmware.examples import mlp

    def wrap(layer):
        if type(layer).__name__ != "QDense":
            return layer
        return tfmot.sparsity.keras.prune_low_magnitude(
            layer, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, 0))

    wrapped = tf.keras.models.clone_model(mlp(), clone_function=wrap)
    assert any(type(l).__name__ == "PruneLowMagnitude" for l in wrapped.layers)
    conversion = convert_model(wrapped, SynthConfig(), tmp_path / "pruned")
    assert conversion.recipe[0]["action"] == "stripped pruning wrappers"
    assert {"dense0", "dense1", "logits"} <= {layer.name for layer in conversion.hls_model.get_layers()}


def test_parallelization_factor_shortens_the_interval_and_stays_exact(synthesized, example_models, tmp_path):
    """--parallelization-factor: more conv output positions per cycle, same arithmetic (bit-exact),
    a shorter initiation interval in the estimate, and the Level-1 budget check follows it.
    The default ('full') computes every position at once."""
    _, full = synthesized("cnn")
    assert full["config"]["parallelization_factor"] == "full"
    reports = {}
    for factor in ("1", "4"):
        out = tmp_path / f"cnn_pf{factor}"
        res = run_cli("synth", example_models["cnn"], "--parallelization-factor", factor, "--out", out)
        assert res.returncode == 0, res.stderr[-2000:]
        reports[factor] = json.loads((out / "report.json").read_text())
        assert reports[factor]["config"]["parallelization_factor"] == int(factor)
        assert reports[factor]["csim"]["bit_exact_fraction"] == 1.0
    serial, report = reports["1"], reports["4"]
    assert serial["latency"]["interval"] > report["latency"]["interval"] > full["latency"]["interval"]
    assert report["resources"]["LUT"] + report["resources"]["DSP"] > serial["resources"]["LUT"] + serial["resources"]["DSP"]
    assert full["resources"]["LUT"] + full["resources"]["DSP"] > report["resources"]["LUT"] + report["resources"]["DSP"]
    assert report["budget"]["interval_ns"] == report["latency"]["interval"] * report["config"]["clock_ns"]


@pytest.mark.parametrize("output", ["argmax", "softmax"])
def test_classifier_output_choices(output, example_models, tmp_path):
    """--output argmax / softmax on the example classifier (2000 random events on its input grid;
    the default, logits, is bit-exact in test_csim_bit_exact). Measured: argmax agreement 1.0 for
    both, largest probability difference 0.0021 for the sized softmax tables."""
    out = tmp_path / output
    result = run_cli("synth", example_models["mlp"], "--output", output, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    csim, block = report["csim"], report["csim"]["output"]
    assert report["config"]["output"] == output and block["kind"] == output
    assert csim["bit_exact_fraction"] == 1.0  # the logits inside stay exact
    assert block["n_events"] == 2000 and block["argmax_agreement"] == 1.0
    softmax_layer = next(l for l in report["layers"] if l["class"] == "Softmax")
    if output == "argmax":
        assert block["one_hot_fraction"] == 1.0
        assert not any(e["layer"] == "softmax" for e in csim["inexact_layers"])
    else:
        assert block["max_abs_diff_probabilities"] <= 2.0 ** -8
        assert softmax_layer["result"].startswith("ufixed<16,1")
        assert any(e["layer"] == "softmax" for e in csim["inexact_layers"])  # still a table
    assert "firmware output: " in result.stdout
    assert f"**Firmware output: {output}**" in (out / "report.md").read_text()


def test_report_has_both_estimate_targets_with_uncertainty(synthesized):
    """report.json carries the estimate's csynth and synth targets, each with its uncertainty and
    percent of the part, the calibration used, and a budget verdict on the synth target; report.md
    and the command line show both targets."""
    out, report = synthesized("mlp")
    targets = report["targets"]
    for target in ("csynth", "synth"):
        block = targets[target]
        assert block["latency"]["target"] == block["resources"]["target"] == target
        assert set(block["uncertainty"]) == {"cycles", "DSP", "LUT", "FF", "BRAM_18K"}
        assert block["resources"]["percent_of_part"] and block["latency"]["max_cycles"] >= 1
    assert targets["csynth"]["resources"] == {**report["resources"], "target": "csynth"}  # the headline
    assert report["calibration"]["name"] and report["calibration"]["source"]
    budget = report["budget"]
    assert budget["target"] == "synth" and budget["verdict"] in ("fits", "fits within the uncertainty", "does not fit")
    latency = budget["checks"]["latency"]
    assert latency["high"] - latency["nominal"] == targets["synth"]["uncertainty"]["cycles"] * report["config"]["clock_ns"]
    assert [row["index"] for row in report["layers"]] == sorted(row["index"] for row in report["layers"])
    md = (out / "report.md").read_text()
    assert "| ESTIMATE: C-synthesis | ESTIMATE: after logic synthesis |" in md and " ± " in md
    assert f"Level-1 budget (estimate, after logic synthesis figures ± uncertainty): {budget['verdict']} (" in md


def test_synth_uses_the_given_calibration_file(synthesized, example_models, tmp_path):
    """--calibration FILE: the estimate uses its constants and report.json names it."""
    from trigger.firmware.estimate.calibration import load_calibration, save_calibration

    _, builtin = synthesized("mlp")
    cal = load_calibration()
    doubled = {key: ({k: 2 * v for k, v in value.items()} if isinstance(value, dict) else 2 * value)
               for key, value in cal.model_dump().items() if key.startswith("lut_per")}  # every LUT factor
    assert {"lut_per_logic", "lut_per_mult_bit"} <= set(doubled)
    mine = cal.model_copy(update={"name": "doubled LUT", **doubled})
    path = tmp_path / "mine.yaml"
    save_calibration(mine, path)
    out = tmp_path / "fw"
    result = run_cli("synth", example_models["mlp"], "--calibration", path, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["calibration"] == {"name": "doubled LUT", "tool": cal.tool, "source": str(path)}
    lut, lut_builtin = report["resources"]["LUT"], builtin["resources"]["LUT"]
    assert lut_builtin > 0 and abs(lut - 2 * lut_builtin) <= len(report["layers"]) + 1  # per-layer rounding
    assert report["resources"]["DSP"] == builtin["resources"]["DSP"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")
    result = run_cli("synth", example_models["mlp"], "--calibration", bad, "--out", tmp_path / "fw2")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and str(bad) in result.stderr
    assert not (tmp_path / "fw2").exists()


def test_build_with_a_stand_in_vendor_tool_compares_estimate_and_reports(example_models, tmp_path):
    """`--build` end to end with a stand-in `vitis_hls` on PATH that leaves the hand-written fixture
    reports of tests/data/vendor/mlp_vitis/ in the project (no vendor tool exists here): report.json
    switches to the vendor figures, keeps both estimate targets, compares them with the reports per
    layer and in total, and checks the budget on the post-synthesis utilisation."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from trigger.firmware.vendor import find_tool

    if find_tool("Vitis"):
        pytest.skip("Vitis HLS is installed here; the stand-in would not be the tool found first")
    fixture = Path(__file__).parent / "data" / "vendor" / "mlp_vitis"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vitis_hls"
    fake.write_text(f"#!/bin/sh\ncp -r '{fixture}/myproject_prj' '{fixture}/vivado_synth.rpt' .\n")
    fake.chmod(0o755)
    out = tmp_path / "built"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run([sys.executable, "-m", "trigger", "synth", str(example_models["mlp"]), "--out", str(out),
                             "--build"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["latency"]["source"] == "vendor" and report["latency"]["max_cycles"] == 7
    assert report["resources"]["LUT"] == 5231 and report["resources"]["target"] == "csynth"
    assert set(report["targets"]) == {"csynth", "synth"}  # the estimate stays, both targets
    csynth = report["comparison"]["csynth"]
    assert csynth["total"]["vendor"]["LUT"] == 5231
    assert csynth["total"]["estimate"]["LUT"] == report["targets"]["csynth"]["resources"]["LUT"]
    by_index = {row["index"]: row["name"] for row in report["layers"]}
    matched = {row["name"] for row in csynth["layers"]}
    # the fixture's modules carry config2..config4: matched to this model's layers of those indices
    assert matched == {by_index[i] for i in (2, 3, 4) if i in by_index} - {None}
    assert len(matched) + len(csynth["unmatched_modules"]) == 3
    assert report["comparison"]["synth"]["total"]["vendor"] == {"DSP": 40, "LUT": 2712, "FF": 1206, "BRAM_18K": 0}
    assert report["budget"]["source"] == "vendor" and report["budget"]["target"] == "synth"
    assert report["budget"]["verdict"] == "fits" and report["budget"]["checks"]["latency"]["nominal"] == 35
    md = (out / "report.md").read_text()
    assert "| vendor: C-synthesis | vendor: after logic synthesis | ESTIMATE: C-synthesis |" in md
    assert "## Estimate vs vendor report" in md


# the C-simulation library called as hls4ml calls it (ctypes, one event at a time), in a fresh process
_CALL_LIBRARY = """
import ctypes, sys
import numpy as np
lib = ctypes.cdll.LoadLibrary(sys.argv[1])
x = np.load(sys.argv[2])
out = np.zeros((len(x), int(sys.argv[3])))
top = lib.myproject_double
top.restype = None
pointer = ctypes.POINTER(ctypes.c_double)
for i in range(len(x)):
    xi, yi = np.ascontiguousarray(x[i].ravel(), dtype=np.float64), np.zeros(out.shape[1])
    top(xi.ctypes.data_as(pointer), yi.ctypes.data_as(pointer))
    out[i] = yi
np.save(sys.argv[4], out)
"""


def test_published_project_is_usable_as_it_stands(synthesized, example_models, tmp_path):
    """The folder `trigger synth` published (written under a temporary name, then renamed): no file
    in it names the temporary folder, its C-simulation library loaded from the folder in a fresh
    process (from another working directory) gives the bit-exact QKeras logits, and a copy of the
    folder reads its own weights (not the original's: without them it stops naming its own path)."""
    import re
    import shutil
    import subprocess
    import sys

    import hls4ml

    from trigger.firmware import reference
    from trigger.firmware.convert import grid_inputs
    from trigger.models.io import load_model

    out, report = synthesized("mlp")  # through the CLI, so through atomic_path's rename
    temporary = re.compile(rb"\." + re.escape(out.name.encode()) + rb"\.[A-Za-z0-9_]+\.tmp")
    assert [str(p) for p in sorted(out.rglob("*")) if p.is_file() and temporary.search(p.read_bytes())] == []
    linked = hls4ml.converters.link_existing_project(out)  # hls4ml's way to rebuild and call the project
    assert linked.config.get_output_dir() == str(out.resolve())
    (library,) = (out / "firmware").glob("myproject-*.so")

    model = load_model(example_models["mlp"])
    x = grid_inputs(report["model"]["input_type"], tuple(model.input_shape[1:]), 40, seed=7)
    assert report["csim"]["output"]["kind"] == "logits"  # the library outputs the compared logits
    logits = reference.evaluate(model, x.astype(np.float64), keep=True)[report["csim"]["compared_layer"]]
    np.save(tmp_path / "x.npy", x)

    def call(lib: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", _CALL_LIBRARY, str(lib), str(tmp_path / "x.npy"),
                               str(logits.shape[1]), str(tmp_path / "y.npy")],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    result = call(library)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), logits.reshape(len(x), -1))

    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    shutil.rmtree(moved / "firmware" / "weights")
    result = call(moved / "firmware" / library.name)
    assert result.returncode != 0 and f"{moved}/firmware/weights/" in result.stderr, result.stderr[-2000:]
