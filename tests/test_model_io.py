"""Model files: QKeras round trip, and one-line errors for bad files."""

import numpy as np
import pytest

from trigger import load_model
from trigger.errors import TriggerError
from trigger.models.io import save_model


def _qmodel():
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    x_in = tf.keras.Input((4,))
    x = QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x_in)
    x = QActivation(quantized_relu(6))(x)
    return tf.keras.Model(x_in, x)


def test_qkeras_round_trip(tmp_path):
    m = _qmodel()
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    path = save_model(m, tmp_path / "m.h5")
    m2 = load_model(path)
    np.testing.assert_array_equal(m.predict(x, verbose=0), m2.predict(x, verbose=0))
    with pytest.raises(TriggerError, match="--force"):
        save_model(m, path)


def test_missing_file(tmp_path):
    with pytest.raises(TriggerError, match="not found"):
        load_model(tmp_path / "absent.h5")


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not hdf5")
    with pytest.raises(TriggerError, match="not an HDF5 file"):
        load_model(bad)


def test_hdf5_without_model(tmp_path):
    import h5py

    p = tmp_path / "data.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(TriggerError, match="holds no Keras model"):
        load_model(p)


def test_meta_round_trip_and_input_transform(tmp_path):
    meta = {"family": "mlp", "task": "classification", "view": "hlf",
            "input_offset": np.array([1.0, 2.0, 0.0, 0.0]), "input_scale": [0.5, 0.25, 1.0, 2.0]}
    path = save_model(_qmodel(), tmp_path / "m.h5", meta=meta)
    from trigger.models.io import load_meta, prepare_inputs

    got = load_meta(path)
    assert got.view == "hlf" and got.input_offset == [1.0, 2.0, 0.0, 0.0] and got.schema_version == 1
    x = np.array([[3.0, 6.0, 1.0, 1.0]])
    np.testing.assert_array_equal(prepare_inputs(x, got), [[1.0, 1.0, 1.0, 2.0]])
    assert load_meta(tmp_path / "absent.h5") is None  # "no metadata"
    np.testing.assert_array_equal(prepare_inputs(x, None), x)


def test_keras_format_loads_without_metadata_and_a_foreign_zip_is_refused(tmp_path):
    """A user's .keras model (a zip archive) loads; it carries no trigger metadata. A zip without a
    Keras config is a one-line error."""
    import zipfile

    import tensorflow as tf

    from trigger.errors import TriggerError
    from trigger.models.io import check_model_file, load_meta, load_model

    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3, name="d")], name="user")
    path = tmp_path / "user.keras"
    model.save(path)
    assert check_model_file(path) == path
    assert load_meta(path) is None
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.get_layer("d").get_weights()[0], model.get_layer("d").get_weights()[0])
    other = tmp_path / "other.keras"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    with pytest.raises(TriggerError, match="zip file without a Keras model"):
        check_model_file(other)
