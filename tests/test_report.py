"""Firmware reports without TensorFlow or hls4ml: the csynth.xml parser on real-schema fixtures,
report.md rendering with vendor and estimate figures, `trigger report`, the demo's headline table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from trigger.errors import TriggerError
from trigger.firmware.vendor import CSYNTH_RELATIVE, parse_csynth_xml, parse_vivado_report, read_vendor_report
from trigger.report import headline_table, read_report, render_markdown

DATA = Path(__file__).parent / "data" / "csynth"


def _project_with(tmp_path: Path, fixture: str) -> Path:
    """A project folder with the fixture at the place Vivado/Vitis HLS write it."""
    target = tmp_path / "proj" / CSYNTH_RELATIVE
    target.parent.mkdir(parents=True)
    shutil.copy(DATA / fixture, target)
    return tmp_path / "proj"


def test_parse_vivado_csynth(tmp_path):
    report = parse_vivado_report(_project_with(tmp_path, "vivado_2019.2_myproject_csynth.xml"))
    assert report["source"] == "vendor"
    assert report["tool"] == "Vivado HLS 2019.2"
    assert report["part"] == "xczu3eg-sbva484-1-e"
    assert report["latency"] == {"min_cycles": 15, "max_cycles": 15, "interval": 1, "interval_max": 1, "ns": 75.0}
    assert report["resources"] == {"DSP": 221, "LUT": 89829, "FF": 17734, "BRAM_18K": 4, "URAM": 0}
    assert report["available"]["DSP"] == 360
    assert report["clock"] == {"target_ns": 5, "uncertainty_ns": 0.62, "estimated_ns": 4.366}


def test_parse_vitis_csynth_ignores_submodules():
    report = parse_csynth_xml(DATA / "vitis_2023.2_myproject_csynth.xml")
    assert report["tool"] == "Vitis HLS 2023.2"
    assert report["latency"]["min_cycles"] == 131 and report["latency"]["max_cycles"] == 138
    assert report["latency"]["interval"] == 65 and report["latency"]["interval_max"] == 66
    assert report["latency"]["ns"] == pytest.approx(690.0)
    # the top-level figures, not the ModuleInformation block's (DSP 36, LUT 15000)
    assert report["resources"]["DSP"] == 38 and report["resources"]["LUT"] == 21980


def test_undef_latency_is_none_not_guessed():
    report = parse_csynth_xml(DATA / "vitis_undef_latency_csynth.xml")
    assert report["latency"]["min_cycles"] is None and report["latency"]["max_cycles"] is None
    assert report["latency"]["ns"] is None
    assert report["resources"]["FF"] == 12457


def test_read_vendor_report_absent_and_other_names(tmp_path):
    assert read_vendor_report(tmp_path) is None
    other = tmp_path / "other_prj" / "solution2" / "syn" / "report"
    other.mkdir(parents=True)
    shutil.copy(DATA / "vitis_2023.2_myproject_csynth.xml", other / "top_csynth.xml")
    assert read_vendor_report(tmp_path)["resources"]["DSP"] == 38


def test_bad_csynth_is_one_line_error(tmp_path):
    bad = tmp_path / "x_csynth.xml"
    bad.write_text("<profile><UserAssignments/></profile>")
    with pytest.raises(TriggerError, match="not an HLS csynth.xml"):
        parse_csynth_xml(bad)
    bad.write_text("not xml")
    with pytest.raises(TriggerError, match="not a readable csynth.xml"):
        parse_csynth_xml(bad)


def _report(vendor: dict | None) -> dict:
    estimate = {"source": "estimate", "method": "analytic v1",
                "latency": {"min_cycles": 13, "max_cycles": 13, "interval": 1, "ns": 65.0},
                "resources": {"DSP": 200, "LUT": 80000, "FF": 15000, "BRAM_18K": 4}, "layers": []}
    from trigger.firmware.synth import latency_resources

    latency, resources = latency_resources(estimate, vendor, "xczu3eg-sbva484-1-e")
    return {"model": {"name": "m", "path": "m.h5", "family": "mlp", "task": "classification"},
            "config": {"backend": "Vivado", "part": "xczu3eg-sbva484-1-e", "clock_ns": 5.0, "reuse": 1,
                       "strategy": "Latency", "io_type": "io_parallel"},
            "layers": [{"name": "dense0", "class": "Dense", "result": "fixed<16,6>", "multiplications": 10,
                        "nonzero_weights": 10, "weights": 16, "bops": 400.0, "reuse": 1}],
            "csim": {"bit_exact_fraction": 1.0, "max_abs_diff": 0.0, "n_values": 50, "compared": "logits",
                     "compared_layer": "logits", "float32": {"fraction_equal": 1.0, "max_abs_diff": 0.0},
                     "inexact_layers": [{"layer": "softmax", "reason": "lookup table"}]},
            "latency": latency, "resources": resources, "estimate": estimate, "vendor": vendor,
            "counts": {"multiplications": 10, "bops": 400.0, "nonzero_weight_bits": 60, "pipeline_stages": 3}}


def test_markdown_labels_estimate_as_estimate():
    md = render_markdown(_report(None))
    assert "Source: **estimate**" in md and "ESTIMATE, not a vendor report" in md
    assert "| DSP | 200 (55.56 %) |" in md  # percent of the part from the data sheet
    assert "data sheet of xczu3eg-sbva484-1-e" in md
    assert "`softmax`: lookup table" in md


def test_markdown_vendor_with_estimate_beside():
    vendor = parse_csynth_xml(DATA / "vivado_2019.2_myproject_csynth.xml")
    md = render_markdown(_report(vendor))
    assert "Source: **vendor**: Vivado HLS 2019.2 C synthesis" in md
    assert "|  | vendor | estimate |" in md
    assert "| DSP | 221 (61.39 %) | 200 |" in md
    assert "| latency max (cycles) | 15 | 13 |" in md


def test_read_report(tmp_path):
    with pytest.raises(TriggerError, match="has no report.md or report.json"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps(_report(None)))
    assert read_report(tmp_path).startswith("# Firmware report: m")  # rendered from report.json
    (tmp_path / "report.md").write_text("# written\n")
    assert read_report(tmp_path) == "# written\n"


def test_trigger_report_cli_errors(tmp_path):
    result = run_cli("report", tmp_path / "missing")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "not a folder" in result.stderr


def test_headline_table_reads_typed_files(tmp_path):
    model_dir, fw_dir = tmp_path / "model", tmp_path / "fw"
    model_dir.mkdir()
    fw_dir.mkdir()
    assert "no metrics.json" in headline_table(model_dir, fw_dir)
    metrics = json.loads((Path(__file__).parent.parent / "models" / "jet_mlp" / "metrics.json").read_text())
    metrics["teacher"]["accuracy"], metrics["student"]["accuracy"] = 0.75, 0.74
    metrics["sparsity"]["trainable_total"] = 0.7
    metrics["bops"].update(teacher=1e7, student=1e5)
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    (fw_dir / "report.json").write_text(json.dumps(_report(None)))
    table = headline_table(model_dir, fw_dir)
    for text in ("teacher accuracy | 0.75", "student accuracy | 0.74", "student sparsity | 0.7",
                 "csim bit-exact fraction (logits) | 1", "latency [estimate] | 13 cycles = 65 ns",
                 "resources [estimate] | DSP 200"):
        assert text in table, text
    (fw_dir / "report.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(TriggerError, match="schema_version 99, newer than"):
        headline_table(model_dir, fw_dir)


def test_trigger_budget_verdicts():
    from trigger.config import SynthConfig
    from trigger.firmware.synth import trigger_budget
    from trigger.report.render import budget_verdict

    cfg = SynthConfig(clock_ns=5.0)
    fits = trigger_budget({"source": "estimate", "ns": 80.0, "interval": 1}, cfg)
    assert fits["fits"] and fits["interval_ns"] == 5.0
    slow = trigger_budget({"source": "estimate", "ns": 80.0, "interval": 256}, cfg)
    assert slow["fits_latency"] and not slow["fits_interval"] and slow["fits"] is False
    long = trigger_budget({"source": "vendor", "ns": 120.0, "interval": 1}, cfg)
    assert not long["fits_latency"] and long["source"] == "vendor"
    assert trigger_budget({"source": "none"}, cfg)["fits"] is None
    # fast enough but larger than the part: does not fit, and says which resource
    fast = {"source": "estimate", "ns": 80.0, "interval": 1}
    big = trigger_budget(fast, cfg, {"percent_of_part": {"DSP": 20.0, "LUT": 130.5}})
    assert big["fits"] is False and big["fits_part"] is False and big["over_part"] == ["LUT"]
    small = trigger_budget(fast, cfg, {"percent_of_part": {"DSP": 20.0, "LUT": 99.0}})
    assert small["fits"] and small["fits_part"] and small["over_part"] == []
    # an unknown part: the resources cannot be checked, the verdict rests on the timing
    assert trigger_budget(fast, cfg, {"percent_of_part": {}})["fits_part"] is None
    assert budget_verdict(fits) == "fits (latency 80/100 ns, new event every 5/25 ns)"
    assert budget_verdict(big).startswith("does NOT fit") and budget_verdict(big).endswith("; LUT over the part)")


@pytest.mark.parametrize("kind, expected", [
    ("softmax", "probabilities through hls4ml's softmax tables; argmax agreement with QKeras 0.9995; "
                "max |probability difference| 0.0018"),
    ("logits", "the logits (no softmax in the firmware); bit-exact fraction 1; argmax agreement with QKeras 1"),
    ("argmax", "a one-hot of the largest logit (hls4ml's argmax); argmax agreement with QKeras 1")])
def test_markdown_states_the_firmware_output_and_its_agreement(kind, expected):
    """report.md names what the firmware outputs (`output`) and how it agrees with the model there;
    a model without a final softmax (kind 'outputs') says nothing more than its bit-exact fraction."""
    blocks = {"softmax": {"argmax_agreement": 0.9995, "max_abs_diff_probabilities": 0.0018},
              "logits": {"bit_exact_fraction": 1.0, "argmax_agreement": 1.0},
              "argmax": {"argmax_agreement": 1.0, "one_hot_fraction": 1.0}}
    report = _report(None)
    report["config"]["output"] = kind
    report["csim"]["output"] = {"kind": kind, "n_events": 2000, **blocks[kind]}
    md = render_markdown(report)
    assert f"output {kind}" in md.splitlines()[3]  # the settings line
    assert f"**Firmware output: {kind}**: {expected}" in md
    report["csim"]["output"] = {"kind": "outputs", "n_events": 2000, "bit_exact_fraction": 1.0}
    assert "Firmware output" not in render_markdown(report)
