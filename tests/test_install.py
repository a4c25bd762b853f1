"""The pinned stack installs and imports; the pins in setup.cfg are the versions in use."""

import configparser
import importlib
import re
from importlib import metadata

import pytest

from tests.conftest import REPO


def _pins() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options"]["install_requires"].split("\n")
    lines += cfg["options.extras_require"]["data"].split("\n")
    pins = {}
    for line in lines:
        m = re.match(r"\s*([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
    return pins


def test_pins_are_the_installed_versions():
    pins = _pins()
    assert {"tensorflow", "qkeras", "tensorflow-model-optimization", "hls4ml", "pythia8mc", "fastjet"} <= set(pins)
    for dist, version in pins.items():
        assert metadata.version(dist) == version, f"{dist}: installed {metadata.version(dist)}, pinned {version}"


@pytest.mark.parametrize("module", ["tensorflow", "qkeras", "tensorflow_model_optimization", "hls4ml",
                                    "pyparsing", "yaml", "h5py", "numpy", "pythia8mc", "fastjet",
                                    "awkward", "pydantic", "tqdm", "matplotlib", "sklearn", "da4ml",
                                    "hypothesis"])
def test_import(module):
    importlib.import_module(module)


def test_keras_is_keras2():
    # hls4ml would route models to its Keras-3 parser if Keras 3 were importable
    import keras
    import tensorflow as tf

    assert keras.__version__.startswith("2."), keras.__version__
    assert tf.keras.Model is keras.Model or tf.keras.Model.__module__.startswith("keras")


def test_numpy_below_2():
    import numpy as np

    assert int(np.__version__.split(".")[0]) < 2
