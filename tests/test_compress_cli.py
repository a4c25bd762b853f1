"""`trigger compress` as a user runs it: end to end on generated jets, and one-line errors."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.slow  # trains students through the CLI


def _jet_mlp(path, *, with_unsupported: bool = False):
    """A float jet MLP on the 16 high-level features, saved the way a user would save it."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    x_in = tf.keras.Input((16,), name="hlf")
    h = tf.keras.layers.Dense(32, activation="relu", name="fc1")(x_in)
    if with_unsupported:
        h = tf.keras.layers.LayerNormalization(name="my_layernorm")(h)
    h = tf.keras.layers.Dense(16, activation="relu", name="fc2")(h)
    out = tf.keras.layers.Dense(5, activation="softmax", name="out")(h)
    model = tf.keras.Model(x_in, out, name="user_mlp")
    model.save(path)
    return model


def test_unsupported_layer_exit_2_one_line_nothing_written(tmp_path):
    model_path = tmp_path / "bad.h5"
    _jet_mlp(model_path, with_unsupported=True)
    out = tmp_path / "student.h5"
    # a valid data file (the committed jet check sample): the layer is refused before any training
    data = REPO / "models" / "jet_mlp" / "check_sample.h5"
    res = run_cli("compress", model_path, "--data", data, "--out", out, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "my_layernorm" in lines[0] and "LayerNormalization" in lines[0] and "supported layers" in lines[0]
    assert "Traceback" not in res.stderr
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]


def test_compress_end_to_end_from_the_cli(jets_file, tmp_path):
    """A float model not in the zoo, trained on the generated jets, compressed from the CLI."""
    from trigger.data import load_dataset
    from trigger.data.splits import split_indices

    ds = load_dataset(jets_file, "hlf")
    mean, std = ds.x.mean(axis=0), ds.x.std(axis=0) + 1e-6
    i_train, _, _ = split_indices(len(ds.y), 0.2, 0.2, 7)
    model_path = tmp_path / "float.h5"
    model = _jet_mlp(model_path)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit((ds.x[i_train] - mean) / std, ds.y[i_train], epochs=5, batch_size=128, verbose=0)
    # store the model with its input transform, as `trigger train` does
    from trigger.models.io import save_model

    model_path.unlink()
    save_model(model, model_path, meta={"view": "hlf", "input_offset": mean, "input_scale": 1 / std,
                                        "seed": 7, "val_fraction": 0.2, "test_fraction": 0.2})
    config = tmp_path / "tiny.yaml"
    config.write_text("pruning: {sparsity: 0.5, schedule: constant, begin_fraction: 0.0}\n"
                      "train: {epochs: 4, batch_size: 128, patience: 4}\n")
    out = tmp_path / "student.h5"
    res = run_cli("compress", model_path, "--data", jets_file, "--config", config, "--bits", "8",
                  "--sparsity", "0.6", "--out", out, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and "BOPs" in res.stdout
    report = json.loads(out.with_suffix(".json").read_text())
    assert {"teacher", "student", "sparsity", "bits", "bops"} <= set(report)
    # every weight layer carries 8-bit quantizers; the CLI's --sparsity beat the config's 0.5
    assert all("quantized_bits(8," in report["bits"][name]["kernel"] for name in ("fc1", "fc2", "out"))
    assert report["sparsity"]["target"] == 0.6
    for name in ("fc1", "fc2"):
        assert abs(report["sparsity"]["layers"][name] - 0.6) <= 0.02
    assert report["sparsity"]["layers"]["out"] < 0.1
    assert report["bops"]["ratio"] > 10  # 32-bit float vs 8-bit, 60 % pruned
    assert 0.0 <= report["student"]["accuracy"] <= 1.0 and report["teacher"]["accuracy"] > 0.3
    assert report["data"]["view"] == "hlf" and report["data"]["split_seed"] == 7

    from trigger.compress import model_sparsity
    from trigger.models.io import load_meta, load_model

    student = load_model(out)
    assert model_sparsity(student)["fc1"] == pytest.approx(report["sparsity"]["layers"]["fc1"])
    meta = load_meta(out)
    assert meta.role == "student" and meta.input_offset == pytest.approx(mean.tolist())
    assert meta.bits["fc1"]["kernel"].startswith("quantized_bits(8,")
    assert type(student.layers[1]).__name__ == "QActivation"  # the input type is defined

    # an existing output is refused without --force, and nothing is overwritten
    before = out.read_bytes()
    res = run_cli("compress", model_path, "--data", jets_file, "--config", config, "--out", out, timeout=300)
    assert res.returncode == 2 and "--force" in res.stderr
    assert out.read_bytes() == before


def test_compress_anomaly_teacher_from_the_cli(runs, tmp_path):
    """The AD path from the CLI: the zoo's float autoencoder teacher, compressed against the AD file;
    the report gives the anomaly metrics (AUC per signal, efficiency at the resolvable rate)."""
    run = runs("ad_autoencoder")
    config = tmp_path / "tiny.yaml"
    config.write_text("pruning: {sparsity: 0.5, schedule: constant, begin_fraction: 0.0}\n"
                      "train: {epochs: 4, batch_size: 128, patience: 4}\n")
    out = tmp_path / "ad_student.h5"
    res = run_cli("compress", run.out / "teacher.h5", "--data", run.data, "--config", config,
                  "--bits", "8", "--out", out, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    for role in ("teacher", "student"):
        m = report[role]
        assert set(m["auc"]) == set(m["efficiency"]) and len(m["auc"]) == 4
        assert m["rate_resolved_khz"] >= m["target_rate_khz"] == pytest.approx(1.0)
    assert report["teacher"]["mean_auc"] > 0.7
    assert report["student"]["mean_auc"] > 0.6  # a broken student scores ~0.5
    assert report["bops"]["ratio"] > 5

    from trigger.models.io import load_meta, load_model

    student = load_model(out)
    assert student.output_shape[-1] in (1, student.input_shape[-1])  # the score, or a reconstruction
    assert load_meta(out).role == "student"
