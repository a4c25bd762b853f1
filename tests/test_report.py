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
    from trigger.contracts import EstimateReport
    from trigger.firmware.synth import latency_resources

    latency, resources = latency_resources(EstimateReport.model_validate(estimate), vendor, "xczu3eg-sbva484-1-e")
    return {"model": {"name": "m", "path": "m.h5", "family": "mlp", "task": "classification"},
            "config": {"backend": "Vivado", "part": "xczu3eg-sbva484-1-e", "clock_ns": 5.0, "reuse": 1,
                       "strategy": "Latency", "io_type": "io_parallel"},
            "layers": [{"name": "dense0", "class": "Dense", "result": "fixed<16,6>", "multiplications": 10,
                        "nonzero_weights": 10, "weights": 16, "bops": 400.0, "reuse": 1}],
            "csim": {"bit_exact_fraction": 1.0, "max_abs_diff": 0.0, "n_values": 50, "compared": "logits",
                     "compared_layer": "logits", "float32": {"fraction_equal": 1.0, "max_abs_diff": 0.0, "n_values": 50},
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


def test_headline_table_shows_each_estimate_target_with_its_uncertainty(tmp_path):
    from tests.test_calibrate import fixture_report
    from trigger.contracts import FirmwareReport

    raw = fixture_report()
    report = FirmwareReport.from_dict(raw, source="report.json")
    (tmp_path / "report.json").write_text(json.dumps(raw))
    table = headline_table(tmp_path, tmp_path)
    unc_c, unc_s = report.targets.csynth.uncertainty, report.targets.synth.uncertainty
    assert f"latency [ESTIMATE: C-synthesis] | 5 ± {unc_c.cycles} cycles = 25 ± {unc_c.cycles * 5:g} ns, II 1" in table
    assert (f"resources [ESTIMATE: after logic synthesis] | DSP {report.targets.synth.resources.DSP:,}"
            in table), table
    assert f"LUT {report.targets.synth.resources.LUT:,} ± {100 * unc_s.LUT:.0f} %" in table
    assert "of the part" not in table


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
    assert budget_verdict(big) == "does not fit (latency 80/100 ns, new event every 5/25 ns; LUT 130.5 % of the part)"
    # a report written before the uncertainty (no verdict, no checks) still reads in one sentence
    old = {k: v for k, v in big.items() if k not in ("verdict", "checks", "target")}
    assert budget_verdict(old) == "does not fit (latency 80/100 ns, new event every 5/25 ns; LUT over the part)"


@pytest.mark.parametrize("ns, cycles, verdict", [
    (80.0, 2, "fits"),  # 80 + 2 x 5 = 90 <= 100
    (95.0, 2, "fits within the uncertainty"),  # nominal within, 95 + 10 over
    (105.0, 2, "fits within the uncertainty"),  # nominal over, 105 - 10 within
    (115.0, 2, "does not fit"),  # 115 - 10 still over
    (95.0, 0, "fits"),  # vendor figures: no uncertainty, the nominal decides
    (105.0, 0, "does not fit")])
def test_latency_verdict_uses_the_uncertainty(ns, cycles, verdict):
    from trigger.config import SynthConfig
    from trigger.firmware.synth import trigger_budget
    from trigger.report.render import budget_verdict

    budget = trigger_budget({"source": "estimate", "ns": ns, "interval": 1}, SynthConfig(clock_ns=5.0),
                            uncertainty={"cycles": cycles})
    assert budget["verdict"] == budget["checks"]["latency"]["verdict"] == verdict
    assert budget["fits"] is (ns <= 100.0)  # `fits` stays the nominal comparison
    band = f"{ns:g} ± {cycles * 5:g}" if cycles else f"{ns:g}"
    assert budget_verdict(budget) == f"{verdict} (latency {band}/100 ns, new event every 5/25 ns)"


@pytest.mark.parametrize("percent, relative, verdict", [
    (70.0, 0.25, "fits"), (90.0, 0.25, "fits within the uncertainty"), (120.0, 0.25, "fits within the uncertainty"),
    (140.0, 0.25, "does not fit"), (120.0, 0.0, "does not fit")])
def test_resource_verdict_uses_the_uncertainty(percent, relative, verdict):
    from trigger.config import SynthConfig
    from trigger.firmware.synth import trigger_budget
    from trigger.report.render import budget_verdict

    budget = trigger_budget({"source": "estimate", "ns": 50.0, "interval": 1, "target": "synth"},
                            SynthConfig(clock_ns=5.0),
                            {"percent_of_part": {"DSP": 10.0, "LUT": percent}, "target": "synth"},
                            {"cycles": 1, "DSP": relative, "LUT": relative})
    assert budget["checks"]["DSP"]["verdict"] == "fits" and budget["checks"]["LUT"]["verdict"] == verdict
    assert budget["verdict"] == verdict and budget["target"] == "synth"  # the worst check decides
    text = budget_verdict(budget)
    assert text.startswith(verdict + " (") and ("LUT" in text) is (verdict != "fits"), text
    assert "DSP" not in text  # a resource that plainly fits is not named


def _vendor_fixture_report(with_post_synth: bool = True) -> dict:
    from tests.test_calibrate import FIXTURE, fixture_report

    vendor = read_vendor_report(FIXTURE)
    if not with_post_synth:
        vendor.pop("post_synth")
    return fixture_report(vendor=vendor)


def test_module_reports_and_post_synth_utilisation_are_read():
    from tests.test_calibrate import FIXTURE

    vendor = read_vendor_report(FIXTURE)
    assert vendor["tool"] == "Vitis HLS 2023.2" and vendor["resources"]["LUT"] == 5231
    modules = {m["config"]: m for m in vendor["modules"]}
    assert sorted(modules) == [2, 3, 4]  # config2 (fc1), relu_config3, config4 (fc2)
    assert modules[2]["latency"]["max_cycles"] == 3 and modules[2]["resources"] == {
        "DSP": 30, "LUT": 3104, "FF": 905, "BRAM_18K": 0}
    post = vendor["post_synth"]
    assert post["tool"] == "Vivado 2023.2" and post["part"] == "xcvu13p-flga2577-2-e"
    assert post["resources"] == {"DSP": 40, "LUT": 2712, "FF": 1206, "BRAM_18K": 0}
    assert post["available"] == {"DSP": 12288, "LUT": 1728000, "FF": 3456000, "BRAM_18K": 5376}


def test_vivado_synth_rpt_7_series_and_block_ram(tmp_path):
    from trigger.firmware.vendor import parse_vivado_synth_rpt

    rpt = tmp_path / "vivado_synth.rpt"
    rpt.write_text("| Tool Version : Vivado v.2019.2 (lin64) Build 2708876\n| Device       : 7z020clg400-1\n"
                   "1. Slice Logic\n| Site Type | Used | Fixed | Available | Util% |\n"
                   "| Slice LUTs*  | 37302 | 0 | 53200 | 70.12 |\n| Slice Registers | 51390 | 0 | 106400 | 48.3 |\n"
                   "|   Register as Flip Flop | 51386 | 0 | 106400 | 48.30 |\n2. Memory\n"
                   "| Block RAM Tile | 140 | 0 | 140 | 100.00 |\n|   RAMB36/FIFO* | 138 | 0 | 140 | 98.57 |\n"
                   "|     RAMB36E1 only | 138 | | | |\n|   RAMB18 | 4 | 0 | 280 | 1.43 |\n"
                   "3. DSP\n| DSPs | 220 | 0 | 220 | 100.00 |\n|   DSP48E1 only | 220 | | | |\n")
    post = parse_vivado_synth_rpt(rpt)
    assert post["tool"] == "Vivado 2019.2" and post["part"] == "7z020clg400-1"
    # FF: the flip flops, not all registers (latches); BRAM_18K = RAMB18 + 2 x RAMB36
    assert post["resources"] == {"DSP": 220, "LUT": 37302, "FF": 51386, "BRAM_18K": 280}
    assert post["available"]["BRAM_18K"] == 280 and post["percent_of_part"]["BRAM_18K"] == 100.0


def test_per_layer_comparison_with_the_vendor_modules():
    report = _vendor_fixture_report()
    csynth = report["comparison"]["csynth"]
    assert [(row["name"], row["module"].split("_ap_")[0]) for row in csynth["layers"]] == [
        ("fc1", "dense_latency"), ("relu1", "relu"), ("fc2", "dense_latency")]
    fc1 = csynth["layers"][0]
    assert fc1["estimate"]["cycles"] == 2 and fc1["vendor"]["cycles"] == 3 and fc1["difference"]["cycles"] == -1
    assert fc1["estimate"]["LUT"] == 2650 and fc1["vendor"]["LUT"] == 3104
    assert fc1["relative"]["LUT"] == round((2650 - 3104) / 3104, 4)
    assert csynth["total"]["vendor"] == {"cycles": 7, "interval": 1, "DSP": 38, "LUT": 5231, "FF": 1483, "BRAM_18K": 0}
    assert csynth["total"]["estimate"]["LUT"] == 4300 and csynth["unmatched_modules"] == []
    synth = report["comparison"]["synth"]  # the synth target against Vivado's post-synthesis utilisation
    assert synth["target"] == "synth" and synth["total"]["vendor"]["LUT"] == 2712
    assert synth["total"]["estimate"]["LUT"] == report["targets"]["synth"]["resources"]["LUT"]
    # the budget is checked on the post-synthesis figures, without uncertainty (vendor figures)
    assert report["budget"]["target"] == "synth" and report["budget"]["checks"]["LUT"]["nominal"] == 0.16
    assert report["budget"]["checks"]["latency"]["high"] == report["budget"]["checks"]["latency"]["nominal"] == 35
    md = render_markdown(report)
    assert "## Estimate vs vendor report" in md
    assert "| fc1 | `dense_latency_ap_fixed_10_2_5_3_0_ap_fixed_16_6_5_3_0_config2_s` | 2 / 3 (-33 %) |" in md
    assert "| total | - | 5 / 7 (-29 %) |" in md and "**after logic synthesis** (Vivado 2023.2" in md


def test_per_layer_comparison_without_module_reports_says_why(tmp_path):
    from tests.test_calibrate import FIXTURE, fixture_report

    shutil.copytree(FIXTURE, tmp_path / "p")
    for module in (tmp_path / "p" / CSYNTH_RELATIVE).parent.glob("*config*_csynth.xml"):
        module.unlink()
    report = fixture_report(vendor=read_vendor_report(tmp_path / "p"))
    assert report["comparison"]["csynth"]["layers"] == []
    assert "inlined the layers" in report["comparison"]["csynth"]["note"]


def test_report_json_has_both_targets_with_uncertainty_and_md_shows_them():
    from tests.test_calibrate import fixture_report
    from trigger.contracts import FirmwareReport

    raw = fixture_report()
    report = FirmwareReport.from_dict(raw, source="report.json")
    assert report.to_dict()["schema_version"] == 2
    for target in ("csynth", "synth"):
        block = getattr(report.targets, target)
        assert block.latency.target == block.resources.target == target
        assert block.uncertainty.cycles is not None and block.uncertainty.LUT is not None
        assert block.resources.percent_of_part["LUT"] > 0
    assert report.latency.target == report.resources.target == "csynth"  # the headline: C-synthesis
    assert report.budget.target == "synth" and report.budget.verdict is not None
    md = render_markdown(raw)
    unc_c, unc_s = report.targets.csynth.uncertainty, report.targets.synth.uncertainty
    lut_c, lut_s = report.targets.csynth.resources, report.targets.synth.resources
    assert (f"| LUT | {lut_c.LUT:,} ± {100 * unc_c.LUT:.0f} % ({lut_c.percent_of_part['LUT']:g} % of the part) | "
            f"{lut_s.LUT:,} ± {100 * unc_s.LUT:.0f} % ({lut_s.percent_of_part['LUT']:g} % of the part) |") in md
    assert "|  | ESTIMATE: C-synthesis | ESTIMATE: after logic synthesis |" in md
    assert f"| latency max (cycles) | 5 ± {unc_c.cycles} | 5 ± {unc_s.cycles} |" in md
    assert "Level-1 budget (estimate, after logic synthesis figures ± uncertainty): " in md
    assert "Verdicts: *fits*: within the budget even at the figure + its uncertainty" in md
    assert f"Estimator calibration: {report.calibration.name}" in md


def test_markdown_vendor_and_estimate_targets_side_by_side():
    md = render_markdown(_vendor_fixture_report())
    assert ("|  | vendor: C-synthesis | vendor: after logic synthesis | ESTIMATE: C-synthesis | "
            "ESTIMATE: after logic synthesis |") in md
    assert "| LUT | 5,231 (0.3 % of the part) | 2,712 (0.16 % of the part) | 4,300 ± " in md
    assert "Level-1 budget (vendor, after logic synthesis figures): fits (" in md
    no_post = render_markdown(_vendor_fixture_report(with_post_synth=False))
    assert "vendor: after logic synthesis" not in no_post
    assert "Level-1 budget (vendor, C-synthesis figures): fits (" in no_post


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


def test_synth_summary_prints_both_targets_with_uncertainty():
    from tests.test_calibrate import fixture_report
    from trigger.contracts import FirmwareReport
    from trigger.stages.synth import SynthResult

    report = FirmwareReport.build(**fixture_report())
    lines = SynthResult(Path("fw"), report).summary().splitlines()
    unc = report.targets.csynth.uncertainty
    assert f"latency (estimate): 5 ± {unc.cycles} cycles = 25.0 ± {unc.cycles * 5:g} ns, II 1" in lines
    c_line = next(line for line in lines if line.startswith("resources (estimate, C-synthesis): "))
    s_line = next(line for line in lines if line.startswith("resources (estimate, after logic synthesis): "))
    assert f"LUT {report.targets.csynth.resources.LUT} ± {100 * unc.LUT:.0f} %" in c_line
    assert f"LUT {report.targets.synth.resources.LUT} ± " in s_line
    assert lines[-1].startswith("Level-1 budget (estimate, after logic synthesis figures): ")
    vendor = SynthResult(Path("fw"), FirmwareReport.build(**_vendor_fixture_report())).summary()
    assert "resources (vendor, after logic synthesis): DSP 40, LUT 2712, FF 1206, BRAM_18K 0" in vendor


def test_the_resources_a_design_is_sized_on():
    """What the budget was checked on, read back from a written report: after logic synthesis, the
    vendor's utilisation when a build left one, else the estimate's synth target; the headline
    (C-synthesis) figures only when neither exists."""
    from trigger.contracts import FirmwareReport
    from trigger.firmware.synth import sized_resources

    headline = {"DSP": 10, "LUT": 1000, "FF": 500, "BRAM_18K": 0}
    synth_target = {"latency": {"max_cycles": 4, "interval": 1, "ns": 20.0, "source": "estimate", "target": "synth"},
                    "resources": {"DSP": 9, "LUT": 600, "FF": 400, "BRAM_18K": 0, "source": "estimate",
                                  "target": "synth"}}
    estimate = FirmwareReport.model_validate({
        "latency": {"max_cycles": 5, "interval": 1, "ns": 25.0, "source": "estimate", "target": "csynth"},
        "resources": {**headline, "source": "estimate", "target": "csynth"}, "targets": {"synth": synth_target}})
    res, source = sized_resources(estimate)
    assert (res.LUT, res.DSP, source) == (600, 9, "estimate, after logic synthesis")
    vendor_latency = {"max_cycles": 5, "interval": 1, "ns": 25.0, "source": "vendor", "target": "csynth"}
    built = FirmwareReport.model_validate({
        "latency": vendor_latency, "resources": {**headline, "source": "vendor", "target": "csynth"},
        "targets": {"synth": synth_target},
        "vendor": {"post_synth": {"resources": {"DSP": 8, "LUT": 550, "FF": 380, "BRAM_18K": 0},
                                  "tool": "vivado"}}})
    res, source = sized_resources(built)
    assert (res.LUT, res.DSP, source) == (550, 8, "vendor, after logic synthesis")
    res, source = sized_resources(FirmwareReport.model_validate({
        "latency": vendor_latency, "resources": {**headline, "source": "vendor", "target": "csynth"}}))
    assert (res.LUT, source) == (1000, "vendor")

