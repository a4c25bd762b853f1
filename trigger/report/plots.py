"""PNG plots of training runs: training curves, ROC curves, anomaly-score distributions.

matplotlib with the Agg backend (no display needed). Every function writes one file and returns
its path.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from trigger.report.metrics import TARGET_FPR

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_STYLES = {"teacher": "-", "student": "--"}


def pyplot() -> ModuleType:
    """matplotlib.pyplot with the Agg backend forced, so plots are written on a machine with no
    display; imported on first use so importing this module does not pull in matplotlib."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Lay out ``fig``, write it to ``path`` as a PNG, close it (freeing its memory) and return the
    path; every plot in the project is written through it."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def training_curves(histories: Mapping[str, Mapping[str, Sequence[float]]], path: str | os.PathLike,
                    *, title: str = "") -> Path:
    """Loss (and accuracy, when recorded) per epoch, training and validation, one panel column per
    model (teacher, student)."""
    plt = pyplot()
    roles = [r for r in histories if isinstance(histories[r], Mapping) and "loss" in histories[r]]
    has_acc = any(_first_key(histories[r], ("accuracy", "acc")) for r in roles)
    n_rows = 2 if has_acc else 1
    fig, axes = plt.subplots(n_rows, max(len(roles), 1), figsize=(5.2 * max(len(roles), 1), 3.6 * n_rows),
                             squeeze=False)
    for col, role in enumerate(roles):
        h = histories[role]
        epochs = np.arange(1, len(h["loss"]) + 1)
        ax = axes[0, col]
        ax.plot(epochs, h["loss"], label="training")
        if "val_loss" in h:
            ax.plot(epochs, h["val_loss"], label="validation")
        best = h.get("best_epoch")
        if isinstance(best, int):
            ax.axvline(best, color="grey", ls=":", label=f"best epoch {best}")
        ax.set_title(f"{role}: loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
        if has_acc:
            ax = axes[1, col]
            key = _first_key(h, ("accuracy", "acc"))
            if key:
                ax.plot(epochs, h[key], label="training")
                if f"val_{key}" in h:
                    ax.plot(epochs, h[f"val_{key}"], label="validation")
                ax.legend(fontsize=8)
            ax.set_title(f"{role}: accuracy")
            ax.set_xlabel("epoch")
            ax.set_ylabel("accuracy")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def _first_key(h: Mapping, keys: Sequence[str]) -> str | None:
    return next((k for k in keys if k in h), None)


def classifier_roc(y_true: np.ndarray, probabilities: Mapping[str, np.ndarray], class_names: Sequence[str],
                   path: str | os.PathLike, *, title: str = "") -> Path:
    """One-vs-rest ROC per class as signal efficiency vs background rejection (log scale), the way
    jet-tagging papers show them; solid teacher, dashed student, AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    y_true = np.asarray(y_true).astype(int)
    for k, name in enumerate(class_names):
        is_k = y_true == k
        if is_k.all() or not is_k.any():
            continue
        for role, p in probabilities.items():
            fpr, tpr, _ = roc_curve(is_k, p[:, k])
            keep = fpr > 0
            auc = roc_auc_score(is_k, p[:, k])
            ax.plot(tpr[keep], 1.0 / fpr[keep], _STYLES.get(role, "-."), color=colors[k % len(colors)],
                    label=f"{name} {role} (AUC {auc:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel("signal efficiency (true positive rate)")
    ax.set_ylabel("background rejection 1/FPR")
    ax.set_xlim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{title}: one-vs-rest ROC (test split)" if title else "one-vs-rest ROC (test split)")
    return save_figure(fig, path)


def anomaly_roc(labels: np.ndarray, scores: Mapping[str, np.ndarray], signal_names: Sequence[str],
                path: str | os.PathLike, *, title: str = "") -> Path:
    """ROC per signal vs Standard-Model background: signal efficiency against background FPR on a
    log axis with the trigger-rate line (2.5e-5 = 1 kHz of 40 MHz) and the smallest FPR the
    sample resolves."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = np.asarray(labels).astype(int)
    n_bg = int(np.sum(labels == 0))
    for k, name in enumerate(signal_names, start=1):
        if not np.any(labels == k):
            continue
        mask = (labels == 0) | (labels == k)
        for role, s in scores.items():
            s = np.asarray(s).ravel()
            fpr, tpr, _ = roc_curve(labels[mask] == k, s[mask])
            keep = fpr > 0
            auc = roc_auc_score(labels[mask] == k, s[mask])
            ax.plot(fpr[keep], tpr[keep], _STYLES.get(role, "-."), color=colors[(k - 1) % len(colors)],
                    label=f"{name} {role} (AUC {auc:.3f})")
    ax.axvline(TARGET_FPR, color="red", ls=":", label="1 kHz (FPR 2.5e-5)")
    if n_bg:
        ax.axvline(1.0 / n_bg, color="grey", ls=":", label=f"resolvable FPR 1/{n_bg}")
    ax.set_xscale("log")
    ax.set_xlim(min(TARGET_FPR, 1.0 / max(n_bg, 1)) / 2, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("background false-positive rate")
    ax.set_ylabel("signal efficiency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{title}: anomaly ROC (test split)" if title else "anomaly ROC (test split)")
    return save_figure(fig, path)


def score_distributions(labels: np.ndarray, scores: Mapping[str, np.ndarray], class_names: Sequence[str],
                        path: str | os.PathLike, *, title: str = "") -> Path:
    """Normalised histograms of the anomaly score per class (background and each signal), one panel
    per model, log-spaced bins."""
    plt = pyplot()
    roles = list(scores)
    fig, axes = plt.subplots(1, len(roles), figsize=(5.2 * len(roles), 3.8), squeeze=False)
    labels = np.asarray(labels).astype(int)
    for ax, role in zip(axes[0], roles):
        s = np.asarray(scores[role], dtype=np.float64).ravel()
        positive = s[s > 0]
        if len(positive):
            lo, hi = np.quantile(positive, 0.001), positive.max()
            bins = np.geomspace(max(lo, 1e-12), max(hi, lo * 10, 1e-11), 50)
            ax.set_xscale("log")
        else:
            bins = 50
        for k, name in enumerate(class_names):
            sel = s[labels == k]
            if len(positive):  # scores below the first log bin (zeros among them) are drawn in it
                sel = np.clip(sel, bins[0], None)
            if len(sel):
                ax.hist(sel, bins=bins, histtype="step", density=True, label=name, lw=1.5 if k == 0 else 1.0)
        ax.set_yscale("log")
        ax.set_xlabel("anomaly score")
        ax.set_ylabel("density")
        ax.set_title(f"{role}")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(f"{title}: anomaly score (test split)")
    return save_figure(fig, path)
