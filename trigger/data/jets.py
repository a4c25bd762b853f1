"""Five-class boosted-jet data set (g, q, W, Z, t) like the hls4ml LHC jet data set.

Pythia 8 generates pp collisions at 13 TeV in a pT-hat window around 1 TeV; FastJet clusters the
visible final-state particles with anti-kT R=0.8; jets with pT 800-1200 GeV and |eta| < 2 that lie
within Delta R < 0.6 of the class's truth particle (the outgoing hard parton for g/q, the last copy
of the W, Z or top otherwise) are kept. Everything per particle runs in awkward arrays and in
FastJet's C++ (clustering, mMDT grooming, N-subjettiness, energy correlators): no Python loop
touches a particle.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trigger.data import shards
from trigger.data.common import (FORMAT_VERSION, check_output_free, check_space_for, chunk_sizes,
                                 check_execution, make_pythia, package_versions, task_seed,
                                 validate_count)
from trigger.data.shards import Plan
from trigger.errors import TriggerError

CLASS_NAMES = ["g", "q", "W", "Z", "t"]
HLF_NAMES = ["zlogz", "c1_b0_mmdt", "c1_b1_mmdt", "c1_b2_mmdt", "c2_b1_mmdt", "c2_b2_mmdt",
             "d2_b1_mmdt", "d2_b2_mmdt", "d2_a1_b1_mmdt", "d2_a1_b2_mmdt", "m2_b1_mmdt",
             "m2_b2_mmdt", "n2_b1_mmdt", "n2_b2_mmdt", "mass_mmdt", "multiplicity"]
CONSTITUENT_NAMES = ["pt_rel", "deta", "dphi"]
MAX_PARTICLES = 32

# Event generation. The pT-hat window brackets the 800-1200 GeV jet window (jets lose some pT
# out of the cone, so it sits slightly high).
COMMON_SETTINGS = ["Beams:eCM = 13000", "PhaseSpace:pTHatMin = 850", "PhaseSpace:pTHatMax = 1250"]
HADRONIC_W = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
HADRONIC_Z = ["23:onMode = off", "23:onIfAny = 1 2 3 4 5"]
PROCESS_SETTINGS = {
    "g": ["HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"],
    "q": ["HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on"],
    "W": ["WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", *HADRONIC_W],
    "Z": ["WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on",
          "WeakZ0:gmZmode = 2", *HADRONIC_Z],
    "t": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *HADRONIC_W],
}
# Jet definition and selection.
JET_R = 0.8
JET_PT_MIN, JET_PT_MAX, JET_ABS_ETA_MAX = 800.0, 1200.0, 2.0
MATCH_DR = 0.6
# mMDT = soft drop with beta = 0 on the C/A-reclustered jet.
MMDT_ZCUT, MMDT_BETA = 0.1, 0.0
# Jets per generation unit: units are seeded from (seed, class, unit), so the output does not
# depend on --workers or --chunk-size (a chunk is whole units); small enough that two workers share
# the load of a CI sample.
CHUNK_JETS = 200
EVENTS_PER_BATCH = 100


def generator_settings() -> dict:
    """Everything that defines the generated jets (stored in the file's attributes)."""
    return {
        "pythia_common": COMMON_SETTINGS + ["Print:quiet = on", "Next:numberCount = 0"],
        "pythia_processes": PROCESS_SETTINGS,
        "visible_particles": "final state (status > 0) except neutrinos (|id| 12, 14, 16)",
        "jet_algorithm": f"anti-kT R={JET_R}, E-scheme, FastJet",
        "jet_selection": f"{JET_PT_MIN:g} <= pT <= {JET_PT_MAX:g} GeV, |eta| < {JET_ABS_ETA_MAX:g}",
        "truth_match": (f"Delta R(jet, truth) < {MATCH_DR}; truth = outgoing hard parton (status -23; "
                        "g: id 21, q: |id| 1-4) or last copy of W (24), Z (23), t (6); the nearest "
                        "jet to each truth particle, so an event can give two jets"),
        "grooming": f"mMDT: soft drop beta={MMDT_BETA}, z_cut={MMDT_ZCUT}, R0={JET_R} on C/A reclustering",
        "nsubjettiness": "beta=1, R0=0.8, OnePass_KT_Axes, NormalizedMeasure (ungroomed jet)",
        "energy_correlators": ("fjcontrib EnergyCorrelator(Generalized) on the mMDT jet, pT_R measure; "
                               "c1=e2, c2=e3/e2^2, d2=e3/e2^3, d2_a1_bB=e3^(1)/(e2^(B))^(3/B), "
                               "m2=1e3/1e2, n2=2e3/(1e2)^2"),
        "zlogz_multiplicity": "on the ungroomed jet constituents, z = pT_i / sum pT",
        "chunk_jets": CHUNK_JETS,
    }


def _truth_mask(prt, label: str):
    """Per-event mask of the truth particles that define class ``label``."""
    import awkward as ak

    ids = prt.id
    aid = abs(ids)
    if label in ("g", "q"):
        outgoing = prt.status == -23  # outgoing partons of the hardest subprocess
        return outgoing & ((aid == 21) if label == "g" else ((aid >= 1) & (aid <= 4)))
    pdg = {"W": 24, "Z": 23, "t": 6}[label]
    # The last copy in the event record: its first daughter is not the same particle again.
    daughter_id = ids[ak.where(prt.daughter1 > 0, prt.daughter1, 0)]
    return (aid == pdg) & (daughter_id != ids)


def _select_jets(events, label: str):
    """Cluster visible particles and return (matched jets, their constituents), flat over events."""
    import awkward as ak
    import fastjet

    prt = events.prt
    aid = abs(prt.id)
    visible = prt[(prt.status > 0) & (aid != 12) & (aid != 14) & (aid != 16)]
    particles = ak.zip({"px": visible.p.px, "py": visible.p.py, "pz": visible.p.pz, "E": visible.p.e},
                       with_name="Momentum4D")
    cluster = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
    # Clustered jets below the window's lower edge minus a margin can never be selected.
    jets = ak.with_name(cluster.inclusive_jets(min_pt=0.5 * JET_PT_MIN), "Momentum4D")
    constituents = cluster.constituents(min_pt=0.5 * JET_PT_MIN)
    truth = prt[_truth_mask(prt, label)]
    truth = ak.zip({"px": truth.p.px, "py": truth.p.py, "pz": truth.p.pz, "E": truth.p.e},
                   with_name="Momentum4D")
    pairs = ak.cartesian({"t": truth, "j": jets}, axis=1, nested=True)  # (event, truth, jet)
    dr = pairs.t.deltaR(pairs.j)
    nearest = ak.argmin(dr, axis=2, keepdims=True)
    nearest_dr = ak.flatten(dr[nearest], axis=2)
    nearest = ak.flatten(nearest, axis=2)
    jet = jets[nearest]
    keep = ((nearest_dr < MATCH_DR) & (jet.pt >= JET_PT_MIN) & (jet.pt <= JET_PT_MAX)
            & (abs(jet.eta) < JET_ABS_ETA_MAX))
    keep = ak.fill_none(keep, False)
    # drop_none: the option type left by argmin would make to_numpy return masked arrays
    jet = ak.drop_none(ak.flatten(jet[keep], axis=1))
    jet_constituents = ak.drop_none(ak.flatten(constituents[nearest][keep], axis=1), axis=0)
    return jet, ak.with_name(jet_constituents, "Momentum4D")


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (a groomed jet with a single constituent)."""
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _jet_images(deta, dphi, pt_rel, image_size: int) -> np.ndarray:
    """pT-fraction images (n_jets, size, size) in (eta, phi) around each jet axis, covering +-R in
    each direction; constituents outside the window are dropped."""
    import awkward as ak

    counts = ak.to_numpy(ak.num(deta, axis=1))
    jet_index = np.repeat(np.arange(len(counts)), counts)
    flat_deta = ak.to_numpy(ak.flatten(deta))
    flat_dphi = ak.to_numpy(ak.flatten(dphi))
    flat_frac = ak.to_numpy(ak.flatten(pt_rel))
    ieta = np.floor((flat_deta + JET_R) / (2 * JET_R) * image_size).astype(np.int64)
    iphi = np.floor((flat_dphi + JET_R) / (2 * JET_R) * image_size).astype(np.int64)
    inside = (ieta >= 0) & (ieta < image_size) & (iphi >= 0) & (iphi < image_size)
    images = np.zeros((len(counts), image_size, image_size), dtype=np.float64)
    np.add.at(images, (jet_index[inside], ieta[inside], iphi[inside]), flat_frac[inside])
    return images


def _jet_features(jet, constituents, n_particles: int, image_size: int) -> dict[str, np.ndarray]:
    """All per-jet arrays (hlf, constituents, images, kinematics) for flat jets and constituents."""
    import awkward as ak
    import fastjet

    jet_pt = ak.to_numpy(jet.pt)
    jet_eta = ak.to_numpy(jet.eta)
    jet_phi = ak.to_numpy(jet.phi)
    jet_mass = ak.to_numpy(jet.mass)

    # --- ungroomed: multiplicity, zlogz, constituents, image, N-subjettiness --------------------
    c_pt = constituents.pt
    multiplicity = ak.to_numpy(ak.num(constituents, axis=1)).astype(np.float64)
    z = c_pt / ak.sum(c_pt, axis=1)
    zlogz = ak.to_numpy(ak.sum(z * np.log(z), axis=1))
    order = ak.argsort(c_pt, axis=1, ascending=False)
    ordered = constituents[order]
    deta = ordered.eta - jet_eta
    dphi = (ordered.phi - jet_phi + np.pi) % (2 * np.pi) - np.pi
    pt_rel = ordered.pt / jet_pt
    fields = []
    for values in (pt_rel, deta, dphi):
        padded = ak.fill_none(ak.pad_none(values, n_particles, axis=1, clip=True), 0.0)
        fields.append(ak.to_numpy(padded))
    constituent_view = np.stack(fields, axis=-1)

    images = _jet_images(deta, dphi, pt_rel, image_size)

    cambridge = fastjet.JetDefinition(fastjet.cambridge_algorithm, JET_R)
    ungroomed = fastjet.ClusterSequence(constituents, cambridge)
    taus = ak.to_numpy(ungroomed.njettiness(njets=[1, 2, 3], beta=1.0, R0=JET_R))
    tau21 = _safe_ratio(taus[:, 1], taus[:, 0])
    tau32 = _safe_ratio(taus[:, 2], taus[:, 1])

    # --- mMDT-groomed: mass and energy-correlation functions ------------------------------------
    groomed = ungroomed.exclusive_jets_softdrop_grooming(njets=1, beta=MMDT_BETA, symmetry_cut=MMDT_ZCUT,
                                                         R0=JET_R)
    mass_mmdt = ak.to_numpy(groomed.msoftdrop)
    groomed_cs = fastjet.ClusterSequence(ak.with_name(groomed.constituents, "Momentum4D"), cambridge)

    def ecf(npoint: int, angles: int, beta: float) -> np.ndarray:
        """Normalised generalised ECF  _{angles}e_{npoint}^{(beta)}  (angles=-1: all pairs)."""
        return ak.to_numpy(groomed_cs.exclusive_jets_energy_correlator(
            njets=1, func="generalized", npoint=npoint, angles=angles, beta=beta, normalized=True))

    e2 = {b: ecf(2, 1, b) for b in (0.0, 1.0, 2.0)}
    e3 = {b: ecf(3, -1, b) for b in (1.0, 2.0)}      # all three pairwise angles
    e3_1 = {b: ecf(3, 1, b) for b in (1.0, 2.0)}     # smallest angle only (M2)
    e3_2 = {b: ecf(3, 2, b) for b in (1.0, 2.0)}     # two smallest angles (N2)
    hlf = {
        "zlogz": zlogz,
        "c1_b0_mmdt": e2[0.0], "c1_b1_mmdt": e2[1.0], "c1_b2_mmdt": e2[2.0],
        "c2_b1_mmdt": _safe_ratio(e3[1.0], e2[1.0] ** 2), "c2_b2_mmdt": _safe_ratio(e3[2.0], e2[2.0] ** 2),
        "d2_b1_mmdt": _safe_ratio(e3[1.0], e2[1.0] ** 3), "d2_b2_mmdt": _safe_ratio(e3[2.0], e2[2.0] ** 3),
        # generalised D2 (alpha=1): 3e3^(1) / (2e2^(beta))^(3/beta)
        "d2_a1_b1_mmdt": _safe_ratio(e3[1.0], e2[1.0] ** 3),
        "d2_a1_b2_mmdt": _safe_ratio(e3[1.0], e2[2.0] ** 1.5),
        "m2_b1_mmdt": _safe_ratio(e3_1[1.0], e2[1.0]), "m2_b2_mmdt": _safe_ratio(e3_1[2.0], e2[2.0]),
        "n2_b1_mmdt": _safe_ratio(e3_2[1.0], e2[1.0] ** 2), "n2_b2_mmdt": _safe_ratio(e3_2[2.0], e2[2.0] ** 2),
        "mass_mmdt": mass_mmdt,
        "multiplicity": multiplicity,
    }
    return {
        "hlf": np.stack([hlf[name] for name in HLF_NAMES], axis=1).astype(np.float32),
        "constituents": constituent_view.astype(np.float32),
        "images": images[..., None].astype(np.float32),
        "jet_pt": jet_pt.astype(np.float32), "jet_eta": jet_eta.astype(np.float32),
        "jet_mass": jet_mass.astype(np.float32),
        "tau21": tau21.astype(np.float32), "tau32": tau32.astype(np.float32),
    }


def _jet_task(task: tuple[int, int, int, int, int]) -> tuple[int, dict[str, np.ndarray]]:
    """Generate exactly ``n_jets`` jets of one class with one seed (runs in a worker process)."""
    import vector

    vector.register_awkward()
    class_index, n_jets, seed, n_particles, image_size = task
    label = CLASS_NAMES[class_index]
    pythia = make_pythia(COMMON_SETTINGS + PROCESS_SETTINGS[label], seed)
    pieces: list[dict[str, np.ndarray]] = []
    collected, n_events = 0, 0
    while collected < n_jets:
        if n_events > 200 * n_jets + 10_000:
            raise RuntimeError(f"class {label}: only {collected} jets from {n_events} events; "
                               "the selection does not match the process settings")
        # Small requests (tests) need few events; most events give at least one jet.
        batch = int(min(EVENTS_PER_BATCH, max(10, 2 * (n_jets - collected))))
        events = pythia.nextBatch(batch)
        n_events += batch
        jet, constituents = _select_jets(events, label)
        if len(jet) == 0:
            continue
        pieces.append(_jet_features(jet, constituents, n_particles, image_size))
        collected += len(jet)
    arrays = {key: np.concatenate([p[key] for p in pieces])[:n_jets] for key in pieces[0]}
    arrays["labels"] = np.full(n_jets, class_index, dtype=np.int64)
    arrays["n_events"] = np.array([n_events], dtype=np.int64)
    return n_jets, arrays


def jet_bytes(n_particles: int, image_size: int) -> float:
    """About how many bytes one jet takes in the output file: the float arrays barely compress; an
    image is mostly zeros, about 8 bytes per constituent pixel plus 1 bit per pixel after gzip
    (measured: 458 bytes per jet for P = S = 16, this gives 452)."""
    return 4 * (len(HLF_NAMES) + 3 * n_particles + 5) + 8 + 8 * n_particles + image_size ** 2 / 8


def shard_jet_bytes(n_particles: int, image_size: int) -> int:
    """Bytes of one jet in a shard and, before compression, in the merged file."""
    return 4 * (len(HLF_NAMES) + 3 * n_particles + image_size ** 2 + 5) + 8


def generate_jets(out: str | os.PathLike, n_per_class: int, n_particles: int = 16, image_size: int = 16,
                  seed: int = 42, workers: int | None = None, force: bool = False, *, scheduler: str | None = None,
                  chunk_size: int | None = None) -> Path:
    """Generate ``n_per_class`` jets of each class (g, q, W, Z, t) and write them to HDF5 ``out``.

    Datasets: ``hlf`` (N,16), ``constituents`` (N,P,3), ``images`` (N,S,S,1), ``labels`` (N,),
    ``jet_pt``, ``jet_eta``, ``jet_mass`` (ungroomed), ``tau21``, ``tau32``. Rows are shuffled with
    ``seed``. Work is cut into units of at most ``CHUNK_JETS`` jets, each seeded from (seed, class,
    unit), grouped into chunks of about ``chunk_size`` jets that run on ``workers`` local processes
    or the workers of the Dask ``scheduler`` (:mod:`trigger.data.shards`): the output depends only on
    the arguments, not on workers, chunk size or interruptions, and a rerun resumes from the chunks
    kept in ``OUT.parts``. Refuses an existing ``out`` unless ``force``. Returns the output path.
    """
    validate_count("--n-per-class", n_per_class)
    check_execution(workers, scheduler, chunk_size)
    if not 1 <= n_particles <= MAX_PARTICLES:
        raise TriggerError(f"--particles must be between 1 and {MAX_PARTICLES}, got {n_particles}")
    if not 4 <= image_size <= 128:
        raise TriggerError(f"--image-size must be between 4 and 128 pixels, got {image_size}")
    check_output_free(out, force)  # fail before minutes of generation, not after
    # the shards, and the merged file's uncompressed size reserved while it is written
    check_space_for(out, n_per_class * len(CLASS_NAMES),
                    jet_bytes(n_particles, image_size) + 2.02 * shard_jet_bytes(n_particles, image_size), "jets")
    plan = Plan(command="trigger data jets", seed=int(seed), unit_fn=_jet_task, units=[], unit_rows=[],
                unit_group=[], group_names=CLASS_NAMES, noun="jets", default_chunk_rows=CHUNK_JETS,
                arguments={"--n-per-class": int(n_per_class), "--particles": int(n_particles),
                           "--image-size": int(image_size), "--seed": int(seed)})
    for class_index, label in enumerate(CLASS_NAMES):
        for unit_index, size in enumerate(chunk_sizes(n_per_class, CHUNK_JETS)):
            plan.units.append((class_index, size, task_seed(seed, 1, class_index, unit_index), n_particles, image_size))
            plan.unit_rows.append(size)
            plan.unit_group.append(label)
    plan.attrs = {
        "kind": "jets",
        "format_version": FORMAT_VERSION,
        "class_names": CLASS_NAMES,
        "hlf_names": HLF_NAMES,
        "constituent_names": CONSTITUENT_NAMES,
        "n_per_class": int(n_per_class),
        "n_particles": int(n_particles),
        "image_size": int(image_size),
        "image_half_width": JET_R,
        "seed": int(seed),
        "generator_settings": generator_settings(),
        "package_versions": package_versions(),
    }
    return shards.generate(out, plan, workers=workers, scheduler=scheduler, chunk_size=chunk_size, force=force)

