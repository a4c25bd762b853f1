"""A matrix of user models through `trigger compress` and `trigger synth` (issue 13, items 2 and 4).

Every case either compresses and synthesizes with a bit-exact C simulation, or is refused (exit 2)
with one line naming the layer and what is supported. The models are tiny and read a small
synthetic `trigger data`-style file made here (the jets' hlf view, 16 features, one of them on a
scale of ~100 so that an input BatchNormalization matters); training runs 2 epochs.

Covered: Sequential and functional; Dense, Conv1D, Conv2D; BatchNormalization after a layer,
before a layer and on the input; Dropout, Flatten, Reshape; Add, Concatenate, Multiply; max and
average pooling, including global; relu and softmax as layers and inline; elu, tanh, sigmoid,
leaky_relu (as layers and inline), a softmax before the output and a multi-output model (refused);
.h5 and .keras files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from trigger.errors import TriggerError

N_EVENTS = 400
CLASSES = ["g", "q", "W", "Z", "t"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    """A jets-kind HDF5 file with only the hlf view: class-dependent Gaussian features."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, len(CLASSES), N_EVENTS)
    x = rng.normal(size=(N_EVENTS, 16)) + 0.8 * y[:, None] * (np.arange(16) % 3 == 0)
    x[:, 15] = 100.0 + 20.0 * y + 10.0 * rng.normal(size=N_EVENTS)  # a raw mass-like feature
    path = tmp_path_factory.mktemp("user_data") / "jets.h5"
    with h5py.File(path, "w") as f:
        f.attrs["kind"] = "jets"
        f.attrs["class_names"] = np.array(CLASSES, dtype=object)
        f["hlf"] = x.astype(np.float32)
        f["labels"] = y.astype(np.int64)
    return path


def _train(model, data: Path):
    """A few float epochs, so that the BatchNormalization statistics are the data's."""
    with h5py.File(data) as f:
        x, y = f["hlf"][:], f["labels"][:]
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    return model


# --- the supported models ---------------------------------------------------------------------

def _functional_dense():
    """Functional: BN on the input, Dense -> BN -> Activation('relu'), Dropout, inline relu, a
    Dense -> ReLU() branch, Add, Multiply, Concatenate, inline softmax."""
    import tensorflow as tf

    L = tf.keras.layers
    inp = tf.keras.Input((16,), name="features")
    x = L.BatchNormalization(name="bn_in")(inp)
    x = L.Dense(8, name="d1")(x)
    x = L.BatchNormalization(name="bn_d1")(x)
    x = L.Activation("relu", name="relu1")(x)
    x = L.Dropout(0.1, name="drop")(x)
    a = L.Dense(6, activation="relu", name="a")(x)
    b = L.ReLU(name="b_relu")(L.Dense(6, name="b")(x))
    s = L.Add(name="add")([a, b])
    m = L.Multiply(name="mul")([a, b])
    c = L.Concatenate(name="cat")([s, m])
    out = L.Dense(5, activation="softmax", name="head")(c)
    return tf.keras.Model(inp, out, name="func_dense")


def _sequential_conv1d():
    """Sequential: BN on the input, Reshape, Conv1D -> BN -> relu, pooling, Dense -> BN before a
    Dense (folded forward), Activation('softmax')."""
    import tensorflow as tf

    L = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input((16,)), L.BatchNormalization(name="bn_in"), L.Reshape((16, 1), name="reshape"),
        L.Conv1D(4, 3, name="c1"), L.BatchNormalization(name="bn_c1"), L.Activation("relu", name="c1_relu"),
        L.MaxPooling1D(2, name="maxpool"), L.Conv1D(4, 3, activation="relu", name="c2"),
        L.AveragePooling1D(2, name="avgpool"), L.Flatten(name="flat"),
        L.Dense(8, activation="relu", name="fc"), L.BatchNormalization(name="bn_fc"),
        L.Dense(5, name="logits"), L.Activation("softmax", name="softmax"),
    ], name="seq_conv1d")


def _functional_conv2d():
    """Functional: Reshape to 4x4, Conv2D relu -> BN (folded into the next valid Conv2D), global
    max and average pooling, average pooling, Flatten, Concatenate, Dense, Activation('softmax')."""
    import tensorflow as tf

    L = tf.keras.layers
    inp = tf.keras.Input((16,), name="features")
    x = L.BatchNormalization(name="bn_in")(inp)
    x = L.Reshape((4, 4, 1), name="image")(x)
    x = L.Conv2D(4, 2, activation="relu", name="c1")(x)          # (3, 3, 4)
    g = L.GlobalMaxPooling2D(name="gmax")(x)
    x = L.BatchNormalization(name="bn_after_relu")(x)
    x = L.Conv2D(4, 2, activation="relu", name="c2")(x)          # (2, 2, 4)
    p = L.Flatten(name="flat")(L.AveragePooling2D(2, name="avgpool")(x))
    q = L.GlobalAveragePooling2D(name="gavg")(x)
    x = L.Concatenate(name="cat2")([L.Concatenate(name="cat")([g, p]), q])
    x = L.Dense(5, name="logits")(x)
    return tf.keras.Model(inp, L.Activation("softmax", name="softmax")(x), name="func_conv2d")


