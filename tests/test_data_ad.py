"""Data stage, anomaly-detection events: shapes, attributes, filter, physics of the signals, CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tests.conftest import CI_AD_BACKGROUND, CI_AD_SIGNAL, run_cli
from trigger.data import generate_ad, load_dataset, read_attrs
from trigger.data.ad import BACKGROUND_NAMES, FEATURE_NAMES, SIGNAL_NAMES, background_counts
from trigger.errors import TriggerError

pytestmark = pytest.mark.slow  # generates events with Pythia 8

MET, ELECTRON_PT, MUON_PT, JET_PT = 0, slice(3, 15, 3), slice(15, 27, 3), slice(27, 57, 3)


@pytest.fixture(scope="module")
def ad(ad_file):
    with h5py.File(ad_file, "r") as f:
        return {key: f[key][...] for key in f}


def _groups(ad):
    """Boolean masks: the filtered SM background (W, Z, ttbar) and each signal."""
    process = ad["background_process"]
    filtered_background = (ad["labels"] == 0) & (process != BACKGROUND_NAMES.index("QCD"))
    return filtered_background, {name: ad["labels"] == k for k, name in enumerate(SIGNAL_NAMES, start=1)}


def test_ad_file_shapes_and_attributes(ad_file, ad):
    n = CI_AD_BACKGROUND + 4 * CI_AD_SIGNAL
    assert ad["features"].shape == (n, 57) and ad["features"].dtype == np.float32
    assert np.isfinite(ad["features"]).all()
    assert np.bincount(ad["labels"]).tolist() == [CI_AD_BACKGROUND] + [CI_AD_SIGNAL] * 4
    process = ad["background_process"]
    assert (process[ad["labels"] > 0] == -1).all()
    assert np.bincount(process[ad["labels"] == 0]).tolist() == background_counts(CI_AD_BACKGROUND)
    attrs = read_attrs(ad_file)
    assert attrs["signal_names"] == SIGNAL_NAMES and attrs["background_names"] == BACKGROUND_NAMES
    assert attrs["feature_names"] == FEATURE_NAMES and len(FEATURE_NAMES) == 57
    assert "without the filter" in attrs["qcd_treatment"].lower()
    assert attrs["seed"] == 1 and {"pythia8mc", "fastjet"} <= set(attrs["package_versions"])
    data = load_dataset(ad_file, "features")
    assert data.kind == "ad" and data.class_names == ["SM background", *SIGNAL_NAMES]
    with pytest.raises(TriggerError, match="hlf"):
        load_dataset(ad_file, "hlf")


def test_background_mix_follows_adc2021():
    assert background_counts(1000) == [592, 338, 67, 3]
    assert sum(background_counts(12345)) == 12345


def test_objects_are_ordered_padded_and_in_acceptance(ad):
    x = ad["features"]
    for columns, n, max_eta in ((ELECTRON_PT, 4, 3.0), (MUON_PT, 4, 2.1), (JET_PT, 10, 4.0)):
        pt = x[:, columns]
        assert (np.diff(pt, axis=1) <= 0).all()                    # ordered by pT, zeros last
        eta = x[:, columns.start + 1:columns.stop:3]
        assert (np.abs(eta) < max_eta).all() and (eta[pt == 0] == 0).all()
    assert (x[:, JET_PT][x[:, JET_PT] > 0] > 15).all()
    assert (x[:, 1] == 0).all() and (np.abs(x[:, 2]) <= np.pi).all()  # MET eta slot, MET phi


def test_single_lepton_filter(ad):
    x = ad["features"]
    leading_lepton = np.maximum(x[:, 3], x[:, 15])
    passes = ad["passes_lepton_filter"]
    assert np.array_equal(passes, leading_lepton > 23)
    qcd = ad["background_process"] == BACKGROUND_NAMES.index("QCD")
    assert passes[~qcd].all()               # every non-QCD event passed the filter
    assert passes[qcd].mean() < 0.02        # QCD essentially never passes it (kept unfiltered)


def test_signals_differ_from_background_as_physics_says(ad):
    x = ad["features"]
    background, signal = _groups(ad)
    n_leptons = (x[:, ELECTRON_PT] > 0).sum(axis=1) + (x[:, MUON_PT] > 0).sum(axis=1)
    n_jets = (x[:, JET_PT] > 0).sum(axis=1)
    ht = x[:, JET_PT].sum(axis=1)
    met = x[:, MET]
    # A -> 4 leptons: many more leptons than single-W-dominated background
    assert n_leptons[signal["A->4l"]].mean() > n_leptons[background].mean() + 0.8
    # pair-produced leptoquarks -> b tau b tau: hadronic activity
    assert np.median(ht[signal["LQ->btau"]]) > 2 * np.median(ht[background]) + 30
    # h0 -> tau tau: the second tau (and ISR in gluon fusion) gives more jets than W/Z + nothing
    assert n_jets[signal["h0->tautau"]].mean() > n_jets[background].mean() + 0.5
    # H+ -> tau nu from top decays: neutrinos and a ttbar-like jet multiplicity
    assert np.median(met[signal["H+->taunu"]]) > 1.3 * np.median(met[background])
    assert n_jets[signal["H+->taunu"]].mean() > n_jets[background].mean() + 2
    # W -> l nu has real MET, Z -> ll does not
    process = ad["background_process"]
    assert np.median(met[process == 0]) > np.median(met[process == 2]) + 10


def test_ad_cli_same_seed_same_arrays_and_force(tmp_path):
    out = tmp_path / "ad.h5"
    args = ("data", "ad", "--n-background", "20", "--n-signal", "3", "--seed", "5", "--out", out)
    result = run_cli(*args, "--workers", "2")
    assert result.returncode == 0, result.stderr
    again = generate_ad(tmp_path / "again.h5", n_background=20, n_signal=3, seed=5, workers=1)
    with h5py.File(out, "r") as a, h5py.File(again, "r") as b:
        assert a["features"].shape == (32, 57)
        for key in a:
            assert np.array_equal(a[key][...], b[key][...]), key
    before = out.read_bytes()
    refused = run_cli(*args)
    assert refused.returncode == 2 and "--force" in refused.stderr and out.read_bytes() == before
    with pytest.raises(TriggerError, match="--n-signal"):
        generate_ad(tmp_path / "x.h5", n_background=10, n_signal=0)
