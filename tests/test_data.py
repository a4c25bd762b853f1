"""Data stage: shapes, attributes and physics of the generated jets; determinism; --force; CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tests.conftest import CI_JETS_PER_CLASS, run_cli
from trigger.data import CLASS_NAMES, HLF_NAMES, generate_jets, load_dataset, read_attrs
from trigger.errors import TriggerError

pytestmark = pytest.mark.slow  # generates jets with Pythia 8 and FastJet

G, Q, W, Z, T = range(5)


@pytest.fixture(scope="module")
def jets(jets_file):
    """Every array of the session's CI jets file."""
    with h5py.File(jets_file, "r") as f:
        return {key: f[key][...] for key in f}


def _median(jets, key, label, column=None):
    values = jets[key] if column is None else jets[key][:, column]
    return float(np.median(values[jets["labels"] == label]))


def test_jets_file_shapes_and_attributes(jets_file, jets):
    n = 5 * CI_JETS_PER_CLASS
    assert jets["hlf"].shape == (n, 16) and jets["hlf"].dtype == np.float32
    assert jets["constituents"].shape == (n, 16, 3)
    assert jets["images"].shape == (n, 16, 16, 1)
    for key in ("jet_pt", "jet_eta", "jet_mass", "tau21", "tau32"):
        assert jets[key].shape == (n,)
    assert np.bincount(jets["labels"]).tolist() == [CI_JETS_PER_CLASS] * 5
    for key in ("hlf", "constituents", "images"):
        assert np.isfinite(jets[key]).all(), key
    attrs = read_attrs(jets_file)
    assert attrs["class_names"] == ["g", "q", "W", "Z", "t"] == CLASS_NAMES
    assert attrs["hlf_names"] == HLF_NAMES and len(HLF_NAMES) == 16
    assert attrs["seed"] == 1 and attrs["kind"] == "jets"
    assert {"pythia8mc", "fastjet", "numpy"} <= set(attrs["package_versions"])
    assert "HardQCD:gg2gg = on" in attrs["generator_settings"]["pythia_processes"]["g"]


def test_jet_selection_window(jets):
    assert jets["jet_pt"].min() >= 800 and jets["jet_pt"].max() <= 1200
    assert np.abs(jets["jet_eta"]).max() < 2
    # multiplicity column is the constituent count; the P hardest are zero-padded beyond it
    multiplicity = jets["hlf"][:, HLF_NAMES.index("multiplicity")]
    n_nonzero = (jets["constituents"][:, :, 0] > 0).sum(axis=1)
    assert np.array_equal(n_nonzero, np.minimum(multiplicity, 16))
    # constituents are ordered by pT and the image holds the pT fractions inside +-R
    pt_rel = jets["constituents"][:, :, 0]
    assert (np.diff(pt_rel, axis=1) <= 1e-6).all()
    # (scalar sum of constituent pT is a little above the jet's vector pT, so sums exceed 1 slightly)
    image_sum = jets["images"].sum(axis=(1, 2, 3))
    assert (image_sum < 1.1).all() and np.median(image_sum) > 0.9


def test_groomed_mass_peaks(jets):
    mass = HLF_NAMES.index("mass_mmdt")
    m_w, m_z, m_t = (_median(jets, "hlf", label, mass) for label in (W, Z, T))
    assert 70 < m_w < 90, m_w
    assert 80 < m_z < 100, m_z
    assert 150 < m_t < 185, m_t  # mMDT sometimes grooms away the b or a W prong: median below m_t
    assert m_z > m_w
    # QCD jets have no mass peak: most of their groomed mass is far below the W mass
    assert _median(jets, "hlf", Q, mass) < 50


def test_substructure_separates_classes(jets):
    tau21 = {label: _median(jets, "tau21", label) for label in range(5)}
    assert max(tau21[W], tau21[Z]) < min(tau21[Q], tau21[G]), tau21
    tau32 = {label: _median(jets, "tau32", label) for label in range(5)}
    assert tau32[T] == min(tau32.values()) and tau32[T] < 0.65, tau32
    # gluons radiate more than quarks (C_A > C_F): more constituents
    mult = HLF_NAMES.index("multiplicity")
    assert _median(jets, "hlf", G, mult) > 1.3 * _median(jets, "hlf", Q, mult)


def test_load_dataset_views_and_errors(jets_file, tmp_path):
    hlf = load_dataset(jets_file, "hlf")
    assert hlf.kind == "jets" and hlf.class_names == CLASS_NAMES
    assert hlf.x.dtype == np.float32 and hlf.y.dtype == np.int64 and hlf.x.shape[1] == 16
    assert load_dataset(jets_file, "images").x.shape[1:] == (16, 16, 1)
    with pytest.raises(TriggerError, match="features"):
        load_dataset(jets_file, "features")
    with pytest.raises(TriggerError, match="not found"):
        load_dataset(tmp_path / "missing.h5", "hlf")
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not an hdf5 file")
    with pytest.raises(TriggerError, match="cannot read"):
        load_dataset(corrupt, "hlf")


def test_same_seed_same_arrays_and_workers_do_not_matter(tmp_path):
    """A tiny sample twice with one seed (in-process and with 2 workers via the CLI) is identical."""
    first = generate_jets(tmp_path / "a.h5", n_per_class=4, n_particles=8, image_size=8, seed=3)
    result = run_cli("data", "jets", "--n-per-class", "4", "--particles", "8", "--image-size", "8",
                     "--seed", "3", "--workers", "2", "--out", tmp_path / "b.h5")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "FastJet" not in result.stdout
    with h5py.File(first, "r") as a, h5py.File(tmp_path / "b.h5", "r") as b:
        assert set(a) == set(b)
        assert a["constituents"].shape == (20, 8, 3) and a["images"].shape == (20, 8, 8, 1)
        for key in a:
            assert np.array_equal(a[key][...], b[key][...]), key
    other = generate_jets(tmp_path / "c.h5", n_per_class=4, n_particles=8, image_size=8, seed=4)
    with h5py.File(first, "r") as a, h5py.File(other, "r") as c:
        assert not np.array_equal(a["hlf"][...], c["hlf"][...])


def test_existing_output_refused_without_force(tmp_path):
    out = tmp_path / "jets.h5"
    out.write_bytes(b"precious")
    with pytest.raises(TriggerError, match="--force"):
        generate_jets(out, n_per_class=2)
    result = run_cli("data", "jets", "--n-per-class", "2", "--out", out)
    assert result.returncode == 2 and "--force" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("kwargs, message", [
    ({"n_per_class": 0}, "--n-per-class"),
    ({"n_per_class": 2, "n_particles": 33}, "--particles"),
    ({"n_per_class": 2, "workers": 0}, "--workers"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, kwargs, message):
    with pytest.raises(TriggerError, match=message):
        generate_jets(tmp_path / "x.h5", **kwargs)
    assert not (tmp_path / "x.h5").exists()
