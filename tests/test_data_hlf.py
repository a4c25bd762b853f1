"""The 16 high-level features against a brute-force numpy computation of their definitions."""

from __future__ import annotations

import itertools

import numpy as np

from trigger.data.jets import HLF_NAMES, _jet_features


def _toy_jets(rng, n_jets=3):
    """Massless two-prong jets whose first C/A split passes mMDT (z > 0.1), so nothing is groomed."""
    jets = []
    for _ in range(n_jets):
        pt, eta, phi = [], [], []
        for centre, share in (((0.0, 0.0), 0.6), ((0.3, 0.25), 0.4)):
            n = int(rng.integers(3, 6))
            w = rng.uniform(0.5, 1.0, n)
            pt += list(500 * share * w / w.sum())
            eta += list(centre[0] + rng.normal(0, 0.03, n))
            phi += list(centre[1] + rng.normal(0, 0.03, n))
        jets.append((np.array(pt), np.array(eta), np.array(phi)))
    return jets


def _ecf(pt, eta, phi, npoint, angles, beta):
    """Normalised generalised ECF: sum over npoint-tuples of prod z times the `angles` smallest
    pairwise Delta R^beta (all pairs if angles == -1)."""
    z = pt / pt.sum()
    total = 0.0
    for combo in itertools.combinations(range(len(pt)), npoint):
        dr = sorted(np.hypot(eta[i] - eta[j], phi[i] - phi[j]) ** beta
                    for i, j in itertools.combinations(combo, 2))
        total += np.prod(z[list(combo)]) * np.prod(dr if angles == -1 else dr[:angles])
    return total


def test_hlf_match_their_definitions():
    import awkward as ak
    import vector

    vector.register_awkward()
    toy = _toy_jets(np.random.default_rng(0))
    constituents = ak.Array([
        [{"px": p * np.cos(f), "py": p * np.sin(f), "pz": p * np.sinh(e), "E": p * np.cosh(e)}
         for p, e, f in zip(*jet)] for jet in toy], with_name="Momentum4D")
    jet = ak.zip({k: ak.sum(constituents[k], axis=1) for k in ("px", "py", "pz", "E")}, with_name="Momentum4D")
    hlf = _jet_features(jet, constituents, n_particles=16, image_size=16)["hlf"]
    for row, (pt, eta, phi) in zip(hlf, toy):
        f = dict(zip(HLF_NAMES, row.astype(np.float64)))
        e2 = {b: _ecf(pt, eta, phi, 2, 1, b) for b in (0, 1, 2)}
        e3 = {b: _ecf(pt, eta, phi, 3, -1, b) for b in (1, 2)}
        expected = {
            "c1_b0_mmdt": e2[0], "c1_b1_mmdt": e2[1], "c1_b2_mmdt": e2[2],
            "c2_b1_mmdt": e3[1] / e2[1] ** 2, "c2_b2_mmdt": e3[2] / e2[2] ** 2,
            "d2_b1_mmdt": e3[1] / e2[1] ** 3, "d2_b2_mmdt": e3[2] / e2[2] ** 3,
            "d2_a1_b1_mmdt": e3[1] / e2[1] ** 3, "d2_a1_b2_mmdt": e3[1] / e2[2] ** 1.5,
            "m2_b1_mmdt": _ecf(pt, eta, phi, 3, 1, 1) / e2[1], "m2_b2_mmdt": _ecf(pt, eta, phi, 3, 1, 2) / e2[2],
            "n2_b1_mmdt": _ecf(pt, eta, phi, 3, 2, 1) / e2[1] ** 2,
            "n2_b2_mmdt": _ecf(pt, eta, phi, 3, 2, 2) / e2[2] ** 2,
            "zlogz": np.sum(pt / pt.sum() * np.log(pt / pt.sum())),
            "multiplicity": len(pt),
        }
        for name, value in expected.items():
            # float32 storage; FastJet's Delta R is in rapidity = eta for massless particles
            assert np.isclose(f[name], value, rtol=2e-3, atol=1e-7), (name, f[name], value)
        # nothing groomed away: the groomed mass is the full jet mass
        px, py, pz, e = (np.sum(c) for c in (pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)))
        assert np.isclose(f["mass_mmdt"], np.sqrt(e * e - px * px - py * py - pz * pz), rtol=1e-3)


def test_matched_jets_carry_their_own_constituents():
    """The constituents handed to the substructure code sum to the selected jet's four-momentum."""
    import awkward as ak
    import vector

    from trigger.data.common import make_pythia, quiet_stdout
    from trigger.data.jets import COMMON_SETTINGS, PROCESS_SETTINGS, _select_jets

    vector.register_awkward()
    with quiet_stdout():
        pythia = make_pythia(COMMON_SETTINGS + PROCESS_SETTINGS["q"], 9)
        jet, constituents = _select_jets(pythia.nextBatch(15), "q")
    assert len(jet) > 5
    for field in ("px", "py", "pz", "E"):
        summed = ak.to_numpy(ak.sum(constituents[field], axis=1))
        assert np.allclose(summed, ak.to_numpy(jet[field]), rtol=1e-9, atol=1e-6), field
    assert (ak.to_numpy(jet.pt) >= 800).all() and (np.abs(ak.to_numpy(jet.eta)) < 2).all()
