"""Level-1 anomaly-detection events like the CMS ADC2021 data set (Govorkova et al., 2021).

Each event is 19 objects x (pT, eta, phi) = 57 inputs: MET, up to 4 electrons, 4 muons and 10
jets, each group ordered by pT and zero-padded. Pythia 8 generates a Standard-Model mix (W -> l nu,
QCD multijet, Z -> ll, ttbar, in ADC2021's proportions) and four BSM signals; a simple L1 response
(acceptance, pT smearing, lepton isolation, anti-kT R=0.4 jets, MET with noise) turns the particles
into trigger objects, and ADC2021's single-lepton filter (an isolated e or mu with pT > 23 GeV) is
applied. QCD cannot pass that filter at a usable rate (0 of 5000 `HardQCD:all` events with
pT-hat > 30 GeV through this L1 response, and 0 of 400 b/c dijet events with pT-hat > 80 GeV:
leptons from heavy-flavour decays are not isolated), so QCD events are kept *without* the filter: they carry their ADC2021 share of the background, their
``passes_lepton_filter`` flag says which (almost none) would pass, and users who want a strictly
filtered sample drop them with ``background_process``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trigger.data import shards
from trigger.data.common import (FORMAT_VERSION, check_execution, check_output_free, check_space_for,
                                 chunk_sizes, make_pythia, package_versions, task_seed, validate_count)
from trigger.data.shards import Plan

BACKGROUND_NAMES = ["W->lnu", "QCD", "Z->ll", "ttbar"]
BACKGROUND_FRACTIONS = [0.592, 0.338, 0.067, 0.003]  # ADC2021 composition after its filter
SIGNAL_NAMES = ["A->4l", "LQ->btau", "h0->tautau", "H+->taunu"]
N_ELECTRONS, N_MUONS, N_JETS = 4, 4, 10
FEATURE_OBJECTS = ["MET"] + [f"e{i}" for i in range(N_ELECTRONS)] + [f"mu{i}" for i in range(N_MUONS)] \
    + [f"jet{i}" for i in range(N_JETS)]
FEATURE_NAMES = [f"{obj}_{var}" for obj in FEATURE_OBJECTS for var in ("pt", "eta", "phi")]
N_FEATURES = len(FEATURE_NAMES)  # 57

COMMON_SETTINGS = ["Beams:eCM = 13000"]
PROCESS_SETTINGS = {
    "W->lnu": ["WeakSingleBoson:ffbar2W = on", "24:onMode = off", "24:onIfAny = 11 13 15"],
    "QCD": ["HardQCD:all = on", "PhaseSpace:pTHatMin = 30"],
    "Z->ll": ["WeakSingleBoson:ffbar2gmZ = on", "WeakZ0:gmZmode = 2", "23:onMode = off",
              "23:onIfAny = 11 13 15"],
    "ttbar": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"],
    # A neutral scalar of 50 GeV (Pythia's H2 with its mass moved) -> Z(*) Z(*) -> 4 leptons.
    "A->4l": ["Higgs:useBSM = on", "HiggsBSM:gg2H2 = on", "35:m0 = 50", "35:onMode = off",
              "35:onIfMatch = 23 23", "23:onMode = off", "23:onIfAny = 11 13"],
    # Pair-produced 80 GeV leptoquarks, each -> b tau (charge 2/3 so that b tau+ conserves charge).
    "LQ->btau": ["LeptoQuark:gg2LQLQbar = on", "LeptoQuark:qqbar2LQLQbar = on", "42:m0 = 80",
                 "42:chargeType = 2", "42:oneChannel = 1 1.0 0 5 -15"],
    # A 60 GeV neutral scalar from gluon fusion (Pythia's SM Higgs with its mass moved) -> tau tau.
    "h0->tautau": ["HiggsSM:gg2H = on", "25:m0 = 60", "25:onMode = off", "25:onIfMatch = 15 -15"],
    # A light (60 GeV) charged Higgs from top decays, t -> H+ b, H+ -> tau nu; the tbar -> W b.
    "H+->taunu": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "Higgs:useBSM = on", "37:m0 = 60",
                  "37:onMode = off", "37:onIfMatch = 15 16", "6:onMode = off", "6:onPosIfAny = 37",
                  "6:onNegIfAny = 24"],
}
PROCESS_NAMES = BACKGROUND_NAMES + SIGNAL_NAMES
UNFILTERED = {"QCD"}

# --- simple L1 response ----------------------------------------------------------------------
CALO_ABS_ETA = 5.0                      # particles beyond this are lost (they add to MET)
ELECTRON_PT, ELECTRON_ABS_ETA = 3.0, 3.0
MUON_PT, MUON_ABS_ETA = 2.0, 2.1
JET_R, JET_PT, JET_ABS_ETA = 0.4, 15.0, 4.0
ISOLATION_DR, ISOLATION_MAX = 0.3, 0.25  # sum pT of other visible particles in the cone / lepton pT
FILTER_LEPTON_PT = 23.0
# Relative pT resolutions sigma/pT = sqrt((a/sqrt(pT))^2 + b^2), pT in GeV.
RESOLUTION = {"electron": (0.15, 0.02), "muon": (0.0, 0.10), "jet": (1.0, 0.05)}
MET_NOISE = 0.5                          # GeV^(1/2): Gaussian noise per MET component, x sqrt(sum ET)
CHUNK_EVENTS = 500
MAX_BATCH = 500


def generator_settings() -> dict:
    """Everything that defines the generated events (stored in the file's attributes)."""
    return {
        "pythia_common": COMMON_SETTINGS + ["Print:quiet = on", "Next:numberCount = 0"],
        "pythia_processes": PROCESS_SETTINGS,
        "background_fractions": dict(zip(BACKGROUND_NAMES, BACKGROUND_FRACTIONS)),
        "acceptance": {"calorimeter_abs_eta": CALO_ABS_ETA,
                       "electron": f"pT > {ELECTRON_PT:g} GeV, |eta| < {ELECTRON_ABS_ETA:g}",
                       "muon": f"pT > {MUON_PT:g} GeV, |eta| < {MUON_ABS_ETA:g}",
                       "jet": f"anti-kT R={JET_R}, pT > {JET_PT:g} GeV, |eta| < {JET_ABS_ETA:g}"},
        "isolation": (f"e/mu: sum pT of other visible particles within Delta R < {ISOLATION_DR} "
                      f"below {ISOLATION_MAX} x lepton pT; isolated leptons are removed from jet inputs"),
        "resolution": {k: f"sigma/pT = sqrt(({a}/sqrt(pT))^2 + {b}^2)" for k, (a, b) in RESOLUTION.items()},
        "met": ("-(vector sum of visible particles with |eta| < 5) minus the smearing of jets and "
                f"leptons, plus Gaussian noise {MET_NOISE} x sqrt(sum ET) GeV per component"),
        "filter": f">= 1 isolated electron or muon with pT > {FILTER_LEPTON_PT:g} GeV (after smearing)",
        "qcd_treatment": ("QCD (HardQCD:all, pT-hat > 30 GeV) passes the single-lepton filter at a rate "
                          "too small to simulate (leptons from heavy-flavour decays are not isolated), so "
                          "QCD events are kept WITHOUT the filter at their ADC2021 share of the background; "
                          "dataset passes_lepton_filter marks the (rare) ones that pass"),
        "pileup": "none",
        "chunk_events": CHUNK_EVENTS,
    }


def _resolution(kind: str, pt: np.ndarray) -> np.ndarray:
    a, b = RESOLUTION[kind]
    return np.sqrt(a * a / np.maximum(pt, 1e-3) + b * b)


def _pad(pt, eta, phi, n: int) -> np.ndarray:
    """(events, n, 3) array of the n hardest objects, zero-padded (inputs already sorted by pT)."""
    import awkward as ak

    columns = [ak.to_numpy(ak.fill_none(ak.pad_none(v, n, axis=1, clip=True), 0.0)) for v in (pt, eta, phi)]
    return np.stack(columns, axis=-1)


def _l1_events(events, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Trigger objects for a batch of Pythia events: (features (N,57), passes_lepton_filter (N,))."""
    import awkward as ak
    import fastjet

    prt = events.prt
    aid = abs(prt.id)
    visible = prt[(prt.status > 0) & (aid != 12) & (aid != 14) & (aid != 16)]
    visible = visible[abs(visible.p.eta) < CALO_ABS_ETA]
    p = visible.p
    vid = abs(visible.id)
    n_events = len(visible)
    counts = ak.to_numpy(ak.num(visible.id, axis=1))
    offsets = np.concatenate([[0], np.cumsum(counts)])

    # --- leptons: acceptance (before smearing: the L1 object must exist), isolation ---------------
    candidate = (((vid == 11) & (abs(p.eta) < ELECTRON_ABS_ETA)) | ((vid == 13) & (abs(p.eta) < MUON_ABS_ETA))) \
        & (p.pt > 1.0)
    local = ak.local_index(visible.id, axis=1)
    cand_index = local[candidate]
    cand = visible[candidate]
    pairs = ak.cartesian({"l": cand.p, "o": p}, axis=1, nested=True)
    in_cone = pairs.l.deltaR(pairs.o) < ISOLATION_DR
    cone_pt = ak.sum(ak.where(in_cone, pairs.o.pt, 0.0), axis=2) - cand.p.pt  # minus itself
    isolated = cone_pt < ISOLATION_MAX * cand.p.pt
    iso_flat = ak.to_numpy(ak.flatten(cand_index[isolated])) + np.repeat(
        offsets[:-1], ak.to_numpy(ak.sum(isolated, axis=1)))
    is_isolated_lepton = np.zeros(offsets[-1], dtype=bool)
    is_isolated_lepton[iso_flat] = True
    is_isolated_lepton = ak.unflatten(is_isolated_lepton, counts)

    leptons = visible[is_isolated_lepton]
    lep_pt_true = leptons.p.pt
    flat_true = ak.to_numpy(ak.flatten(lep_pt_true))
    flat_is_e = ak.to_numpy(ak.flatten(abs(leptons.id) == 11))
    sigma = np.where(flat_is_e, _resolution("electron", flat_true), _resolution("muon", flat_true))
    flat_smeared = np.maximum(flat_true * (1.0 + sigma * rng.standard_normal(len(flat_true))), 0.0)
    lep_pt = ak.unflatten(flat_smeared, ak.num(lep_pt_true))
    lep_eta, lep_phi = leptons.p.eta, leptons.p.phi
    is_e = abs(leptons.id) == 11
    keep_e = is_e & (lep_pt > ELECTRON_PT)
    keep_mu = (~is_e) & (lep_pt > MUON_PT)

    # --- jets: anti-kT R=0.4 on visible particles except isolated leptons -------------------------
    hadrons = p[~is_isolated_lepton]
    inputs = ak.zip({"px": hadrons.px, "py": hadrons.py, "pz": hadrons.pz, "E": hadrons.e},
                    with_name="Momentum4D")
    jets = ak.with_name(fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
                        .inclusive_jets(min_pt=0.5 * JET_PT), "Momentum4D")
    jet_true = ak.to_numpy(ak.flatten(jets.pt))
    jet_smeared = np.maximum(jet_true * (1.0 + _resolution("jet", jet_true) * rng.standard_normal(len(jet_true))), 0.0)
    jet_pt = ak.unflatten(jet_smeared, ak.num(jets.pt))
    keep_jet = (jet_pt > JET_PT) & (abs(jets.eta) < JET_ABS_ETA)

    # --- MET: invisible + lost particles, object mismeasurement, noise ---------------------------
    met_x = -ak.to_numpy(ak.sum(p.px, axis=1))
    met_y = -ak.to_numpy(ak.sum(p.py, axis=1))
    for d_pt, phi in ((jet_pt - jets.pt, jets.phi), (lep_pt - lep_pt_true, lep_phi)):
        met_x -= ak.to_numpy(ak.sum(d_pt * np.cos(phi), axis=1))
        met_y -= ak.to_numpy(ak.sum(d_pt * np.sin(phi), axis=1))
    sum_et = ak.to_numpy(ak.sum(p.pt, axis=1))
    noise = MET_NOISE * np.sqrt(sum_et)[:, None] * rng.standard_normal((n_events, 2))
    met_x += noise[:, 0]
    met_y += noise[:, 1]
    met = np.stack([np.hypot(met_x, met_y), np.zeros(n_events), np.arctan2(met_y, met_x)], axis=-1)[:, None]

    def ordered(pt, eta, phi, keep, n):
        pt, eta, phi = pt[keep], eta[keep], phi[keep]
        order = ak.argsort(pt, axis=1, ascending=False)
        return _pad(pt[order], eta[order], phi[order], n)

    electrons = ordered(lep_pt, lep_eta, lep_phi, keep_e, N_ELECTRONS)
    muons = ordered(lep_pt, lep_eta, lep_phi, keep_mu, N_MUONS)
    jet_objects = ordered(jet_pt, jets.eta, jets.phi, keep_jet, N_JETS)
    features = np.concatenate([met, electrons, muons, jet_objects], axis=1).reshape(n_events, N_FEATURES)
    passes = ak.to_numpy(ak.any((keep_e | keep_mu) & (lep_pt > FILTER_LEPTON_PT), axis=1))
    return features.astype(np.float32), passes


def _ad_task(task: tuple[int, int, int]) -> tuple[int, dict[str, np.ndarray]]:
    """Generate exactly ``n_wanted`` accepted events of one process with one seed (worker process)."""
    import vector

    vector.register_awkward()
    process_index, n_wanted, seed = task
    name = PROCESS_NAMES[process_index]
    apply_filter = name not in UNFILTERED
    pythia = make_pythia(COMMON_SETTINGS + PROCESS_SETTINGS[name], seed)
    rng = np.random.default_rng(seed)
    features, flags = [], []
    accepted, n_events = 0, 0
    while accepted < n_wanted:
        # Batch size from this task's own running filter efficiency (deterministic for the seed).
        if not apply_filter:
            batch = int(min(n_wanted - accepted, MAX_BATCH))
        else:
            efficiency = max((accepted + 1) / (n_events + 1), 0.01) if n_events else 0.3
            batch = int(np.clip(1.2 * (n_wanted - accepted) / efficiency, 20, MAX_BATCH))
        if n_events > 2000 * n_wanted + 50_000:
            raise RuntimeError(f"{name}: only {accepted} events pass the filter out of {n_events}")
        x, passes = _l1_events(pythia.nextBatch(batch), rng)
        keep = passes if apply_filter else np.ones(len(x), dtype=bool)
        kept = np.flatnonzero(keep)[: n_wanted - accepted]
        # count events only up to the last one kept, so events_generated gives the filter efficiency
        n_events += int(kept[-1]) + 1 if accepted + len(kept) == n_wanted else len(x)
        features.append(x[kept])
        flags.append(passes[kept])
        accepted += len(kept)
    n_bkg = len(BACKGROUND_NAMES)
    return n_wanted, {"features": np.concatenate(features),
                      "passes_lepton_filter": np.concatenate(flags),
                      "labels": np.full(n_wanted, 0 if process_index < n_bkg else process_index - n_bkg + 1,
                                        dtype=np.int64),
                      "background_process": np.full(n_wanted, process_index if process_index < n_bkg else -1,
                                                    dtype=np.int64),
                      "n_events": np.array([n_events], dtype=np.int64)}


#: About how many bytes one event takes in the output file, with a margin: 57 float32 features
#: (245 bytes per event with the per-event integers) of which gzip removes the zeros of absent
#: objects; measured 70 bytes per event (2800 events).
AD_BYTES = 100
#: Bytes of one event in a shard and, before compression, in the merged file.
SHARD_AD_BYTES = 4 * N_FEATURES + 1 + 8 + 8


def background_counts(n_background: int) -> list[int]:
    """Events per background process: ADC2021 fractions, largest-remainder rounding (sums exactly)."""
    exact = np.asarray(BACKGROUND_FRACTIONS) / sum(BACKGROUND_FRACTIONS) * n_background
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n_background - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def generate_ad(out: str | os.PathLike, n_background: int, n_signal: int, seed: int = 42,
                workers: int | None = None, force: bool = False, *, scheduler: str | None = None,
                chunk_size: int | None = None) -> Path:
    """Generate ``n_background`` SM events and ``n_signal`` events of each BSM signal into HDF5 ``out``.

    Datasets: ``features`` (N,57; attribute ``feature_names``), ``labels`` (0 = SM background,
    k = k-th of attribute ``signal_names``), ``background_process`` (index into attribute
    ``background_names``, -1 for signal events), ``passes_lepton_filter``. Rows are shuffled with
    ``seed``. Work is cut into units of at most ``CHUNK_EVENTS`` accepted events, each seeded from
    (seed, process, unit), grouped into chunks of about ``chunk_size`` events that run on ``workers``
    local processes or the workers of the Dask ``scheduler`` (:mod:`trigger.data.shards`): the
    output depends only on the arguments, and a rerun resumes from the chunks kept in ``OUT.parts``.
    Refuses an existing ``out`` unless ``force``. Returns the output path.
    """
    validate_count("--n-background", n_background)
    validate_count("--n-signal", n_signal)
    check_execution(workers, scheduler, chunk_size)
    check_output_free(out, force)
    wanted = background_counts(n_background) + [n_signal] * len(SIGNAL_NAMES)
    check_space_for(out, sum(wanted), AD_BYTES + 2.02 * SHARD_AD_BYTES, "events")
    plan = Plan(command="trigger data ad", seed=int(seed), unit_fn=_ad_task, units=[], unit_rows=[], unit_group=[],
                group_names=PROCESS_NAMES, noun="events", default_chunk_rows=CHUNK_EVENTS,
                arguments={"--n-background": int(n_background), "--n-signal": int(n_signal), "--seed": int(seed)})
    for process_index, n_process in enumerate(wanted):
        for unit_index, size in enumerate(chunk_sizes(n_process, CHUNK_EVENTS)):
            plan.units.append((process_index, size, task_seed(seed, 2, process_index, unit_index)))
            plan.unit_rows.append(size)
            plan.unit_group.append(PROCESS_NAMES[process_index])
    n_accepted = dict(zip(PROCESS_NAMES, wanted))
    plan.attrs = {
        "kind": "ad",
        "format_version": FORMAT_VERSION,
        "signal_names": SIGNAL_NAMES,
        "class_names": ["SM background", *SIGNAL_NAMES],
        "background_names": BACKGROUND_NAMES,
        "feature_names": FEATURE_NAMES,
        "n_background": int(n_background),
        "n_signal": int(n_signal),
        "seed": int(seed),
        "events_kept": n_accepted,
        "qcd_treatment": generator_settings()["qcd_treatment"],
        "generator_settings": generator_settings(),
        "package_versions": package_versions(),
    }
    plan.derived_attrs = lambda generated: {"filter_efficiency": {
        name: n_accepted[name] / max(generated[name], 1) for name in PROCESS_NAMES if name not in UNFILTERED}}
    return shards.generate(out, plan, workers=workers, scheduler=scheduler, chunk_size=chunk_size, force=force)
