"""Shared fixtures. Expensive artefacts (generated data, trained models, compiled HLS projects)
are session-scoped so that each is built once per test run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trigger.config import ModelConfig, load_config

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests never read the user's estimator calibration (~/.config/trigger/...): a path that does not
# exist means the builtin calibration, in this process and in every CLI subprocess (tests that
# calibrate point it into their tmp_path).
os.environ["TRIGGER_CALIBRATION"] = str(REPO / "tests" / "no-user-calibration.yaml")

#: Fixtures that generate events, train models or compile HLS projects. A test that uses one must
#: carry ``@pytest.mark.slow`` (checked at collection), so that ``make test-fast`` (``-m "not slow"``)
#: never starts one by accident.
SLOW_FIXTURES = {"jets_file", "ad_file", "runs", "synthesized", "example_models", "calibration",
                 "compressed_toy", "compressed", "rtl_runs", "cli_reports",
                 "weights_run", "activations_run"}


def pytest_collection_modifyitems(config, items):
    """Refuse a test that uses an expensive fixture without the ``slow`` marker."""
    unmarked = [item.nodeid for item in items
                if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError("tests use an expensive fixture but are not marked slow (add "
                                "@pytest.mark.slow): " + ", ".join(unmarked))


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run the ``trigger`` CLI as a user would, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "trigger", *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# --- CI-sized generated data, made once per session by the data stage itself ---------------------
# Sizes are small on purpose (seconds to generate); the full sets are made by `make data`.
CI_JETS_PER_CLASS = 300
CI_AD_BACKGROUND = 2000
CI_AD_SIGNAL = 200


@pytest.fixture(scope="session")
def jets_file(tmp_path_factory) -> Path:
    """A small jets HDF5 file (5 classes x CI_JETS_PER_CLASS) from `trigger.data.generate_jets`."""
    from trigger.data import generate_jets

    out = tmp_path_factory.mktemp("data") / "jets.h5"
    return generate_jets(out=out, n_per_class=CI_JETS_PER_CLASS, n_particles=16, image_size=16,
                         seed=1, workers=2, force=False)


@pytest.fixture(scope="session")
def ad_file(tmp_path_factory) -> Path:
    """A small anomaly-detection HDF5 file from `trigger.data.generate_ad`."""
    from trigger.data import generate_ad

    out = tmp_path_factory.mktemp("data") / "ad.h5"
    return generate_ad(out=out, n_background=CI_AD_BACKGROUND, n_signal=CI_AD_SIGNAL, seed=1,
                       workers=2, force=False)


# --- the shipped configs trained once per session on the CI-sized data -------------------------
CONFIGS = {"jet_mlp": "jets", "jet_cnn": "jets", "jet_gnn": "jets", "ad_autoencoder": "ad"}


class Run:
    """One `trigger train` run of a shipped config: its output folder, process and data file."""

    def __init__(self, name, out, proc, data):
        self.name, self.out, self.proc, self.data = name, out, proc, data
        self.config = load_config(REPO / "configs" / f"{name}.yaml", ModelConfig)

    @property
    def metrics(self):
        return json.loads((self.out / "metrics.json").read_text())


@pytest.fixture(scope="session")
def runs(request, tmp_path_factory):
    """Lazily train each shipped config once per session via the CLI."""
    cache = {}

    def get(name):
        if name not in cache:
            data = request.getfixturevalue("jets_file" if CONFIGS[name] == "jets" else "ad_file")
            out = tmp_path_factory.mktemp("runs") / name
            proc = run_cli("train", REPO / "configs" / f"{name}.yaml", "--data", data, "--out", out)
            assert proc.returncode == 0, proc.stderr[-3000:]
            cache[name] = Run(name, out, proc, data)
        return cache[name]

    return get
