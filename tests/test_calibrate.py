"""`trigger calibrate` on fixture project folders: the hand-written vendor reports of
tests/data/vendor/mlp_vitis/ (C synthesis per module and in total, Vivado post-synthesis
utilisation) beside a report.json written here. It refits the estimator's constants and writes the
user's calibration file; a folder without report.json, without a vendor report or with a malformed
one is refused in one line, exit 2, and nothing is written; `trigger synth` picks the file up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from trigger.config import SynthConfig
from trigger.contracts import EstimateReport
from trigger.errors import TriggerError
from trigger.firmware.estimate.calibration import load_calibration
from trigger.firmware.synth import report_figures
from trigger.firmware.estimate.calibration import ENV_VAR, synth_calibration, user_calibration_path
from trigger.stages.calibrate import calibrate, constants

FIXTURE = Path(__file__).parent / "data" / "vendor" / "mlp_vitis"
CSYNTH_TOP = "myproject_prj/solution1/syn/report/myproject_csynth.xml"

#: The hls4ml layers of the fixture design: name, class, index (the N of config<N>) and estimate
LAYERS = [("input_1", "Input", 1, {}),
          ("fc1", "Dense", 2, {"cycles": 2, "interval": 1, "DSP": 28, "LUT": 2650, "FF": 760, "BRAM_18K": 0}),
          ("relu1", "Activation", 3, {"cycles": 1, "interval": 1, "DSP": 0, "LUT": 150, "FF": 96, "BRAM_18K": 0}),
          ("fc2", "Dense", 4, {"cycles": 2, "interval": 1, "DSP": 8, "LUT": 1500, "FF": 330, "BRAM_18K": 0})]


def fixture_estimate(scale: float = 1.0) -> dict:
    """An ``Estimate.to_dict()`` of the fixture design in the current shape (targets, calibration,
    features); ``scale`` multiplies its structural features (a second, different design)."""
    cal = load_calibration()
    layers = [dict(name=name, **{"class": cls}, mults=0, **figures) for name, cls, _, figures in LAYERS if figures]
    csynth = {k: int(sum(layer[k] for layer in layers) * (scale if k in ("LUT", "FF") else 1))
              for k in ("DSP", "LUT", "FF", "BRAM_18K")}
    latency = {"min_cycles": 5, "max_cycles": 5, "interval": 1, "ns": 25.0}
    synth = {k: int(round(v * getattr(cal.synth_ratio, k))) for k, v in csynth.items()}
    return {"source": "estimate", "method": "trigger analytic HLS model v1, profile modern",
            "latency": latency, "resources": csynth, "layers": layers,
            "targets": {"csynth": {"latency": latency, "resources": csynth,
                                   "uncertainty": cal.uncertainty["csynth"].model_dump()},
                        "synth": {"latency": latency, "resources": synth,
                                  "uncertainty": cal.uncertainty["synth"].model_dump()}},
            "calibration": {"name": cal.name, "tool": cal.tool, "source": "builtin"},
            "features": {"lut_logic": 3300.0 * scale, "ff_bits": 1200.0 * scale, "lut_mult_bits.modern": 950.0 * scale,
                         "DSP": 36.0, "BRAM_18K": 0.0, "cycles": 5.0, "interval": 1.0}}


def fixture_report(estimate: dict | None = None, vendor: dict | None = None, clock_ns: float = 5.0) -> dict:
    """A report.json of the fixture design as `trigger synth` writes it (without C simulation)."""
    estimate = estimate or fixture_estimate()
    config = SynthConfig(clock_ns=clock_ns)
    layers = [{"name": name, "class": cls, "index": index} for name, cls, index, _ in LAYERS]
    return {"model": {"path": "mlp.h5", "name": "mlp"},
            "config": {"backend": "Vitis", "part": config.part, "clock_ns": clock_ns, "reuse": 1,
                       "strategy": "Latency", "io_type": "io_parallel"},
            "layers": layers, **report_figures(EstimateReport.model_validate(estimate), vendor, config, layers),
            "estimate": estimate,
            "vendor": vendor}


def make_project(where: Path, scale: float = 1.0, *, vendor_files: bool = True, clock_ns: float = 5.0) -> Path:
    """A project folder: the fixture's vendor reports and a report.json written here."""
    if vendor_files:
        shutil.copytree(FIXTURE, where)
    else:
        where.mkdir(parents=True)
    (where / "report.json").write_text(json.dumps(fixture_report(fixture_estimate(scale), clock_ns=clock_ns)))
    return where


