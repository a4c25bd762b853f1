"""PNG plots of a scan: the metric against LUT, DSP and latency with the budget lines, the teacher,
the reference student and the Pareto front; the metric over weight bits x sparsity."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from matplotlib.ticker import EngFormatter, SymmetricalLogLocator

from trigger.report.plots import pyplot, save_figure
from trigger.scan.results import TrialRecord, pareto_front


@dataclass(frozen=True)
class Marks:
    """What is drawn besides the trials: budget lines, the teacher and the reference student."""

    metric_name: str
    latency_budget_ns: float | None = None
    part_totals: dict[str, float] | None = None
    teacher_metric: float | None = None
    reference: TrialRecord | None = None


AXES = (("LUT", "LUT"), ("DSP", "DSP"), ("latency_ns", "latency [ns]"))


def pareto_plot(records: list[TrialRecord], marks: Marks, path: Path) -> Path:
    """Three panels: metric vs LUT, vs DSP, vs latency."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharey=True)
    done = [r for r in records if r.status == "complete" and r.metric is not None]
    front = pareto_front(records)
    for ax, (key, label) in zip(axes, AXES):
        _trials(ax, done, key)
        _best_at_most(ax, [r for r in done if r.fits_budget], key)
        # the front is non-dominated in all objectives at once: its projection on one axis is not a
        # curve, so its trials are marked and numbered, not joined
        for r in front:
            ax.scatter([getattr(r, key)], [r.metric], s=42, color="tab:red", zorder=3)
            ax.annotate(f"#{r.number}", (getattr(r, key), r.metric), textcoords="offset points",
                        xytext=(4, 3), fontsize=7, color="tab:red")
        if front:
            ax.scatter([], [], s=42, color="tab:red", label="Pareto front (in budget), #trial")
        _marks(ax, key, marks)
        if key != "latency_ns":  # trials and the part's totals span decades; 0 DSP stays visible
            ax.set_xscale("symlog", linthresh=1)
            low, high = ax.get_xlim()
            decades = math.log10(max(high, 10.0) / max(low, 1.0))
            ax.xaxis.set_major_locator(SymmetricalLogLocator(base=10, linthresh=1,
                                                             subs=[1] if decades > 4 else [1, 2, 5]))
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1M: readable between decades
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(marks.metric_name)
    axes[0].legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def _trials(ax, done: list[TrialRecord], key: str) -> None:
    inside = [(getattr(r, key), r.metric) for r in done if r.fits_budget]
    outside = [(getattr(r, key), r.metric) for r in done if not r.fits_budget]
    if inside:
        ax.scatter(*zip(*inside), s=18, color="tab:blue", label="trial in budget")
    if outside:
        ax.scatter(*zip(*outside), s=18, color="lightgrey", label="trial over budget")


def best_at_most(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(x, the best y of any point at x or less), by increasing x: what one resource alone buys."""
    envelope: list[tuple[float, float]] = []
    for x, y in sorted(points):
        envelope.append((x, max(y, envelope[-1][1]) if envelope else y))
    return envelope


def _best_at_most(ax, inside: list[TrialRecord], key: str) -> None:
    envelope = best_at_most([(getattr(r, key), r.metric) for r in inside if getattr(r, key) is not None])
    if envelope:
        ax.step(*zip(*envelope), where="post", color="tab:red", alpha=0.35, lw=1, label="best in budget at <= x")


def _marks(ax, key: str, marks: Marks) -> None:
    if key == "latency_ns" and marks.latency_budget_ns:
        ax.axvline(marks.latency_budget_ns, color="black", ls="--", label="latency budget")
    total = (marks.part_totals or {}).get(key)
    if total:
        ax.axvline(total, color="black", ls=":", label=f"{key} of the part")
    if marks.teacher_metric is not None:
        ax.axhline(marks.teacher_metric, color="tab:green", ls="--", label="teacher")
    ref = marks.reference
    if ref is not None and getattr(ref, key) is not None and ref.metric is not None:
        ax.scatter([getattr(ref, key)], [ref.metric], marker="*", s=160, color="tab:orange",
                   label="reference student", zorder=4)


def bits_sparsity_plot(records: list[TrialRecord], bits_key: str, sparsity_key: str, metric_name: str,
                       path: Path) -> Path:
    """The metric (colour) over weight bits x sparsity, one point per complete trial."""
    plt = pyplot()
    done = [r for r in records if r.status == "complete" and r.metric is not None
            and bits_key in r.params and sparsity_key in r.params]
    fig, ax = plt.subplots(figsize=(6, 4.4))
    points = ax.scatter([r.params[bits_key] for r in done], [r.params[sparsity_key] for r in done],
                        c=[r.metric for r in done], cmap="viridis", s=40)
    fig.colorbar(points, ax=ax, label=metric_name)
    ax.set_xlabel(bits_key)
    ax.set_ylabel(sparsity_key)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
