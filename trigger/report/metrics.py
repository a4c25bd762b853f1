"""Physics metrics shared by every stage (train, compress, synth, the CI comparisons).

Taggers: accuracy, one-vs-rest ROC AUC per class and background rejection at fixed signal
efficiency. Anomaly trigger: ROC AUC per signal and signal efficiency at a fixed trigger rate
(1 kHz of the 40 MHz LHC collision rate, i.e. a false-positive rate of 2.5e-5 on background).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

LHC_RATE_KHZ = 40_000.0
TARGET_RATE_KHZ = 1.0
TARGET_FPR = TARGET_RATE_KHZ / LHC_RATE_KHZ  # 2.5e-5


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (firmware compares logits; metrics use probabilities)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def is_constant(outputs: np.ndarray) -> bool:
    """True when a model gave every event the same output (each output column one value): it has
    learned nothing, whatever its metric says (an AUC of 0.5, the accuracy of one class)."""
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    return len(out) > 1 and bool(np.all(out.max(axis=0) == out.min(axis=0)))


def classifier_metrics(y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
                       signal_efficiencies: Sequence[float] = (0.5, 0.3)) -> dict:
    """Accuracy, one-vs-rest AUC and background rejection (1/FPR) at fixed efficiency per class.

    ``probabilities`` are class probabilities (pass logits through :func:`softmax` first).
    """
    y_true = np.asarray(y_true).astype(int)
    p = np.asarray(probabilities, dtype=np.float64)
    out: dict = {"accuracy": float(np.mean(p.argmax(axis=1) == y_true)), "auc": {}, "rejection": {},
                 "n_events": int(len(y_true))}
    for k, name in enumerate(class_names):
        is_k = y_true == k
        if is_k.all() or not is_k.any():
            continue  # AUC undefined without both classes
        out["auc"][name] = float(roc_auc_score(is_k, p[:, k]))
        fpr, tpr, _ = roc_curve(is_k, p[:, k])
        out["rejection"][name] = {f"{eff:g}": _rejection(fpr, tpr, eff) for eff in signal_efficiencies}
    out["mean_auc"] = float(np.mean(list(out["auc"].values()))) if out["auc"] else float("nan")
    return out


def _rejection(fpr: np.ndarray, tpr: np.ndarray, efficiency: float) -> float | None:
    """1/FPR at the first point of the ROC curve reaching ``efficiency`` (None if FPR is 0 there)."""
    idx = int(np.searchsorted(tpr, efficiency, side="left"))
    idx = min(idx, len(fpr) - 1)
    return None if fpr[idx] == 0 else float(1.0 / fpr[idx])


def anomaly_threshold(background_scores: np.ndarray, target_fpr: float = TARGET_FPR) -> tuple[float, float]:
    """The score threshold that keeps ``target_fpr`` of background, or the smallest resolvable rate.

    With N background events the smallest false-positive rate that can be resolved is 1/N; below
    that the threshold would be set by a single event. Returns (threshold, fpr actually used).
    """
    bg = np.sort(np.asarray(background_scores, dtype=np.float64).ravel())
    n = len(bg)
    if n == 0:
        raise ValueError("no background events to set a trigger threshold")
    fpr_used = max(target_fpr, 1.0 / n)
    n_pass = max(1, int(np.floor(fpr_used * n)))
    # events strictly above the threshold pass; keep exactly n_pass background events
    threshold = float(bg[n - n_pass - 1]) if n_pass < n else float(bg[0]) - 1.0
    return threshold, n_pass / n


def anomaly_metrics(labels: np.ndarray, scores: np.ndarray, signal_names: Sequence[str],
                    target_fpr: float = TARGET_FPR) -> dict:
    """ROC AUC per signal and signal efficiency at a fixed trigger rate.

    ``labels``: 0 for Standard-Model background, k for the k-th name of ``signal_names``.
    If the sample is too small to resolve ``target_fpr``, the efficiency is given at the smallest
    resolvable rate and ``rate_resolved_khz`` says which.
    """
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    bg = scores[labels == 0]
    threshold, fpr_used = anomaly_threshold(bg, target_fpr)
    out: dict = {
        "auc": {}, "efficiency": {}, "threshold": threshold,
        "target_rate_khz": target_fpr * LHC_RATE_KHZ, "rate_resolved_khz": fpr_used * LHC_RATE_KHZ,
        "target_fpr": target_fpr, "fpr_used": fpr_used, "n_background": int(len(bg)),
        "resolved": bool(fpr_used <= target_fpr + 1e-15),
    }
    for k, name in enumerate(signal_names, start=1):
        sig = scores[labels == k]
        if len(sig) == 0:
            continue
        y = np.concatenate([np.zeros(len(bg)), np.ones(len(sig))])
        out["auc"][name] = float(roc_auc_score(y, np.concatenate([bg, sig])))
        out["efficiency"][name] = float(np.mean(sig > threshold))
    out["mean_auc"] = float(np.mean(list(out["auc"].values()))) if out["auc"] else float("nan")
    return out


def evaluate(labels: np.ndarray, outputs: np.ndarray, task: str, class_names: Sequence[str]) -> dict:
    """The metrics of a model's ``outputs`` on labelled events, one dispatch by task.

    ``classification``: ``outputs`` are class probabilities, ``class_names`` the classes
    (:func:`classifier_metrics`). ``anomaly``: ``outputs`` are scores, ``class_names`` the background
    name followed by the signal names (:func:`anomaly_metrics`).
    """
    if task == "classification":
        return classifier_metrics(labels, outputs, class_names)
    if task == "anomaly":
        return anomaly_metrics(labels, outputs, list(class_names)[1:])
    raise ValueError(f"unknown task {task!r}")


def headline(metrics: dict, task: str) -> str:
    """The one-line summary of :func:`evaluate`'s metrics printed by train and compress."""
    if task == "classification":
        return f"accuracy {metrics['accuracy']:.4f}, mean AUC {metrics['mean_auc']:.4f}"
    eff = ", ".join(f"{k} {v:.3f}" for k, v in metrics["efficiency"].items())
    return f"mean AUC {metrics['mean_auc']:.4f}, efficiency at {metrics['rate_resolved_khz']:g} kHz: {eff}"
