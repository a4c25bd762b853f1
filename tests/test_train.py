"""`trigger train` from the command line on every shipped config, against the CI-sized data.

Each family is trained once per session (the shipped config, unchanged) and the runs are shared by
the checks below.
"""

import json

import numpy as np
import pytest

from tests.conftest import CONFIGS, REPO, run_cli

pytestmark = pytest.mark.slow  # trains the shipped configs

# Floors a broken model cannot reach on the CI samples (5 balanced jet classes: chance accuracy 0.2;
# chance AUC 0.5). Measured on the CI fixtures (docs/models.md): teacher accuracy / mean AUC MLP
# 0.55 / 0.83, CNN 0.47 / 0.78, GNN 0.47 / 0.80; AD teacher mean AUC 0.87. The floors leave margin
# for run-to-run variation while staying far above chance.
TEACHER_FLOORS = {
    "jet_mlp": {"accuracy": 0.40, "mean_auc": 0.75},
    "jet_cnn": {"accuracy": 0.35, "mean_auc": 0.70},
    "jet_gnn": {"accuracy": 0.35, "mean_auc": 0.70},
    "ad_autoencoder": {"mean_auc": 0.70},
}
# Students (measured mean AUC 0.83, 0.76, 0.80, 0.84): the compression path must keep the physics.
STUDENT_AUC_FLOOR = 0.65


@pytest.mark.parametrize("name", list(CONFIGS))
def test_train_writes_models_metrics_history_plots(runs, name):
    run = runs(name)
    for f in ("teacher.h5", "model.h5", "metrics.json", "history.json", "training_curves.png", "roc.png"):
        assert (run.out / f).is_file(), f
        if f.endswith(".png"):
            assert (run.out / f).read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in run.out.parent.iterdir() if p.name.startswith(".")], "temporary left behind"
    m = run.metrics
    assert {"teacher", "student", "data", "config", "seed", "student_bits", "sparsity", "bops"} <= set(m)
    assert m["config"]["name"] == name and m["seed"] == run.config.seed
    history = json.loads((run.out / "history.json").read_text())
    assert history["teacher"]["loss"] and history["student"]
    assert m["data"]["n_test"] > 0 and m["data"]["n_train"] > m["data"]["n_test"] // 2
    assert "wrote" in run.proc.stdout and "teacher" in run.proc.stdout and "student" in run.proc.stdout
    if run.config.family == "autoencoder":
        for role in ("teacher", "student"):
            r = m[role]
            assert set(r["auc"]) == set(r["efficiency"]) and len(r["auc"]) >= 1
            assert r["target_fpr"] == 2.5e-5 and r["rate_resolved_khz"] >= r["target_rate_khz"]
            assert r["resolved"] == (r["fpr_used"] <= 2.5e-5)
        assert m["data"]["train_background_only"] is True
        assert (run.out / "scores.png").is_file()
    else:
        for role in ("teacher", "student"):
            r = m[role]
            assert set(r["auc"]) == {"g", "q", "W", "Z", "t"} and set(r["rejection"]) == set(r["auc"])
            assert 0 <= r["accuracy"] <= 1


@pytest.mark.parametrize("name", list(CONFIGS))
def test_teacher_and_student_beat_chance(runs, name):
    m = runs(name).metrics
    for key, floor in TEACHER_FLOORS[name].items():
        assert m["teacher"][key] > floor, (key, m["teacher"][key], floor)
    assert m["student"]["mean_auc"] > STUDENT_AUC_FLOOR, m["student"]["auc"]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_student_is_quantized_reloads_and_reproduces_metrics(runs, name):
    """The saved student is QKeras (input quantizer, quantized weights), reloads with trigger.load_model
    and gives exactly the recorded test metrics on the test split recomputed from its metadata."""
    from trigger import load_model
    from trigger.data.dataset import load_dataset
    from trigger.models.io import load_meta
    from trigger.stages.train import evaluate_model

    run = runs(name)
    m = run.metrics
    for role, file in (("student", "model.h5"), ("teacher", "teacher.h5")):
        model = load_model(run.out / file)
        meta = load_meta(run.out / file)
        assert meta.role == role and meta.config == name and meta.view == run.config.data.view
        data = load_dataset(run.data, meta.view)
        test = meta.split(len(data.y))[2]
        x = meta.prepare_inputs(data.x[test])
        recomputed, _ = evaluate_model(model, x, data.y[test], meta.task, meta.class_names)
        assert recomputed["auc"] == pytest.approx(m[role]["auc"], abs=1e-9)
        if role == "student":
            kinds = [type(layer).__name__ for layer in model.layers]
            assert kinds[1] == "QActivation", kinds  # the input quantizer right after the Input
            assert not {"Dense", "Conv2D"} & set(kinds), kinds  # every weight layer quantized


def test_mlp_student_sparsity_matches_config(runs):
    """The hidden layers reach the configured sparsity (the output layer is not pruned), and the
    zeros survive saving."""
    from trigger import load_model

    run = runs("jet_mlp")
    target = run.config.student.pruning.sparsity
    sparsity = run.metrics["sparsity"]
    model = load_model(run.out / "model.h5")
    for layer in ("fc1", "fc2", "fc3"):
        assert abs(sparsity[layer] - target) < 0.02, sparsity
        kernel = model.get_layer(layer).get_weights()[0]
        assert abs(np.mean(kernel == 0) - sparsity[layer]) < 1e-9


