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


def test_every_reference_names_its_firmware_config(tmp_path, monkeypatch):
    """configs/reference/firmware.yaml: one loadable firmware config per reference model; a file that
    leaves one out is one line naming the file and the models."""
    from trigger.stages import reference

    configs = {name: load_config(REPO / reference.reference_firmware(name), SynthConfig)
               for name in reference.REFERENCES}
    assert configs["jet_gnn"].strategy == "distributed_arithmetic" and configs["jet_mlp"] == SynthConfig()
    partial = tmp_path / "firmware.yaml"
    partial.write_text("firmware:\n  jet_mlp: configs/synth/vitis_latency.yaml\n")
    monkeypatch.setattr(reference, "FIRMWARE_CONFIGS", partial)
    with pytest.raises(TriggerError, match=f"{partial}: 'firmware' must name each of jet_mlp, jet_cnn"):
        reference.reference_firmware("jet_mlp")


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


def test_not_text_and_folder_are_one_line(tmp_path):
    binary = tmp_path / "model.yaml"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n\x00\xff\xfe")
    assert "not a text file" in _error(binary)
    assert "is a folder" in _error(tmp_path)


def test_unknown_part_needs_its_resources():
    """A part trigger does not know is refused (listing the known ones) unless the config gives its
    totals, which then stand in for the data sheet in the resource percentages and the budget."""
    from trigger.contracts import EstimateReport
    from trigger.firmware.synth import check_part, latency_resources, trigger_budget

    assert check_part(SynthConfig())["source"] == "data sheet of xcvu13p-flga2577-2-e"
    with pytest.raises(TriggerError, match=r"unknown FPGA part 'notapart'; known parts: xcvu13p-\*.*part_resources"):
        check_part(SynthConfig(part="notapart"))
    with pytest.raises(TriggerError, match="part_resources.BRAM_18K"):
        validate_config({"part": "xcku115-flvb2104-2-e", "part_resources": {"DSP": 5520, "LUT": 663360,
                                                                            "FF": 1326720}}, SynthConfig)
    config = validate_config({"part": "xcku115-flvb2104-2-e", "part_resources": {
        "DSP": 5520, "LUT": 663360, "FF": 1326720, "BRAM_18K": 4320}}, SynthConfig)
    totals = check_part(config)
    assert totals["DSP"] == 5520 and "synth config" in totals["source"]
    estimate = {"latency": {"ns": 50.0, "interval": 1}, "resources": {"DSP": 6000, "LUT": 1000}}
    latency, resources = latency_resources(EstimateReport.model_validate(estimate), None, config.part, totals)
    assert resources["percent_of_part"]["DSP"] == round(100 * 6000 / 5520, 2)
    assert resources["available"]["source"] == totals["source"]
    budget = trigger_budget(latency, config, resources)
    assert budget["fits_part"] is False and budget["over_part"] == ["DSP"]