SUPPORTED = {"func_dense.keras": _functional_dense, "seq_conv1d.h5": _sequential_conv1d,
             "func_conv2d.h5": _functional_conv2d}


def _compress_config():
    from trigger.config import CompressConfig

    return CompressConfig.model_validate({
        "quantization": {"weight_bits": 8, "weight_integer": 2, "activation_bits": 8, "activation_integer": 3},
        "pruning": {"sparsity": 0.5}, "train": {"epochs": 2, "batch_size": 64, "patience": 5}, "seed": 1})


@pytest.fixture(scope="module")
def compressed(data_file, tmp_path_factory) -> dict:
    """Each supported model trained briefly in float, saved (.h5 or .keras) and compressed by the
    library entry point of `trigger compress`."""
    from trigger.stages import compress_file

    folder = tmp_path_factory.mktemp("user_models")
    out = {}
    for filename, build in SUPPORTED.items():
        path = folder / filename
        _train(build(), data_file).save(path)
        out[filename] = compress_file(path, data=data_file, config=_compress_config(),
                                      out=folder / f"{path.stem}_q.h5")
    return out


@pytest.fixture(scope="module")
def synthesized(compressed, tmp_path_factory) -> dict:
    """Each compressed model through `trigger synth`'s library entry point (C simulation on the
    test split of the data file, 200 events)."""
    from trigger.config import SynthConfig
    from trigger.stages.synth import synthesize

    folder = tmp_path_factory.mktemp("user_firmware")
    config = SynthConfig(max_csim_events=200)
    return {name: synthesize(result.model_path, config=config, out=folder / Path(name).stem,
                             data=result.report.data.file)
            for name, result in compressed.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUPPORTED))
def test_supported_model_compresses_without_nan_and_folds_every_batchnorm(compressed, name):
    from trigger.models.io import load_meta, load_model

    result = compressed[name]
    history = result.report.training.history
    assert all(math.isfinite(v) for values in history.values() for v in values), history
    student = load_model(result.model_path)
    assert not [l.name for l in student.layers if "BatchNormalization" in type(l).__name__]
    assert not [l.name for l in student.layers if type(l).__name__ == "Dropout"]
    meta = load_meta(result.model_path)
    # the input BatchNormalization is the student's input transform now
    assert meta.input_offset is not None and len(meta.input_scale) == 16
    assert math.isfinite(result.report.student.model_dump()["accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUPPORTED))
def test_supported_model_synthesizes_bit_exactly(synthesized, name):
    csim = synthesized[name].report.csim
    assert csim.bit_exact_fraction == 1.0, (name, csim.first_differing_layer)
    assert csim.n_values > 0
    assert not [e for e in csim.inexact_layers if "softmax" not in e.get("reason", "")], csim.inexact_layers


def test_folded_batchnorms_keep_the_float_function(tmp_path):
    """With wide quantizers, the QKeras rebuild (every BatchNormalization folded, the input one into
    the input transform) computes the float model's function."""
    import tensorflow as tf

    from trigger.compress.quantize import fold_input_batchnorm, quantize_model
    from trigger.config import QuantSection
    rng = np.random.default_rng(2)
    wide = QuantSection(weight_bits=24, weight_integer=8, activation_bits=24, activation_integer=10,
                        input_bits=24, input_integer=10)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    for build in SUPPORTED.values():
        tf.keras.utils.set_random_seed(5)
        model = build()
        for layer in model.layers:  # non-trivial statistics
            if type(layer).__name__ == "BatchNormalization":
                n = layer.gamma.shape[0]
                layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n) * 0.3, rng.normal(size=n) * 0.3,
                                   rng.uniform(0.5, 2, n)])
        folded, offset, scale = fold_input_batchnorm(model)
        q = quantize_model(folded, wide)
        xq = (x - np.asarray(offset, np.float32)) * np.asarray(scale, np.float32)
        want = model.predict(x, verbose=0)  # probabilities
        got = q.predict(xq, verbose=0)
        np.testing.assert_allclose(got, want, atol=1e-3, err_msg=model.name)


# --- the refused models ---------------------------------------------------------------------------

SUPPORTED_LIST = ("InputLayer, Dense, Conv1D, Conv2D, BatchNormalization, Activation, ReLU, Softmax, Dropout, "
                  "Flatten, Reshape, Permute, Concatenate, Add, Subtract, Multiply, MaxPooling1D, MaxPooling2D, "
                  "AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D, "
                  "GlobalMaxPooling1D, GlobalMaxPooling2D")
ACTIVATIONS = "linear, relu, softmax (model output only)"


def _activation_message(layer: str, cls: str, act: str, where: str = "") -> str:
    return (f"layer '{layer}' ({cls}) is not supported for compression: activation '{act}'{where} (supported "
            f"activations: {ACTIVATIONS}; hls4ml implements {act} as a lookup table or a float scale, never "
            f"bit-exact); supported layers: {SUPPORTED_LIST}")


