"""C simulation of the hls4ml project compared with the QKeras model.

The firmware is compared on the values it computes exactly: the logits of a classifier (hls4ml's
softmax is a lookup table and never bit-exact) and the outputs of any other model (an anomaly score).
The ``output`` block then compares what the firmware outputs (``SynthConfig.output``: the logits, an
argmax one-hot or the softmax probabilities) with the model at that output. The reference is the QKeras model evaluated exactly in
float64 (:mod:`trigger.firmware.reference`); the agreement with QKeras's own float32 output is given
beside it, because float32 rounds wherever the fixed-point value needs more than 24 significant bits.
When outputs differ, hls4ml's layer tracing finds the first layer whose values differ.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from trigger.contracts import ModelMeta
from trigger.errors import TriggerError
from trigger.firmware.project import compile_relocatable
from trigger.ir.evaluate import evaluate
from trigger.ir.keras import from_keras
from trigger.ir import network as ir
from trigger.ir.network import Network
from trigger.ir.quantizers import Quantizer, Unsupported
from trigger.models.graph import anomaly_score_from_outputs, logits_cut
from trigger.models.training import require_finite
from trigger.runtime import log

# operations hls4ml folds away: their value is carried by the node they read from
PASS_THROUGH = (ir.Activate, ir.Identity, ir.Reshape, ir.Input)


def compared_layer(network: Network) -> tuple[str, bool]:
    """(name of the layer compared bit for bit, whether the model ends in a softmax layer: its
    logits are compared)."""
    return network.output.node, network.output.kind == "logits"


def _activation_name(node: ir.Node) -> str:
    """The name hls4ml gives the node it splits a layer's own activation into (``<layer>_<name>``)."""
    function = getattr(node.op, "activation", getattr(node.op, "function", None))
    if isinstance(function, Quantizer):  # hls4ml names split nodes after quantized_* classes only
        return function.name if function.name.startswith("quantized_") else ""
    return function.name if isinstance(function, ir.FloatActivation) else ""


def hls_source(network: Network, hls_names: set[str], name: str) -> str | None:
    """The hls4ml layer that holds the value of layer ``name`` (itself, the node hls4ml split its
    inline activation or scale into, or the layer a removed linear activation was folded into)."""
    node = network.by_name[name]
    while True:
        act_name = _activation_name(node)
        suffixes = ["_alpha"] + ([f"_{act_name}"] if act_name and act_name != "linear" else [])
        for suffix in suffixes:  # auto_po2 scale node; inline activation node
            if node.name + suffix in hls_names:
                return node.name + suffix
        if node.name in hls_names:
            return node.name
        if not isinstance(node.op, PASS_THROUGH) or len(node.inputs) != 1:
            return None
        node = network.by_name[node.inputs[0]]


#: where the output of hls4ml's build of the C-simulation library goes, in the project folder
BUILD_LOG = "csim_build.log"
#: how to get a C++ compiler, for the one-line errors
INSTALL_GXX = "install it (Debian/Ubuntu: `apt-get install g++` or build-essential; Fedora/RHEL: `dnf install gcc-c++`)"
_PROBE = "#include <cstdint>\n#include <cmath>\nint main() { return static_cast<int>(std::sqrt(0.0)); }\n"


class CsimBuildError(TriggerError):
    """g++ failed on the generated project; ``log`` holds the compiler's output, ``first_error`` its
    first error line."""

    def __init__(self, message: str, log: Path, first_error: str):
        super().__init__(message)
        self.log, self.first_error = log, first_error