@pytest.fixture
def user_file(tmp_path, monkeypatch) -> Path:
    """The user's calibration file, redirected with $TRIGGER_CALIBRATION into tmp_path."""
    path = tmp_path / "config" / "estimator_calibration.yaml"
    monkeypatch.setenv(ENV_VAR, str(path))
    return path


def test_calibrate_refits_the_constants_and_prints_them(tmp_path, user_file):
    a, b = make_project(tmp_path / "a"), make_project(tmp_path / "b", scale=1.3)
    result = run_cli("calibrate", a, b)
    assert result.returncode == 0, result.stderr
    builtin, fitted = load_calibration(), load_calibration(user_file)
    old, new = constants(builtin), constants(fitted)
    changed = [key for key in new if abs(new[key] - old[key]) > 1e-6]
    # the LUT/FF factors and the post-synthesis ratios follow the user's reports
    assert {"lut_per_logic", "ff_per_bit", "synth_ratio.LUT", "synth_ratio.FF"} <= set(changed), changed
    assert str(a.resolve()) in fitted.fit_designs and str(b.resolve()) in fitted.fit_designs
    assert fitted.tool == "Vitis HLS 2023.2 + Vivado 2023.2"
    assert f"wrote {user_file}" in result.stdout and "refit of the builtin calibration on 2 design(s)" in result.stdout
    assert "lut_per_logic" in result.stdout and "csynth: " in result.stdout and " -> " in result.stdout


def test_refit_brings_the_estimate_closer_to_the_users_reports(tmp_path, user_file):
    from trigger.firmware.estimate.calibration import relative_errors

    result = calibrate([make_project(tmp_path / "a"), make_project(tmp_path / "b", scale=1.3)])

    def squared(cal) -> float:
        # summed over the user's designs (two designs with the same reports cannot both be exact)
        # and over the refitted figures (the published designs also pull on each constant)
        return sum(relative_errors(cal, s)[target][key] ** 2 for s in result.samples
                   for target in ("csynth", "synth") for key in ("LUT", "FF"))

    assert squared(result.after) < squared(result.before)


def test_calibrating_again_replaces_a_designs_sample(tmp_path, user_file):
    project = make_project(tmp_path / "a")
    first = calibrate([project])
    second = calibrate([project])
    assert second.base_source == str(user_file)
    assert len(second.after.fit_data) == len(first.after.fit_data)
    assert second.after.fit_designs.count(str(project.resolve())) == 1


def _refused(tmp_path: Path, user_file: Path, *projects: Path, match: str) -> str:
    """calibrate refuses in one line naming ``match``; the user's file is left as it was."""
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_text("previous: content\n")
    with pytest.raises(TriggerError) as err:
        calibrate(list(projects))
    message = str(err.value)
    assert "\n" not in message and match in message, message
    assert user_file.read_text() == "previous: content\n"
    return message


def test_malformed_report_json_is_one_line_exit_2_nothing_written(tmp_path, user_file):
    good = make_project(tmp_path / "good")
    bad = make_project(tmp_path / "bad")
    (bad / "report.json").write_text('{"model": {"name": "m"}, "latency": "fast"}')
    result = run_cli("calibrate", good, bad, "--out", tmp_path / "mine.yaml")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.count("\n") == 0 and str(bad / "report.json") in line and "rerun `trigger synth`" in line, line
    assert not (tmp_path / "mine.yaml").exists() and not user_file.exists()
    assert "does not fit the report.json schema" in _refused(tmp_path, user_file, good, bad, match=str(bad))


def test_missing_report_and_missing_vendor_report_are_refused(tmp_path, user_file):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "pass a project folder written by `trigger synth`" in _refused(tmp_path, user_file, empty,
                                                                           match=str(empty / "report.json"))
    unbuilt = make_project(tmp_path / "unbuilt", vendor_files=False)
    message = _refused(tmp_path, user_file, unbuilt, match=f"{unbuilt} has no vendor report")
    assert "trigger synth --build" in message
    assert "not a folder" in _refused(tmp_path, user_file, tmp_path / "nowhere", match="nowhere")