def _layer_message(layer: str, cls: str) -> str:
    return (f"layer '{layer}' ({cls}) is not supported for compression: activation layer {cls} (supported "
            f"activations: {ACTIVATIONS}; no QKeras activation has an exact hls4ml implementation of it); "
            f"supported layers: {SUPPORTED_LIST}")


BN_MESSAGE = ("layer 'bn_mid' (BatchNormalization) is not supported for compression: a BatchNormalization is "
              "supported directly after a Dense/Conv with linear activation that nothing else reads, directly on "
              "the model input (folded into the input transform), or directly before a Dense or a "
              "padding='valid' Conv that is its only reader; a float one is never bit-exact in firmware; "
              f"supported layers: {SUPPORTED_LIST}")
MULTI_OUTPUT_MESSAGE = ("model 'two_heads' has 2 outputs (head_a, head_b); compression and firmware support "
                        "single-output models: build one model per output")


def _refused_model(case: str):
    """A tiny float model with one unsupported piece, and the exact one-line refusal."""
    import tensorflow as tf

    L = tf.keras.layers
    inp = tf.keras.Input((16,), name="features")
    if case in ("elu", "tanh", "sigmoid", "leaky_relu"):  # inline
        x = L.Dense(8, activation=case if case != "leaky_relu" else tf.nn.leaky_relu, name="d1")(inp)
        act = case
        return tf.keras.Model(inp, L.Dense(5, name="out")(x)), _activation_message("d1", "Dense", act)
    if case.startswith("layer_"):
        act = case[len("layer_"):]
        x = L.Activation(act, name="act")(L.Dense(8, name="d1")(inp))
        return tf.keras.Model(inp, L.Dense(5, name="out")(x)), _activation_message("act", "Activation", act)
    if case in ("LeakyReLU", "ELU"):
        x = getattr(L, case)(name="act")(L.Dense(8, name="d1")(inp))
        return tf.keras.Model(inp, L.Dense(5, name="out")(x)), _layer_message("act", case)
    if case == "softmax_inside":
        x = L.Activation("softmax", name="act")(L.Dense(8, name="d1")(inp))
        return (tf.keras.Model(inp, L.Dense(5, name="out")(x)),
                _activation_message("act", "Activation", "softmax", " before the model output"))
    if case == "bn_before_add":
        a = L.Dense(8, activation="relu", name="d1")(inp)
        x = L.Add(name="add")([L.BatchNormalization(name="bn_mid")(a), a])
        return tf.keras.Model(inp, L.Dense(5, name="out")(x)), BN_MESSAGE
    if case == "merge_of_three":
        a, b = L.Dense(4, name="a")(inp), L.Dense(4, name="b")(inp)
        return (tf.keras.Model(inp, L.Add(name="add3")([a, b, L.Dense(4, name="c")(inp)])),
                "layer 'add3' (Add) is not supported for compression: a merge of 3 tensors (hls4ml merges two "
                f"at a time; chain two-input Add layers); supported layers: {SUPPORTED_LIST}")
    if case == "multi_output":
        x = L.Dense(8, activation="relu", name="d1")(inp)
        return (tf.keras.Model(inp, [L.Dense(5, name="head_a")(x), L.Dense(1, name="head_b")(x)], name="two_heads"),
                MULTI_OUTPUT_MESSAGE)
    raise ValueError(case)


REFUSED = ["elu", "tanh", "sigmoid", "leaky_relu", "layer_elu", "layer_tanh", "layer_sigmoid", "layer_leaky_relu",
           "LeakyReLU", "ELU", "softmax_inside", "bn_before_add", "merge_of_three", "multi_output"]


@pytest.mark.parametrize("case", REFUSED)
def test_unsupported_model_is_refused_with_one_line(case):
    from trigger.compress.quantize import fold_input_batchnorm, quantize_model
    from trigger.config import QuantSection

    model, message = _refused_model(case)
    with pytest.raises(TriggerError) as info:
        quantize_model(fold_input_batchnorm(model)[0], QuantSection())
    assert str(info.value) == message
    assert "\n" not in message


@pytest.mark.slow
@pytest.mark.parametrize("case,suffix", [("tanh", ".h5"), ("layer_sigmoid", ".keras"), ("multi_output", ".h5"),
                                         ("bn_before_add", ".keras")])
def test_cli_refuses_before_training_with_exit_2(case, suffix, data_file, tmp_path):
    model, message = _refused_model(case)
    path = tmp_path / f"user{suffix}"
    model.save(path)
    proc = run_cli("compress", path, "--data", data_file, "--out", tmp_path / "q.h5")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"trigger: error: {message}"]
    assert not (tmp_path / "q.h5").exists()


@pytest.mark.slow
def test_cli_compress_and_synth_of_a_keras_file(compressed, data_file, tmp_path):
    """The CLI end to end on a .keras user model (the compressed student is always .h5)."""
    student = compressed["func_dense.keras"].model_path
    proc = run_cli("synth", student, "--data", data_file, "--out", tmp_path / "prj")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "prj" / "report.json").read_text())
    assert report["csim"]["bit_exact_fraction"] == 1.0
