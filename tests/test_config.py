"""Config validation: every shipped config loads; bad keys give one line naming file and key."""

from pathlib import Path

import pytest

from trigger.config import (CompressConfig, ModelConfig, SynthConfig, load_config, validate_config)
from trigger.errors import TriggerError
from tests.conftest import REPO

MODEL_CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_four_families_ship():
    names = {p.stem for p in MODEL_CONFIGS}
    assert {"jet_mlp", "jet_cnn", "jet_gnn", "ad_autoencoder"} <= names
    families = {load_config(p, ModelConfig).family for p in MODEL_CONFIGS}
    assert families == {"mlp", "cnn", "gnn", "autoencoder"}


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_model_configs_load(path):
    cfg = load_config(path, ModelConfig)
    assert cfg.name == path.stem
    cfg.architecture("teacher"), cfg.architecture("student")


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "synth").glob("*.yaml")), ids=lambda p: p.stem)
def test_synth_configs_load(path):
    load_config(path, SynthConfig)


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "compress").glob("*.yaml")), ids=lambda p: p.stem)
def test_compress_configs_load(path):
    load_config(path, CompressConfig)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


def _mlp_text() -> str:
    return (REPO / "configs" / "jet_mlp.yaml").read_text()


def _error(path: Path, schema=ModelConfig) -> str:
    with pytest.raises(TriggerError) as exc:
        load_config(path, schema)
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def test_misspelt_top_level_key(tmp_path):
    msg = _error(_write(tmp_path, _mlp_text().replace("train:", "trian:")))
    assert "unknown key 'trian'" in msg


def test_misspelt_nested_key(tmp_path):
    msg = _error(_write(tmp_path, _mlp_text().replace("patience:", "patiense:")))
    assert "'train.patiense'" in msg


def test_misspelt_architecture_key(tmp_path):
    msg = _error(_write(tmp_path, _mlp_text().replace("hidden: [64, 32, 32]\nstudent", "hiden: [64, 32, 32]\nstudent")))
    assert "teacher.architecture.hiden" in msg


def test_wrong_type(tmp_path):
    msg = _error(_write(tmp_path, _mlp_text().replace("epochs: 30", "epochs: many")))
    assert "train.epochs" in msg and "integer" in msg


def test_out_of_range(tmp_path):
    msg = _error(_write(tmp_path, _mlp_text().replace("sparsity: 0.75", "sparsity: 1.5")))
    assert "student.pruning.sparsity" in msg


def test_missing_required_key(tmp_path):
    text = "\n".join(l for l in _mlp_text().splitlines() if not l.startswith("family:"))
    msg = _error(_write(tmp_path, text))
    assert "missing required key 'family'" in msg


def test_not_yaml(tmp_path):
    msg = _error(_write(tmp_path, "name: [unclosed\n"))
    assert "not valid YAML" in msg


def test_missing_file(tmp_path):
    with pytest.raises(TriggerError, match="not found"):
        load_config(tmp_path / "nope.yaml", ModelConfig)


def test_synth_bad_value_names_source():
    with pytest.raises(TriggerError, match=r"command line: key 'backend'"):
        validate_config({"backend": "Quartus"}, SynthConfig, source="command line")
