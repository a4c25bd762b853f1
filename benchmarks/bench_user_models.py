"""`trigger synth` on the QKeras models of hls4ml 1.3.0's own test suite, as a new user would meet them.

    .venv/bin/python benchmarks/bench_user_models.py                  # all models -> docs/user_models.{md,json}
    .venv/bin/python benchmarks/bench_user_models.py --list           # the model names and where they come from
    .venv/bin/python benchmarks/bench_user_models.py --only btnn_2    # one model (repeatable), printed only
    .venv/bin/python benchmarks/bench_user_models.py --plain          # also plain hls4ml beside each model

The models are rebuilt from the description of the QKeras tests of hls4ml v1.3.0 (tag v1.3.0, commit
fb91b2eb92b69d4c56e37b4867655844debee52b): test/pytest/test_qkeras.py, test_binary_cnn.py and the
example models of test_cnn_mnist_qkeras.py / the jet-tagging accuracy test (architecture, quantizers
and input shapes; our own code). Weights are small random values drawn with a fixed seed (the po2
model keeps its test's large weights) and every BatchNormalization gets non-trivial statistics.
Each model is saved with plain Keras ``model.save`` (a user's file, no trigger metadata) and goes
through :func:`trigger.stages.synthesize` with the default SynthConfig (random events on the input
grid; io_stream where trigger chooses it), each model in its own interpreter so a model that runs
past ``--timeout`` seconds is stopped and recorded as such.

Outcomes: ``bit-exact``; ``flagged`` (not bit-exact, the report names the inexact layers);
``refused`` (a one-line TriggerError); and the bugs: ``WRONG`` (not bit-exact and nothing flagged),
``g++-failed`` (the one line says g++ did not compile the project trigger generated), ``error`` (any
other exception, or a multi-line refusal), ``timeout``, ``crash`` (the interpreter died). ``not-buildable``: QKeras itself cannot build the model on this TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HLS4ML_TAG = "v1.3.0"
HLS4ML_COMMIT = "fb91b2eb92b69d4c56e37b4867655844debee52b"
SEED = 1234
PLAIN_EVENTS = 500

Builder = Callable[[], Any]
CASES: dict[str, tuple[str, Builder]] = {}  # name -> (hls4ml test it comes from, builder)


def case(name: str, source: str) -> Callable[[Builder], Builder]:
    """Register a model builder under ``name``, citing the hls4ml test it comes from."""
    def register(fn: Builder) -> Builder:
        CASES[name] = (source, fn)
        return fn
    return register


# --- the models ---------------------------------------------------------------------------------

def _seq(*layers):
    from tensorflow.keras.models import Sequential

    return Sequential(list(layers))


def _qact(q, **kw):
    from qkeras import QActivation

    return QActivation(activation=q, **kw)


def _qdense(units: int, **kw):
    from qkeras import QDense

    return QDense(units, **kw)


def _dense_exact(alpha) -> Any:
    from qkeras.quantizers import quantized_bits, quantized_relu

    return _seq(_qact(quantized_bits(4, 0, alpha=1), input_shape=(16,), name="inp_quant"),
                _qdense(16, name="fc1", kernel_quantizer=quantized_bits(4, 0, alpha=alpha),
                        bias_quantizer=quantized_bits(4, 0, alpha=1)),
                _qact(quantized_relu(4, 0), name="relu1"))


case("dense_exact_alpha1", "test_single_dense_activation_exact[4,1]")(lambda: _dense_exact(1))
case("dense_exact_auto_po2", "test_single_dense_activation_exact[4,auto_po2]")(lambda: _dense_exact("auto_po2"))


def _single_activation(make_quantizer: Callable[[], Any]) -> Builder:
    return lambda: _seq(_qact(make_quantizer(), input_shape=(1,), name="quantizer"))


class _LazyQuantizers:
    """``q.quantized_bits(...)`` importing QKeras only when a model is built (``--list`` stays fast)."""

    def __getattr__(self, name: str) -> Any:
        from qkeras import quantizers

        return getattr(quantizers, name)


def _register_single_activations() -> None:
    q = _LazyQuantizers()
    special = {"special_tanh8": lambda: q.quantized_tanh(8), "special_sigmoid5": lambda: q.quantized_sigmoid(5),
               "special_sigmoid7_real": lambda: q.quantized_sigmoid(7, use_real_sigmoid=True)}
    for name, make in special.items():
        case(name, "test_quantizer_special")(_single_activation(make))
    for bits, integer in ((8, 0), (8, 4), (4, 2), (4, 0), (10, 0)):
        case(f"quantizer_bits_{bits}_{integer}", "test_quantizer")(
            _single_activation(lambda b=bits, i=integer: q.quantized_bits(b, i)))
    for args in ((4,), (4, 2), (8,), (8, 4), (10,), (10, 5)):
        case(f"quantizer_relu_{'_'.join(map(str, args))}", "test_quantizer")(
            _single_activation(lambda a=args: q.quantized_relu(*a)))
    for bits, integer, slope in ((4, 0, 0.5), (8, 4, 1.0), (10, 2, 0.25)):
        case(f"relu_negative_slope_{bits}_{integer}_{slope}", "test_relu_negative_slope")(
            _single_activation(lambda b=bits, i=integer, s=slope: q.quantized_relu(b, i, negative_slope=s)))


def _btnn(kernel: str, activation: str, batchnorm: bool) -> Any:
    from qkeras import quantizers as q  # noqa: F401  (the strings below are QKeras expressions)
    from tensorflow.keras.layers import BatchNormalization

    layers = [_qdense(10, input_shape=(10,), name="dense", kernel_quantizer=eval(kernel),
                      bias_quantizer=q.quantized_bits(5, 2))]
    if batchnorm:
        layers.append(BatchNormalization(name="bn"))
    layers.append(_qact(eval(activation) if "(" in activation else activation))
    return _seq(*layers)


BTNN = [  # (kernel quantizer, activation quantizer, BatchNormalization), test_btnn's test_no 1..7
    ("q.ternary(alpha=1)", "binary_tanh", False), ("q.binary()", "binary_tanh", False),
    ("q.ternary(alpha='auto')", "q.binary()", True), ("q.ternary(alpha='auto')", "ternary", True),
    ("q.ternary(alpha='auto')", "q.ternary(threshold=0.2)", True),
    ("q.ternary(alpha='auto')", "q.ternary(threshold=0.8)", True), ("q.binary()", "q.binary()", False)]
for _i, _args in enumerate(BTNN, 1):
    case(f"btnn_{_i}", f"test_btnn[{_i}]")(lambda a=_args: _btnn(*a))


def _qactivation_kwarg(weights: str, activation: str) -> Any:
    """Functional: Input(10) -> QDense(10, activation=<quantizer string>)."""
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inputs = Input(shape=(10,))
    outputs = _qdense(10, activation=activation, name="qdense", kernel_quantizer=weights,
                      bias_quantizer=weights)(inputs)
    return Model(inputs, outputs)


for _w, _a in (("binary", "binary"), ("ternary", "ternary"), ("quantized_bits(4, 0, alpha=1)", "quantized_relu(2, 0)"),
               ("quantized_bits(4, 0, alpha=1)", "quantized_relu(4, 0)"),
               ("quantized_bits(4, 0, alpha=1)", "quantized_relu(8, 0)")):
    _name = _a.replace("quantized_", "").replace("(", "_").replace(", ", "_").rstrip(")")
    case(f"qactivation_kwarg_{_name}", "test_qactivation_kwarg")(lambda w=_w, a=_a: _qactivation_kwarg(w, a))


@case("quantizer_parsing_no_kernel_quantizer", "test_quantizer_parsing")
def _quantizer_parsing() -> Any:
    return _seq(_qdense(8, input_shape=(10,), kernel_quantizer=None, bias_quantizer=None,
                        activation="quantized_relu(8, 0)"))


@case("qconv2d_batchnorm", "test_qconv2dbn")
def _qconv2dbn() -> Any:
    from qkeras.qconv2d_batchnorm import QConv2DBatchnorm

    return _seq(QConv2DBatchnorm(4, kernel_size=(3, 3), input_shape=(8, 8, 1),
                                 kernel_quantizer="quantized_bits(8, 0, alpha=1)",
                                 bias_quantizer="quantized_bits(8, 0, alpha=1)", activation="quantized_relu(8, 0)"))


@case("qdepthwiseconv2d_32x32x3", "test_qdepthwiseconv2d")
def _qdepthwise() -> Any:
    from qkeras.qconvolutional import QDepthwiseConv2D

    return _seq(QDepthwiseConv2D(kernel_size=(3, 3), input_shape=(32, 32, 3),
                                 depthwise_quantizer="quantized_bits(6, 0, alpha=1)",
                                 bias_quantizer="quantized_bits(4, 0, alpha=1)", activation="quantized_relu(3, 0)"))


@case("quantized_po2_18_max2e20", "test_quantised_po2_bit_width")
def _po2_bit_width() -> Any:
    import numpy as np
    from qkeras.quantizers import quantized_po2

    model = _seq(_qdense(6, input_shape=(26,), name="dense", kernel_quantizer=quantized_po2(18, max_value=2**20)))
    weights = model.layers[0].get_weights()
    weights[0] = 2**18 * np.random.default_rng(SEED).random((26, 6))  # the test's large weights
    model.layers[0].set_weights(weights)
    model._bench_keep_weights = True
    return model


def _rnn(kind: str, bits: int) -> Any:
    import qkeras

    q = f"quantized_bits({bits}, 0, alpha=1)"
    kw = dict(input_shape=(5, 2), kernel_quantizer=q, recurrent_quantizer=q, bias_quantizer=q, state_quantizer=q)
    if kind == "QSimpleRNN":
        return _seq(qkeras.QSimpleRNN(4, activation="relu", **kw))
    extra = {"reset_after": False} if kind == "QGRU" else {}
    return _seq(getattr(qkeras, kind)(4, activation="tanh", recurrent_activation="sigmoid", **kw, **extra))


case("qsimplernn", "test_qsimplernn")(lambda: _rnn("QSimpleRNN", 16))
case("qlstm", "test_qlstm")(lambda: _rnn("QLSTM", 8))
case("qgru", "test_qgru")(lambda: _rnn("QGRU", 8))


def _separable(shape: tuple[int, ...]) -> Any:
    from qkeras.qconvolutional import QSeparableConv1D, QSeparableConv2D
    from qkeras.quantizers import quantized_bits
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    layer = QSeparableConv1D if len(shape) == 2 else QSeparableConv2D
    x_in = Input(shape, name="input_layer")
    x = layer(5, 3, depthwise_quantizer=quantized_bits(8, 3, alpha=1), pointwise_quantizer=quantized_bits(8, 3, alpha=1),
              bias_quantizer=quantized_bits(8, 3, alpha=1), name="qsepconv_1")(x_in)
    return Model(x_in, x)


case("qseparableconv1d", "test_qseparableconv1d")(lambda: _separable((13, 20)))
case("qseparableconv2d", "test_qseparableconv2d")(lambda: _separable((13, 21, 20)))


@case("binary_cnn", "test_binary_cnn")
def _binary_cnn() -> Any:
    """Functional 28x28x1: three binary QConv2D + QBatchNormalization + binary QActivation, two
    max-poolings, two binary QDense."""
    from qkeras import QBatchNormalization, QConv2D
    from tensorflow.keras.layers import Flatten, Input, MaxPooling2D
    from tensorflow.keras.models import Model

    x_in = Input(shape=(28, 28, 1))
    x = QConv2D(4, (3, 3), kernel_quantizer="binary", name="conv2d_1", bias_quantizer="quantized_bits(5,2)")(x_in)
    x = _qact("binary", name="act1")(QBatchNormalization()(x))
    for i, pool in ((2, True), (3, True)):
        x = QConv2D(8, (3, 3), kernel_quantizer="binary", name=f"conv2d_{i}", use_bias=False)(x)
        x = _qact("binary", name=f"act{i}")(QBatchNormalization()(x))
        x = MaxPooling2D(pool_size=(2, 2))(x) if pool else x
    x = _qdense(10, kernel_quantizer="binary", name="q_dense_6", use_bias=False)(Flatten()(x))
    x = _qact("binary_tanh", name="act4")(QBatchNormalization()(x))
    x = _qdense(10, kernel_quantizer="binary", activation="linear", name="q_dense_7", use_bias=False)(x)
    return Model(x_in, x)


@case("mnist_cnn_small", "test_cnn_mnist_qkeras (example qkeras_mnist_cnn, 16x16x1, 8 filters)")
def _mnist_cnn() -> Any:
    """Sequential: QConv2D(relu inline) -> quantized_relu -> max-pool, twice; Flatten, Dropout, QDense, softmax."""
    from qkeras import QConv2D
    from tensorflow.keras.layers import Activation, Dropout, Flatten, InputLayer, MaxPooling2D

    q = "quantized_bits(6, 0, alpha=1)"
    layers = [InputLayer(input_shape=(16, 16, 1))]
    for i in range(2):
        layers += [QConv2D(8, (3, 3), activation="relu", kernel_quantizer=q, bias_quantizer=q, name=f"q_conv2d_{i}"),
                   _qact("quantized_relu(6, 0)", name=f"q_activation_{i}"), MaxPooling2D((2, 2))]
    layers += [Flatten(), Dropout(0.5), _qdense(10, kernel_quantizer=q, bias_quantizer=q, name="q_dense"),
               Activation("softmax", name="softmax")]
    return _seq(*layers)


@case("mnist_dense_po2", "example qkeras_mnist_dense (functional, 64 inputs)")
def _mnist_dense() -> Any:
    """Functional: quantized_relu(2) input, QDense(20, po2 kernel), quantized_relu(3,1), QDense(10), softmax."""
    from qkeras.quantizers import quantized_bits, quantized_po2
    from tensorflow.keras.layers import Activation, Input
    from tensorflow.keras.models import Model

    x_in = Input(shape=(64,))
    x = _qact("quantized_relu(2)")(x_in)
    x = _qdense(20, kernel_quantizer=quantized_po2(4, max_value=1),
                bias_quantizer=quantized_bits(2, 0, symmetric=1, alpha=None))(x)
    x = _qact("quantized_relu(3,1)")(x)
    x = _qdense(10, kernel_quantizer=quantized_bits(4, 0, symmetric=1, alpha=1),
                bias_quantizer=quantized_bits(4, 0, symmetric=1, alpha=None))(x)
    return Model(x_in, Activation("softmax")(x))


@case("jet_tagger_3layer", "test_accuracy (example qkeras_3layer: 16-64-32-32-5, softmax inline)")
def _jet_tagger() -> Any:
    q = "quantized_bits(6, 0, alpha=1)"
    layers = [_qdense(64, input_shape=(16,), kernel_quantizer=q, bias_quantizer=q, name="fc1"),
              _qact("quantized_relu(6)", name="relu1")]
    for i, units in ((2, 32), (3, 32)):
        layers += [_qdense(units, kernel_quantizer=q, bias_quantizer=q, name=f"fc{i}"),
                   _qact("quantized_relu(6)", name=f"relu{i}")]
    layers.append(_qdense(5, kernel_quantizer=q, bias_quantizer=q, activation="softmax", name="output"))
    return _seq(*layers)


def _all_cases() -> dict[str, tuple[str, Builder]]:
    if "special_tanh8" not in CASES:  # registered on first use: they need QKeras's quantizers
        _register_single_activations()
    return CASES


def randomize(model, seed: int = SEED) -> None:
    """Small random weights (fixed seed) and non-trivial BatchNormalization statistics."""
    import numpy as np

    if getattr(model, "_bench_keep_weights", False):
        return
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for var in layer.weights:
            name, shape = var.name.split("/")[-1], tuple(var.shape)
            if "gamma" in name:
                new.append(rng.uniform(0.5, 1.5, shape))
            elif "beta" in name or "moving_mean" in name:
                new.append(rng.uniform(-0.5, 0.5, shape))
            elif "moving_variance" in name:
                new.append(rng.uniform(0.5, 2.0, shape))
            elif "bias" in name:
                new.append(rng.uniform(-0.25, 0.25, shape))
            elif "kernel" in name:
                new.append(rng.normal(0.0, 0.5, shape))
            else:  # a quantizer's or a fused layer's own state: leave it
                new.append(var.numpy())
        if new:
            layer.set_weights([np.asarray(w, dtype=np.float32) for w in new])


# --- one model, in its own interpreter ----------------------------------------------------------

def _message(exc: BaseException) -> str:
    """``Type: message`` on one line; a long message (TensorFlow's) keeps its start and its end."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else f"{text[:140]} ... {text[-150:]}"
    return f"{type(exc).__name__}: {text}"


def _outcome(report) -> dict[str, Any]:
    """What a finished `trigger synth` says: bit-exact, flagged (with its layers) or WRONG (unflagged)."""
    csim = report.csim
    fraction = csim.bit_exact_fraction
    inexact = [dict(d) for d in csim.inexact_layers]
    if fraction == 1.0:
        outcome = "bit-exact"
    elif inexact:
        outcome = "flagged"
    else:
        outcome = "WRONG"
    return {"outcome": outcome, "bit_exact_fraction": fraction, "max_abs_diff": csim.max_abs_diff,
            "inexact_layers": inexact, "input_type": report.model.input_type,
            "output_kind": csim.output.kind if csim.output is not None else None,
            "compared": csim.compared, "io": report.config.io}


def run_trigger(model_path: Path, out: Path) -> dict[str, Any]:
    """`trigger synth` in-process with the default config: the outcome record of one model."""
    from trigger.config import SynthConfig
    from trigger.errors import TriggerError
    from trigger.stages import synthesize

    t0 = time.perf_counter()
    try:
        result = synthesize(model_path, config=SynthConfig(), out=out, force=True)
        record = _outcome(result.report)
    except TriggerError as exc:
        text = str(exc)
        outcome = "refused" if "\n" not in text.strip() else "error"
        if text.startswith("g++ failed to compile"):  # our generated project, not the user's model
            outcome = "g++-failed"
        record = {"outcome": outcome, "message": text}
    except Exception as exc:  # noqa: BLE001  (the bug this benchmark looks for)
        record = {"outcome": "error", "message": _message(exc),
                  "traceback": traceback.format_exc()[-3000:]}
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return record


def run_plain(model, input_type: str | None, io: str, folder: Path) -> dict[str, Any]:
    """Plain hls4ml beside it: ``config_from_keras_model(granularity='name')``, its defaults, the
    same kind of random events on the input grid; the fraction of outputs equal to QKeras's."""
    import hls4ml
    import numpy as np

    from trigger.firmware.convert import grid_inputs

    t0 = time.perf_counter()
    try:
        x = grid_inputs(input_type or "fixed<16,6>", tuple(model.input_shape[1:]), PLAIN_EVENTS, seed=42)
        config = hls4ml.utils.config_from_keras_model(model, granularity="name")
        hls_model = hls4ml.converters.convert_from_keras_model(model, hls_config=config, output_dir=str(folder),
                                                               io_type=f"io_{io}")
        hls_model.compile()
        y_k = np.asarray(model.predict(x, verbose=0)).reshape(len(x), -1)
        y_h = np.asarray(hls_model.predict(np.ascontiguousarray(x))).reshape(len(x), -1)
        if set(np.unique(y_k)) <= {-1.0, 1.0} and set(np.unique(y_h)) <= {0.0, 1.0}:
            y_h = np.where(y_h == 0, -1.0, 1.0)  # hls4ml's XNOR encoding of a binary output
        record = {"bit_exact_fraction": float(np.mean(y_h == y_k)),
                  "max_abs_diff": float(np.max(np.abs(y_h - y_k)))}
    except Exception as exc:  # noqa: BLE001
        record = {"error": _message(exc)[:200]}
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return record


def worker(name: str, scratch: Path, plain: bool) -> dict[str, Any]:
    """Build model ``name``, save it as .h5 with Keras, run it through `trigger synth` (and plain hls4ml)."""
    import numpy as np
    import tensorflow as tf

    source, build = _all_cases()[name]
    record: dict[str, Any] = {"name": name, "source": source}
    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    try:
        model = build()
        randomize(model)
        path = scratch / f"{name}.h5"
        model.save(path, include_optimizer=False)
    except Exception as exc:  # noqa: BLE001  (QKeras 0.9.0 cannot build some layers on TF 2.14)
        record.update(outcome="not-buildable", message=_message(exc))
        return record
    record["model_kind"] = "Sequential" if type(model).__name__ == "Sequential" else "functional"
    record["model_file"] = str(path)
    record.update(run_trigger(path, scratch / f"{name}_prj"))
    if plain:
        record["plain_hls4ml"] = run_plain(model, record.get("input_type"), record.get("io") or "parallel",
                                           scratch / f"{name}_plain")
    return record


# --- the run ------------------------------------------------------------------------------------

def run_one(name: str, scratch: Path, plain: bool, timeout: float) -> dict[str, Any]:
    """One model in a fresh interpreter (its own process group, stopped after ``timeout`` seconds)."""
    result = scratch / f"{name}.json"
    cmd = [sys.executable, __file__, "--worker", name, "--scratch", str(scratch)] + (["--plain"] if plain else [])
    t0 = time.perf_counter()
    log = (scratch / f"{name}.log").open("w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""))
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker and its g++
        proc.wait()
        return {"name": name, "source": _all_cases()[name][0], "outcome": "timeout",
                "message": f"stopped after {timeout:.0f} s", "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        log.close()
    if code != 0 or not result.is_file():
        tail = (scratch / f"{name}.log").read_text(errors="replace").strip().splitlines()[-3:]
        return {"name": name, "source": _all_cases()[name][0], "outcome": "crash",
                "message": f"exit code {code}: {' | '.join(tail)[:300]}", "seconds": round(time.perf_counter() - t0, 1)}
    record = json.loads(result.read_text())
    record["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return record


OUTCOMES = ["bit-exact", "flagged", "refused", "not-buildable", "WRONG", "g++-failed", "error", "timeout", "crash"]


def _cell(record: dict[str, Any], width: int = 10_000) -> str:
    """The outcome column: the refusal's line (its first ``width`` characters), the flagged layers or the error."""
    out = record["outcome"]
    if out == "flagged":
        return "flagged: " + ", ".join(d.get("layer", "?") for d in record.get("inexact_layers", []))
    if "message" in record:
        message = record["message"] if len(record["message"]) <= width else record["message"][:width] + " ..."
        return f"{out}: {message}".replace("|", "\\|").replace("\n", " ")
    return out


def table(records: list[dict[str, Any]], plain: bool) -> str:
    """The markdown table, one row per model."""
    head = "| model | from hls4ml test | kind | outcome | bit-exact | input type | output | io | s |"
    rule = "|---|---|---|---|---|---|---|---|---|"
    if plain:
        head, rule = head + " plain hls4ml bit-exact |", rule + "---|"
    rows = [head, rule]
    for r in records:
        frac = r.get("bit_exact_fraction")
        row = (f"| {r['name']} | {r['source']} | {r.get('model_kind', '')} | {_cell(r, 160)} | "
               f"{'' if frac is None else f'{frac:.4f}'} | {r.get('input_type') or ''} | {r.get('output_kind') or ''} | "
               f"{r.get('io') or ''} | {r.get('seconds', '')} |")
        if plain:
            p = r.get("plain_hls4ml") or {}
            pf = p.get("bit_exact_fraction")
            row += f" {p.get('error') or ('' if pf is None else f'{pf:.4f}')} |"
        rows.append(row)
    return "\n".join(rows)


def summary(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many models ended in each outcome."""
    return {o: sum(r["outcome"] == o for r in records) for o in OUTCOMES if any(r["outcome"] == o for r in records)}


def write_docs(records: list[dict[str, Any]], plain: bool, command: str, seconds: float) -> None:
    """docs/user_models.md and docs/user_models.json, each written atomically."""
    from trigger.runtime import atomic_path

    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    counts = summary(records)
    meta = {"command": command, "date": date, "hls4ml_tests": f"fastmachinelearning/hls4ml {HLS4ML_TAG} "
            f"({HLS4ML_COMMIT})", "seconds": round(seconds), "summary": counts, "models": records}
    text = "\n".join([
        "# `trigger synth` on the QKeras models of hls4ml's test suite", "",
        f"Made by `{command}` on {date} ({seconds / 60:.0f} min); the models are rebuilt from the QKeras "
        f"tests of fastmachinelearning/hls4ml {HLS4ML_TAG} (commit {HLS4ML_COMMIT}): test/pytest/test_qkeras.py, "
        "test_binary_cnn.py and the example models of test_cnn_mnist_qkeras.py and the jet-tagging test "
        "(our own code, random weights with a fixed seed; see the script's docstring). Default SynthConfig, "
        "random events on the input grid. Outcomes: bit-exact, flagged (not bit-exact, the inexact layers "
        "named in the report), refused (one line); WRONG / g++-failed / error / timeout / crash are bugs. "
        "The full messages and inexact-layer reasons are in docs/user_models.json.", "",
        *(["Plain hls4ml: `config_from_keras_model(model, granularity='name')`, its defaults, the io trigger "
           f"chose, {PLAIN_EVENTS} events on the same input grid; the fraction of its outputs equal to QKeras's "
           "(a classifier's softmax probabilities, where trigger compares the logits; a binary output "
           "mapped from hls4ml's 0/1 to -1/+1).", ""] if plain else []),
        "Summary: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" (of {len(records)})", "",
        table(records, plain), ""])
    for path, content in ((REPO / "docs/user_models.md", text),
                          (REPO / "docs/user_models.json", json.dumps(meta, indent=1, default=str) + "\n")):
        with atomic_path(path, force=True) as tmp:
            tmp.write_text(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print the model names and their hls4ml tests")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this model (repeatable); "
                        "the table is printed, docs/ is not written")
    parser.add_argument("--plain", action="store_true", help="also plain hls4ml (config_from_keras_model)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per model (default 300)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the .h5 files and projects in this folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = _all_cases()
    if args.worker:
        record = worker(args.worker, args.scratch, args.plain)
        (args.scratch / f"{args.worker}.json").write_text(json.dumps(record, default=str))
        return
    if args.list:
        for name, (source, _) in cases.items():
            print(f"{name:42s} {source}")
        return
    unknown = [n for n in args.only or [] if n not in cases]
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}; see --list")
    names = args.only or list(cases)
    command = "python benchmarks/bench_user_models.py" + (" --plain" if args.plain else "")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_user_models_") as tmp:
        scratch = args.keep or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        records = []
        for name in names:
            records.append(run_one(name, scratch.resolve(), args.plain, args.timeout))
            r = records[-1]
            print(f"{name}: {_cell(r)[:200]} ({r.get('bit_exact_fraction')}, {r.get('seconds')} s)", flush=True)
    print(table(records, args.plain))
    print("summary:", summary(records))
    if not args.only:
        write_docs(records, args.plain, command, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