def test_malformed_vendor_reports_are_refused(tmp_path, user_file):
    broken_xml = make_project(tmp_path / "xml")
    (broken_xml / CSYNTH_TOP).write_text("<profile><UserAssignments/></profile>")
    _refused(tmp_path, user_file, broken_xml, match="is not an HLS csynth.xml report")
    broken_rpt = make_project(tmp_path / "rpt")
    (broken_rpt / "vivado_synth.rpt").write_text("Utilization Design Information\n(truncated)\n")
    message = _refused(tmp_path, user_file, broken_rpt, match=str(broken_rpt / "vivado_synth.rpt"))
    assert "not a Vivado utilisation report" in message


def test_a_report_without_features_or_of_another_build_is_refused(tmp_path, user_file):
    old = make_project(tmp_path / "old")
    report = json.loads((old / "report.json").read_text())
    del report["estimate"]["features"]
    (old / "report.json").write_text(json.dumps(report))
    assert "rerun `trigger synth`" in _refused(tmp_path, user_file, old, match=str(old / "report.json"))
    other_clock = make_project(tmp_path / "clock", clock_ns=4.0)
    _refused(tmp_path, user_file, other_clock, match="built at a 5 ns clock but")


def test_reports_of_another_tool_version_are_refused(tmp_path, user_file):
    calibrate([make_project(tmp_path / "a")])
    before = user_file.read_text()
    other = make_project(tmp_path / "b")
    top = other / CSYNTH_TOP
    top.write_text(top.read_text().replace("<Version>2023.2</Version>", "<Version>2024.1</Version>"))
    with pytest.raises(TriggerError, match=r"is calibrated for Vitis HLS 2023.2 \+ Vivado 2023.2 but Vitis HLS "
                                           r"2024.1 \+ Vivado 2023.2 made these reports; .*--out FILE"):
        calibrate([other])
    assert user_file.read_text() == before
    assert calibrate([other], out=tmp_path / "v2024.yaml").after.tool == "Vitis HLS 2024.1 + Vivado 2023.2"


def test_malformed_existing_calibration_file_is_refused(tmp_path, user_file):
    project = make_project(tmp_path / "a")
    user_file.parent.mkdir(parents=True)
    user_file.write_text("name: [unclosed\n")
    with pytest.raises(TriggerError, match=r"cannot read YAML .*; fix or remove it, or write another file with --out"):
        calibrate([project])
    assert user_file.read_text() == "name: [unclosed\n"


def test_synth_uses_the_users_calibration_when_it_exists(tmp_path, user_file, monkeypatch):
    assert synth_calibration(None) is None  # no user file yet: the builtin calibration
    calibrate([make_project(tmp_path / "a")])
    assert synth_calibration(None) == user_file == user_calibration_path()
    mine = tmp_path / "mine.yaml"
    shutil.copy(user_file, mine)
    assert synth_calibration(mine) == mine  # --calibration FILE wins
    assert synth_calibration("builtin") is None  # --calibration builtin: the user's file is not used
    with pytest.raises(TriggerError, match=r"leave out --calibration for the builtin one") as err:
        synth_calibration(tmp_path / "missing.yaml")
    assert "\n" not in str(err.value)
    user_file.write_text("name: 3\n")
    with pytest.raises(TriggerError, match=rf"{user_file}: key .*remove it \(or point \${ENV_VAR} elsewhere\)"):
        synth_calibration(None)
    monkeypatch.delenv(ENV_VAR)
    assert user_calibration_path() == Path("~/.config/trigger/estimator_calibration.yaml").expanduser()


def test_calibrate_help_says_what_it_reads_and_writes():
    listed = run_cli("--help")
    assert listed.returncode == 0 and "    calibrate " in listed.stdout
    res = run_cli("calibrate", "--help")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "Reads PROJECT_DIR/report.json" in text and "writes the calibration file" in text
    assert "$TRIGGER_CALIBRATION" in text and "~/.config/trigger/estimator_calibration.yaml" in text
