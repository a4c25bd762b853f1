"""The calibration data set tests/data/published/ (docs/estimator.md, "Calibration data set")."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tools.estimator.published import load_published
from trigger.errors import TriggerError

DATA = Path(__file__).resolve().parent / "data" / "published"
FIGURES = ("latency_min", "latency_max", "interval_min", "interval_max", "DSP", "LUT", "FF", "BRAM_18K")


@pytest.fixture(scope="module")
def designs():
    return load_published(DATA)


def test_counts(designs):
    assert len(designs) == 68
    per_repo = Counter(d.source.repo for d in designs)
    assert per_repo == {"fastmachinelearning/hls4ml": 60, "fastmachinelearning/hls4ml-tutorial": 6,
                        "thaarres/dnd_hls4ml": 1, "ChiRuiChen/AutoEncoder_hls4ml": 1}
    assert Counter(d.weights for d in designs) == {"random": 61, "trained": 7}
    assert sum(d.post_synth is not None for d in designs) == 3


def test_provenance_and_figures(designs):
    for d in designs:
        assert re.fullmatch(r"[0-9a-f]{40}", d.source.commit), d.name
        assert d.source.repo and d.source.report, d.name
        for key in FIGURES:
            value = getattr(d.csynth, key)
            assert isinstance(value, int) and value >= 0, (d.name, key)
        assert d.csynth.LUT > 0 and d.csynth.FF > 0 and d.csynth.latency_max >= d.csynth.latency_min
        if d.post_synth is not None:
            assert d.source.post_synth_report, d.name
            assert all(isinstance(v, int) and v >= 0 for v in d.post_synth.model_dump().values())


def test_records_cited_by_the_estimator_tests(designs):
    by_name = {d.name: d for d in designs}
    assert by_name["tutorial_jet_mlp_rf1"].csynth.DSP == 3915
    assert by_name["tutorial_svhn_pruned_cnn"].csynth.LUT == 245466
    assert by_name["tutorial_svhn_pruned_cnn"].post_synth.DSP == 5386
    conv = by_name["hls4ml_baseline_vivado_2020_1_conv2d_io_parallel_vivado_resource_same_channels_last"]
    assert (conv.csynth.latency_max, conv.csynth.DSP) == (52, 740)


def test_build_sections_and_roles(designs):
    """Every design says how to rebuild it (or why not) and whether the constants are fitted on it
    (docs/estimator.md, *Calibration and held-out errors*)."""
    assert all(d.build is not None or d.build_note for d in designs)
    assert sum(d.build is not None for d in designs) == 68
    roles = Counter(d.role for d in designs)
    assert roles == {"fit": 27, "heldout": 41}
    fit_sources = Counter(d.source.repo for d in designs if d.role == "fit")
    assert fit_sources == {"fastmachinelearning/hls4ml": 21, "fastmachinelearning/hls4ml-tutorial": 5,
                           "thaarres/dnd_hls4ml": 1}
    for d in designs:
        if d.build is not None:
            assert d.build.profile == ("vivado2019" if d.tool.version.startswith("2019") else "modern"), d.name
            assert all("class" in layer for layer in d.build.layers), d.name


@pytest.mark.parametrize("mutate, key", [
    (lambda r: r["csynth"].update(DSP=-3), "csynth.DSP"),
    (lambda r: r["source"].update(commit="abc123"), "source.commit"),
    (lambda r: r["csynth"].pop("LUT"), "csynth.LUT"),
    (lambda r: r["csynth"].update(FF="12k"), "csynth.FF"),
])
def test_malformed_record_is_refused_in_one_line(tmp_path, mutate, key):
    record = yaml.safe_load((DATA / "tutorial_jet_mlp_rf1.yaml").read_text())
    mutate(record)
    bad = tmp_path / "tutorial_jet_mlp_rf1.yaml"
    bad.write_text(yaml.safe_dump(record))
    with pytest.raises(TriggerError) as info:
        load_published(tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(bad) in message and f"key {key}" in message


def test_not_yaml_is_refused(tmp_path):
    (tmp_path / "x.yaml").write_text("- just\n- a list\n")
    with pytest.raises(TriggerError, match="expected a mapping"):
        load_published(tmp_path)
