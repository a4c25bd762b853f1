"""Shared fixtures. Expensive artefacts (generated data, trained models, compiled HLS projects)
are session-scoped so that each is built once per test run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