def require_compiler() -> str:
    """The path of ``g++`` if it is on PATH and compiles a small C++ program (syntax only, 0.1-0.3
    s), else one :class:`TriggerError` line naming what is missing and how to install it."""
    gxx = shutil.which("g++")
    if gxx is None:
        raise TriggerError(f"g++ is not on PATH; trigger synth compiles the C simulation with it: {INSTALL_GXX}")
    try:
        proc = subprocess.run([gxx, "-fsyntax-only", "-xc++", "-"], input=_PROBE, capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TriggerError(f"g++ ({gxx}) does not run ({exc}); {INSTALL_GXX}") from None
    if proc.returncode != 0:
        raise TriggerError(f"g++ ({gxx}) cannot compile a small C++ program (exit {proc.returncode}: "
                           f"{first_error_line(proc.stdout + proc.stderr)}); repair or {INSTALL_GXX}")
    return gxx


def first_error_line(output: str) -> str:
    """The first line of compiler output that reports an error (else its last line), shortened."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    hits = [line for line in lines if "error" in line.lower() or "not found" in line.lower()]
    line = (hits or lines[-1:] or ["no output"])[0]
    return line if len(line) <= 200 else line[:197] + "..."


def _compile_traced(hls_model) -> float:
    """Compile once with tracing compiled in; returns the seconds it took.

    hls4ml's build prints the compiler's output only when it fails, then raises a bare Exception; that
    output is written to ``<project>/csim_build.log`` and the failure is a :class:`CsimBuildError`
    (a successful build writes no log: hls4ml discards the compiler's output then)."""
    t0 = time.perf_counter()
    hls_model.config.trace_output = True
    if hls_model._top_function_lib is None:
        log_path = Path(hls_model.config.get_output_dir()) / BUILD_LOG
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                compile_relocatable(hls_model)  # finds its weights wherever the folder is moved
        except Exception as exc:
            if type(exc) is not Exception or not str(exc).startswith("Failed to compile"):
                raise
            log_path.write_text(captured.getvalue())
            first = first_error_line(captured.getvalue())
            raise CsimBuildError(f"g++ failed to compile the generated C simulation: {first}; "
                                 f"the full output is in {log_path}", log_path, first) from None
    return time.perf_counter() - t0


def _trace(hls_model, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """hls4ml's layer tracing without its unconditional recompile (the library already has it)."""
    hls_model.compile = lambda: None  # trace() recompiles with tracing; ours was compiled with it
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # hls4ml prints "Recompiling ..." regardless
            out, traces = hls_model.trace(x)
    finally:
        del hls_model.compile  # back to the class's method
    return np.asarray(out), traces


def _agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    diff = np.abs(a - b)
    return {"fraction_equal": float(np.mean(a == b)), "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "n_values": int(a.size)}


def binary_output_decoded(network: Network, hls_model, hls_out: np.ndarray) -> np.ndarray:
    """The firmware's output as QKeras's values: a model ending in a ±1 ``binary()`` quantizer gets a
    1-bit unsigned output from hls4ml whose 0 stands for -1 (measured on hls4ml's btnn test model:
    0.52 equal undecoded, the share of +1 outputs); any other output unchanged."""
    last = network.by_name[network.outputs[0]].op
    q = last.function if isinstance(last, ir.Activate) else None
    if not isinstance(q, Quantizer) or q.kind != "binary" or q.use_01:
        return hls_out
    precision = str(hls_model.get_output_variables()[0].type.precision)
    if not precision.startswith(("ap_uint<1>", "uint<1>", "ap_ufixed<1,")):
        return hls_out
    return 2.0 * hls_out - 1.0


def run_csim(hls_model, keras_model, x: np.ndarray, *, labels: np.ndarray | None = None,
             meta: ModelMeta | None = None, teacher=None, teacher_x: np.ndarray | None = None,
             inexact: list[dict] | None = None, output: str = "softmax") -> dict[str, Any]:
    """Compile the project, run it on ``x`` and compare with ``keras_model``; the ``csim`` block of
    report.json.

    ``x``: inputs as the model sees them (after the model file's input transform). ``labels`` (with
    ``meta``: task, class_names) add the physics metric of QKeras, csim and the float ``teacher``
    (which reads ``teacher_x``, default ``x``). ``inexact``: layers known not to be exact, reported.
    ``output``: what the firmware of a classifier ending in a softmax outputs (``SynthConfig.output``);
    the ``output`` block compares that output with the model (:func:`output_agreement`).
    """
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise TriggerError(f"model {keras_model.name} has {len(keras_model.inputs)} inputs and "
                           f"{len(keras_model.outputs)} outputs; trigger synth compares single-input, "
                           "single-output models (put the trigger decision, e.g. the score, in the model)")
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    meta = meta or ModelMeta()
    compile_s = _compile_traced(hls_model)
    t0 = time.perf_counter()
    hls_out, traces = _trace(hls_model, x64)
    predict_out = np.asarray(hls_model.predict(x64))
    run_s = time.perf_counter() - t0
    hls_out = predict_out.reshape(len(x), -1)

    network = from_keras(keras_model)
    name, softmax = compared_layer(network)
    hls_names = {layer.name for layer in hls_model.get_layers()}
    source = hls_source(network, hls_names, name)
    if softmax:
        if source is None or source not in traces:
            raise RuntimeError(f"no hls4ml trace holds the logits of Keras layer {name}")
        firmware = traces[source].reshape(len(x), -1)
    else:
        firmware = binary_output_decoded(network, hls_model, hls_out)

    compared_model = logits_cut(keras_model)[0] if softmax else keras_model
    qkeras_f32 = np.asarray(compared_model.predict(x.astype(np.float32), verbose=0, batch_size=1024))
    result: dict[str, Any] = {
        "n_events": int(len(x)), "compared": "logits" if softmax else "outputs", "compared_layer": name,
        "hls_layer": source if softmax else "output",
        "reference": "QKeras evaluated exactly in float64",
        "float32": _agreement(firmware, qkeras_f32),
        "compile_seconds": round(compile_s, 2), "run_seconds": round(run_s, 2),
    }
    try:
        exact = evaluate(network, x64, keep=True)
    except Unsupported as exc:
        log.warning("exact reference unavailable (%s): comparing with float32 QKeras only", exc)
        exact = None
        result["reference"] = f"QKeras float32 (exact evaluation unavailable: {exc})"
    if exact is not None:
        exact_cmp = exact[name]
        agree = _agreement(firmware, exact_cmp)
        result.update(bit_exact_fraction=agree["fraction_equal"], max_abs_diff=agree["max_abs_diff"],
                      n_values=agree["n_values"])
        result["first_differing_layer"] = None if agree["fraction_equal"] == 1.0 else \
            first_differing_layer(network, exact, traces, hls_names, len(x))
    else:
        agree = result["float32"]
        result.update(bit_exact_fraction=agree["fraction_equal"], max_abs_diff=agree["max_abs_diff"],
                      n_values=agree["n_values"], first_differing_layer=None)
    if softmax:
        ref_logits = exact[name] if exact is not None else qkeras_f32
        result.update(_softmax_blocks(keras_model, x, firmware, hls_out, ref_logits, output))
    else:
        result["output"] = {"kind": "outputs", "n_events": int(len(x)),
                            "bit_exact_fraction": result["bit_exact_fraction"]}
    result["inexact_layers"] = list(inexact or [])
    if labels is not None:
        result["physics"] = physics(keras_model, hls_out, labels, meta, x, teacher, teacher_x,
                                    csim_logits=firmware if softmax else None,
                                    table_out=hls_out if softmax and output == "softmax" else None)
    return result


def _softmax_blocks(keras_model, x: np.ndarray, firmware: np.ndarray, hls_out: np.ndarray,
                    ref_logits: np.ndarray, output: str) -> dict[str, Any]:
    """The ``softmax`` block (argmax agreement of the bit-exact logits) and the ``output`` block of a
    classifier ending in a softmax layer."""
    n = len(x)
    qk_probs = np.asarray(keras_model.predict(x.astype(np.float32), verbose=0, batch_size=1024))
    return {
        "softmax": {
            "argmax_agreement_logits": float(np.mean(firmware.argmax(1) == np.asarray(ref_logits).reshape(n, -1).argmax(1))),
            "note": "the logits are compared bit for bit; the firmware's own output is in 'output'"},
        "output": output_agreement(output, hls_out, ref_logits, qk_probs),
    }


def output_agreement(output: str, hls_out: np.ndarray, ref_logits: np.ndarray, qk_probs: np.ndarray) -> dict:
    """How the firmware's output of a classifier agrees with the model at that output.

    ``logits``: the fraction of logits equal to the exact QKeras logits ``ref_logits``; ``argmax``:
    the fraction of events whose one-hot output marks QKeras's most probable class; ``softmax``: that
    argmax agreement and the largest difference from QKeras's probabilities ``qk_probs``. Each also
    gives the argmax agreement, so the three choices compare on one number.
    """
    n = len(hls_out)
    hls_out = np.asarray(hls_out, dtype=np.float64).reshape(n, -1)
    qk_probs = np.asarray(qk_probs, dtype=np.float64).reshape(n, -1)
    block: dict[str, Any] = {"kind": output, "n_events": int(n),
                             "argmax_agreement": float(np.mean(hls_out.argmax(1) == qk_probs.argmax(1)))}
    if output == "logits":
        block["bit_exact_fraction"] = _agreement(hls_out, ref_logits)["fraction_equal"]
    elif output == "argmax":
        block["one_hot_fraction"] = float(np.mean((hls_out.sum(1) == 1) & (hls_out.max(1) == 1)))
    else:
        block["max_abs_diff_probabilities"] = float(np.abs(hls_out - qk_probs).max())
    return block


def first_differing_layer(network: Network, exact: dict[str, np.ndarray], traces: dict[str, np.ndarray],
                          hls_names: set[str], n: int) -> dict | None:
    """The first layer (in evaluation order) whose hls4ml trace differs from the exact value."""
    for layer_name, value in exact.items():
        source = hls_source(network, hls_names, layer_name)
        if source is None or source not in traces:
            continue
        if any(hls_source(network, hls_names, child) == source for child in network.consumers.get(layer_name, ())):
            continue  # the node holds a later layer's value (an activation folded into it): compared there
        traced = traces[source].reshape(n, -1)
        ref = np.asarray(value).reshape(n, -1)
        if traced.shape != ref.shape:
            continue
        agree = _agreement(traced, ref)
        if agree["fraction_equal"] < 1.0:
            return {"layer": layer_name, "hls_layer": source, **agree}
    return None


def physics(keras_model, csim_out: np.ndarray, labels: np.ndarray, meta: ModelMeta, x: np.ndarray,
            teacher=None, teacher_x: np.ndarray | None = None,
            csim_logits: np.ndarray | None = None, table_out: np.ndarray | None = None) -> dict:
    """Physics metric of QKeras (float32), the C simulation and the float teacher on the same events.

    For a classifier ending in a softmax, ``csim`` is computed from the firmware's (bit-exact)
    ``csim_logits``; if its firmware outputs probabilities through hls4ml's softmax tables,
    ``csim_softmax_table`` is computed from them (``table_out``), so the cost of the tables is visible.
    """
    from trigger.report.metrics import evaluate, softmax

    names = list(meta.class_names or [])
    qkeras_out = require_finite(np.asarray(keras_model.predict(x.astype(np.float32), verbose=0, batch_size=1024)),
                                f"model '{keras_model.name}'")
    teacher_out = None
    if teacher is not None:  # a teacher with NaN outputs would fail in the metrics, not here
        tx = x if teacher_x is None else teacher_x
        teacher_out = require_finite(teacher.predict(np.asarray(tx, dtype=np.float32), verbose=0, batch_size=1024),
                                     f"teacher '{teacher.name}'")
    out: dict[str, Any] = {}
    if meta.task == "anomaly":
        names = names or ["background"] + [f"signal_{k}" for k in range(1, int(labels.max()) + 1)]
        metric = "mean_auc"
        for role, scores in (("qkeras", qkeras_out), ("csim", csim_out), ("teacher", teacher_out)):
            score = _anomaly_score(scores, x if role != "teacher" else (teacher_x if teacher_x is not None else x))
            if score is not None:
                m = evaluate(labels, score, "anomaly", names)
                out[role] = {"mean_auc": m["mean_auc"], "auc": m["auc"], "efficiency": m["efficiency"],
                             "rate_khz": m["rate_resolved_khz"]}
        out["metric"] = metric
    else:
        names = names or [str(k) for k in range(csim_out.shape[1])]
        if csim_logits is not None:
            csim_out = softmax(np.asarray(csim_logits).reshape(len(x), -1))
        for role, probs in (("qkeras", qkeras_out), ("csim", csim_out), ("csim_softmax_table", table_out),
                            ("teacher", teacher_out)):
            if probs is None:
                continue
            probs = np.asarray(probs, dtype=np.float64).reshape(len(x), -1)
            if probs.shape[1] != len(names):
                continue
            m = evaluate(labels, probs, "classification", names)
            out[role] = {"accuracy": m["accuracy"], "mean_auc": m["mean_auc"], "auc": m["auc"]}
        out["metric"] = "accuracy"
        if "qkeras" in out:
            out["argmax_agreement_csim_qkeras"] = float(np.mean(
                np.asarray(csim_out).reshape(len(x), -1).argmax(1) == qkeras_out.reshape(len(x), -1).argmax(1)))
        if teacher_out is not None:
            out["argmax_agreement_csim_teacher"] = float(np.mean(
                np.asarray(csim_out).reshape(len(x), -1).argmax(1) == np.asarray(teacher_out).reshape(len(x), -1).argmax(1)))
    out["n_events"] = int(len(x))
    return out


def _anomaly_score(output, x: np.ndarray) -> np.ndarray | None:
    """The anomaly score of a role's outputs on ``x`` (the one definition,
    :func:`trigger.models.graph.anomaly_score_from_outputs`), or None for a role without outputs."""
    if output is None or isinstance(output, (list, tuple)):
        return None
    return anomaly_score_from_outputs(output, x)