def test_per_layer_bits_reach_the_saved_student(runs):
    """jet_cnn.yaml gives conv1 9-bit weights in [-2, 2) and logits 8-bit weights, everything else
    the config's default; pruning.layers leaves conv1 dense while fc1 is pruned."""
    from trigger import load_model

    run = runs("jet_cnn")
    model = load_model(run.out / "model.h5")
    default = run.config.student.quantization.weight_bits
    assert default not in (9, 8)  # else the overrides would not be told apart from the default
    for layer, bits, integer in (("conv1", 9, 1), ("fc1", default, 0), ("logits", 8, 0)):
        quantizer = model.get_layer(layer).kernel_quantizer_internal
        assert (quantizer.bits, quantizer.integer) == (bits, integer), layer
        assert f"quantized_bits({bits},{integer}," in run.metrics["student_bits"][layer]["kernel"]
    assert "per-layer overrides: conv1, logits" in run.proc.stdout
    sparsity = run.metrics["sparsity"]
    assert sparsity["conv1"] == 0.0 and sparsity["fc1"] >= 0.45


def test_existing_out_refused_without_force(runs):
    run = runs("jet_mlp")
    before = (run.out / "metrics.json").read_text()
    proc = run_cli("train", REPO / "configs" / "jet_mlp.yaml", "--data", run.data, "--out", run.out)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0] and str(run.out) in err[0]
    assert (run.out / "metrics.json").read_text() == before


def test_wrong_data_kind_is_one_line_error(runs, tmp_path):
    run = runs("ad_autoencoder")
    proc = run_cli("train", REPO / "configs" / "jet_mlp.yaml", "--data", run.data, "--out", tmp_path / "x")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "view 'hlf'" in err[0], err
    assert not (tmp_path / "x").exists()


def test_force_overwrites_and_seed_overrides_config(runs, tmp_path):
    """--force replaces an existing run directory; --seed replaces the config's seed (split and
    training), and the metadata records it so later stages recompute the same test split."""
    import shutil

    from trigger.models.io import load_meta

    run = runs("jet_mlp")
    out = tmp_path / "again"
    shutil.copytree(run.out, out)
    (out / "stale.txt").write_text("from an earlier run")
    proc = run_cli("train", REPO / "configs" / "jet_mlp.yaml", "--data", run.data, "--out", out, "--force",
                   "--seed", "7")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (out / "stale.txt").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 7 and load_meta(out / "model.h5").seed == 7
    assert metrics["teacher"]["auc"] != run.metrics["teacher"]["auc"]  # another split, another training


def test_deepsets_variant_trains_through_the_library(jets_file, tmp_path):
    """The DeepSets GNN variant end to end through trigger.stages.train with an in-memory Dataset
    (a test-only variant of jet_gnn.yaml: DeepSets, a short QAP stage)."""
    from trigger.data import load_dataset
    from trigger.stages import train
    from tests.test_models import _config

    cfg = _config("jet_gnn", teacher={"architecture": {"variant": "deepsets"}},
                  student={"architecture": {"variant": "deepsets"}, "train": {"epochs": 3}})
    result = train(cfg, data=load_dataset(jets_file, "constituents"), out=tmp_path / "ds", seed=3)
    m = result.metrics
    assert m["data"]["file"] == "<in memory>" and m["seed"] == 3
    assert "GlobalAveragePooling1D" in m["bops"]["layers"]["student"] or m["bops"]["student"] > 0
    assert (tmp_path / "ds" / "model.h5").is_file() and "student" in result.summary()
    assert m["teacher"]["mean_auc"] > 0.65, m["teacher"]["auc"]


# --- a diverging run stops in one line -------------------------------------------------------------

def test_diverging_teacher_stops_in_one_line(tmp_path):
    """A learning rate of 1e30 makes the float teacher's loss NaN in its first epoch: `trigger train`
    stops there with one line naming the epoch and what to change, and writes nothing."""
    from tests.test_bad_inputs import assert_nothing_written, error_line

    config = tmp_path / "diverging.yaml"
    config.write_text((REPO / "configs" / "jet_mlp.yaml").read_text().replace(
        "learning_rate: 0.001", "learning_rate: 1.0e+30"))
    assert "1.0e+30" in config.read_text()
    out = tmp_path / "run"
    line = error_line(run_cli("train", config, "--data", REPO / "models" / "jet_mlp" / "check_sample.h5",
                              "--out", out))
    assert "teacher diverged in epoch 1" in line and "learning rate" in line and "BatchNormalization" in line
    assert_nothing_written(out)


def test_diverging_compression_stops_in_one_line(tmp_path):
    """A float model with a NaN weight: the quantized student's loss is NaN in the first epoch of
    `trigger compress`, which stops in one line before any metric (roc_auc_score refuses NaN) and
    writes neither OUT.h5 nor OUT.json."""
    import numpy as np

    from tests.test_bad_inputs import assert_nothing_written, error_line
    from trigger.models.io import load_meta, load_model, save_model

    teacher = REPO / "models" / "jet_mlp" / "teacher.h5"
    model = load_model(teacher)
    layer = next(layer for layer in model.layers if layer.get_weights())
    weights = layer.get_weights()
    weights[0][0, 0] = np.nan
    layer.set_weights(weights)
    broken = save_model(model, tmp_path / "nan_teacher.h5", meta=load_meta(teacher))
    out = tmp_path / "student.h5"
    line = error_line(run_cli("compress", broken, "--data", REPO / "models" / "jet_mlp" / "check_sample.h5",
                              "--out", out))
    assert "quantized student" in line and "diverged in epoch 1" in line and "nan" in line
    assert_nothing_written(out)
    assert_nothing_written(out.with_suffix(".json"))
