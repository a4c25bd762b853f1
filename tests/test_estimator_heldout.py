"""The estimator against the published designs: the data set, the fit / held-out split, the
leave-one-source-out errors, and the builtin calibration being exactly what the fit script writes
(docs/estimator.md, *Calibration and held-out errors*).

One module fixture rebuilds every published design with hls4ml 1.3.0 and runs the fit
(``tools.estimator.fit.run_fit``, about 10 s of CPU), hence the ``slow`` mark; the data
set's schema is checked quickly by tests/test_published.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.estimator.fit import PERCENTILE, error_table, run_fit, uncertainty_from
from tools.estimator.published import load_published
from trigger.firmware.estimate import load_calibration

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parent / "data" / "published"
#: designs the estimator cannot rebuild or does not model (docs/estimator.md says why)
NOT_EVALUATED = {
    "hls4ml_baseline_vitis_2024_1_depthwise1d_io_stream_vitis",  # DepthwiseConv: not modelled
    "hls4ml_baseline_vitis_2024_1_depthwise2d_io_stream_vitis",
    "hls4ml_baseline_vivado_2020_1_depthwise1d_io_stream_vivado",
    "hls4ml_baseline_vivado_2020_1_depthwise2d_io_stream_vivado",
}
#: held-out latency misses (more than 2 cycles and 10 %), each explained in docs/estimator.md
LATENCY_OUTLIERS = {
    "hls4ml_baseline_vivado_2020_1_pooling_vivado_channels_last_same_averagepooling1d",  # 21 cycles
    "hls4ml_baseline_vivado_2020_1_pooling_vivado_channels_last_same_averagepooling2d",  # 21 cycles
    "hls4ml_baseline_vitis_2020_1_dense_io_stream_vitis",  # 16 cycles for Dense(2) + ELU
    "autoencoder_denoise_mnist_cnn",  # -13 %: hls4ml 1.3.0 turns its reuse factor 64 into 72
}
#: held-out DSP misses (more than 25 %)
DSP_OUTLIERS = {"hls4ml_baseline_vitis_2020_1_dense_io_stream_vitis",  # 1 DSP reported for 2 products
                "autoencoder_denoise_mnist_cnn"}  # Resource strategy at reuse > 1: not calibrated


@pytest.fixture(scope="module")
def fitted():
    """(calibration, leave-one-source-out errors, excluded designs) of the published data set."""
    return run_fit(DATA)


def _abs_errors(errors: dict, target: str, key: str) -> dict[str, float]:
    return {name: abs(e[target][key]) for name, e in errors.items() if key in e.get(target, {})}


def test_every_rebuildable_design_is_evaluated_and_the_rest_say_why(fitted):
    cal, errors, excluded = fitted
    designs = load_published(DATA)
    assert set(excluded) == NOT_EVALUATED
    assert set(errors) == {d.name for d in designs} - NOT_EVALUATED
    by_name = {d.name: d for d in designs}
    assert all("not modelled" in excluded[name] for name in NOT_EVALUATED)
    sources = {by_name[name].source.repo for name in errors}
    assert len(sources) == 4 and len(errors) == 64
    assert sum(by_name[name].weights == "trained" for name in errors) == 7


def test_fit_and_heldout_split_follows_the_records(fitted):
    cal, errors, _ = fitted
    records = {d.name: d for d in load_published(DATA)}
    assert set(cal.fit_designs) == {n for n in errors if records[n].role == "fit"}
    assert set(cal.heldout_designs) == {n for n in errors if records[n].role == "heldout"}
    assert not set(cal.fit_designs) & set(cal.heldout_designs)
    assert [s.name for s in cal.fit_data] == cal.fit_designs
    builtin = load_calibration()
    assert (builtin.fit_designs, builtin.heldout_designs) == (cal.fit_designs, cal.heldout_designs)


def test_builtin_calibration_is_what_the_fit_script_writes(fitted):
    """Deterministic: `python -m tools.estimator.fit` rewrites the committed file unchanged."""
    cal, errors, _ = fitted
    assert load_calibration() == cal
    assert cal.uncertainty == uncertainty_from(errors)
    assert cal.uncertainty["synth"].cycles == cal.uncertainty["csynth"].cycles


def test_heldout_latency_within_2_cycles_or_10_percent(fitted):
    _, errors, _ = fitted
    misses = {name for name, e in errors.items()
              if abs(e["csynth"]["cycles"]) > 2 and abs(e["csynth"]["cycles"]) > 0.1 * _cycles(name)}
    assert misses <= LATENCY_OUTLIERS
    cycles = list(_abs_errors(errors, "csynth", "cycles").values())
    assert np.percentile(cycles, PERCENTILE, method="higher") <= 2 and np.median(cycles) == 0


def _cycles(name: str) -> int:
    return next(d.csynth.latency_max for d in load_published(DATA) if d.name == name)


def test_heldout_dsp_within_25_percent(fitted):
    _, errors, _ = fitted
    dsp = _abs_errors(errors, "csynth", "DSP")
    assert {name for name, err in dsp.items() if err > 0.25} <= DSP_OUTLIERS
    assert len(dsp) == 47  # designs with DSPs in their report


def test_heldout_lut_ff_bram_bounds_the_data_support(fitted):
    """The issue's aim (35 %) is met by the median design for LUT and FF, not by all: measured
    leave-one-source-out errors, asserted at what they are now (docs/estimator.md)."""
    _, errors, _ = fitted
    lut = list(_abs_errors(errors, "csynth", "LUT").values())
    ff = list(_abs_errors(errors, "csynth", "FF").values())
    bram = list(_abs_errors(errors, "csynth", "BRAM_18K").values())
    assert np.median(lut) <= 0.3 and np.percentile(lut, PERCENTILE) <= 0.8
    assert np.median(ff) <= 0.15 and np.percentile(ff, PERCENTILE) <= 0.6
    assert sum(err <= 0.35 for err in lut) >= 43 and sum(err <= 0.35 for err in ff) >= 48
    assert max(bram) <= 0.4  # the AutoEncoder (Resource strategy at reuse > 1) -37 %, all others <= 2 %
    assert sorted(bram)[-2] <= 0.05


def test_synth_target_rests_on_three_designs_and_says_so(fitted):
    cal, errors, _ = fitted
    synth = {name for name, e in errors.items() if "synth" in e}
    assert synth == {"dnd_mlp_98_20_1", "tutorial_svhn_pruned_cnn", "tutorial_svhn_quantized_pruned_cnn"}
    for key in ("DSP", "LUT", "FF", "BRAM_18K"):
        unc = cal.uncertainty["synth"].model_dump()[key]
        assert unc >= cal.uncertainty["csynth"].model_dump()[key]
        assert unc >= max(_abs_errors(errors, "synth", key).values()) - 1e-3
    assert "(2 with post-synthesis figures)" in cal.note  # the fit's ratios rest on 2 designs
    assert 0.4 < cal.synth_ratio.LUT < 0.6  # post-synthesis LUT about half the C-synthesis figure


def test_error_table_lists_every_design_once(fitted):
    cal, errors, excluded = fitted
    table = error_table(cal, errors, excluded)
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| design")]
    assert len(rows) == len(errors)
    assert all(name in table for name in excluded)
