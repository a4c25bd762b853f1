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
from trigger.stages.reference import REFERENCES

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
    proc = run_cli("synth", d / "model.h5", "--data", d / "check_sample.h5", "--teacher", d / "teacher.h5",
                   "--out", tmp_path / "fw")
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
