"""report.md of a firmware project (from its report.json), ``trigger report DIR`` and the demo's
headline table.

Every latency and resource figure is printed with its ``source``: ``vendor`` (the Vivado/Vitis HLS
C-synthesis report) or ``estimate`` (the analytic model of :mod:`trigger.firmware.estimate`); with a
vendor report the estimate is printed beside it. Without either, only the exact counts are shown.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trigger.contracts import RESOURCE_KEYS, Budget, Csim, CsimOutput, FirmwareReport, TrainMetrics
from trigger.errors import TriggerError


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.{digits}g}" if not value.is_integer() else f"{int(value)}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out


def budget_verdict(budget: Budget) -> str:
    """The Level-1 verdict of :func:`trigger.firmware.synth.trigger_budget` in one line: 'fits (latency
    75/100 ns, new event every 5/25 ns)', naming any resource over the part. The one budget sentence:
    the synth summary, report.md and the model cards all print it."""
    budget = budget if isinstance(budget, Budget) else Budget.model_validate(budget)
    over = f"; {', '.join(budget.over_part)} over the part" if budget.over_part else ""
    return (f"{'fits' if budget.fits else 'does NOT fit'} (latency {budget.latency_ns:g}/"
            f"{budget.latency_budget_ns:g} ns, new event every {budget.interval_ns:g}/"
            f"{budget.interval_budget_ns:g} ns{over})")


def as_report(report: FirmwareReport | dict, *, source: str = "report") -> FirmwareReport:
    """``report`` as the typed :class:`FirmwareReport` (a dict is validated)."""
    return report if isinstance(report, FirmwareReport) else FirmwareReport.from_dict(report, source=source)


def render_markdown(report: FirmwareReport | dict) -> str:
    """The report.md text of one firmware project."""
    report = as_report(report)
    model, cfg = report.model, report.config
    out = report.csim.output if report.csim is not None else None
    lines = [f"# Firmware report: {model.name or '?'}", ""]
    lines += [f"- model: `{model.path}` (family {_fmt(model.family)}, task {_fmt(model.task)}, "
              f"{_fmt(model.params)} parameters, input type `{_fmt(model.input_type)}`)",
              f"- backend {cfg.backend}, part {cfg.part}, clock {_fmt(cfg.clock_ns)} ns, "
              f"reuse {cfg.reuse}, strategy {cfg.strategy}, io {cfg.io_type or cfg.io}"
              + (f", output {out.kind}" if out is not None and out.kind != "outputs" else ""),
              "- versions: " + ", ".join(f"{k} {v}" for k, v in cfg.versions.items()), ""]
    lines += ["## C simulation vs QKeras", ""]
    lines += _csim_lines(report.csim) if report.csim else ["No C simulation was run.", ""]
    lines += _latency_resource_lines(report)
    if report.layers:
        lines += ["## Layers", ""]
        rows = [[l.get("name"), l.get("class"), _code(l.get("result")), _code(l.get("accum")), _code(l.get("weight")),
                 l.get("multiplications"), l.get("nonzero_weights"), l.get("weights"), l.get("bops"), l.get("reuse")]
                for l in report.layers]
        lines += _table(["layer", "class", "result", "accum", "weight", "mults", "non-zero w", "weights",
                         "BOPs", "reuse"], rows) + [""]
    if report.recipe:
        lines += ["## Bit-exact recipe applied", ""]
        lines += [f"- `{r.get('layer')}`: {r.get('action')} ({r.get('why')})" for r in report.recipe] + [""]
    if report.timing:
        lines += ["Timing: " + ", ".join(f"{k.replace('_s', '')} {_fmt(v)} s" for k, v in report.timing.items()), ""]
    return "\n".join(lines)


def _csim_lines(csim: Csim) -> list[str]:
    lines = [f"Inputs: {csim.inputs or '-'}. Compared: {csim.compared} "
             f"(Keras layer `{csim.compared_layer}`); reference: {csim.reference}.", ""]
    f32 = csim.float32
    rows = [["bit-exact fraction (vs exact QKeras)", csim.bit_exact_fraction],
            ["max abs difference", csim.max_abs_diff],
            ["values compared", csim.n_values],
            ["equal to float32 QKeras output", f32.get("fraction_equal")],
            ["max abs difference vs float32 QKeras", f32.get("max_abs_diff")]]
    soft = csim.softmax
    if soft:
        rows.append(["argmax agreement of logits", soft.get("argmax_agreement_logits")])
        if "argmax_agreement_softmax" in soft:  # a report written before the `output` choice
            rows += [["argmax agreement after softmax (hls4ml LUT vs QKeras)", soft.get("argmax_agreement_softmax")],
                     ["max abs difference of probabilities", soft.get("max_abs_diff_probabilities")]]
    lines += _table(["quantity", "value"], rows) + [""]
    if csim.output is not None and csim.output.kind != "outputs":
        lines += [f"**Firmware output: {csim.output.kind}**: {output_summary(csim.output)}.", ""]
    first = csim.first_differing_layer
    if first:
        lines += [f"First differing layer: `{first.get('layer')}` (hls4ml `{first.get('hls_layer')}`): "
                  f"{_fmt(first.get('fraction_equal'))} equal, max |diff| {_fmt(first.get('max_abs_diff'))}.", ""]
    elif csim.bit_exact_fraction == 1.0:
        lines += ["Every compared value equals the QKeras value exactly.", ""]
    if csim.inexact_layers:
        lines += ["Layers that cannot be bit-exact:", ""]
        lines += [f"- `{e.get('layer')}`: {e.get('reason')}" for e in csim.inexact_layers] + [""]
    if csim.physics:
        lines += _physics_lines(csim.physics)
    return lines


OUTPUT_WHAT = {"logits": "the logits (no softmax in the firmware)",
               "argmax": "a one-hot of the largest logit (hls4ml's argmax)",
               "softmax": "probabilities through hls4ml's softmax tables"}


def output_summary(out: CsimOutput) -> str:
    """One line: what the firmware outputs and how it agrees with the model there."""
    parts = [OUTPUT_WHAT.get(out.kind, out.kind)]
    if out.bit_exact_fraction is not None:
        parts.append(f"bit-exact fraction {_fmt(out.bit_exact_fraction)}")
    if out.argmax_agreement is not None:
        parts.append(f"argmax agreement with QKeras {_fmt(out.argmax_agreement)}")
    if out.max_abs_diff_probabilities is not None:
        parts.append(f"max |probability difference| {_fmt(out.max_abs_diff_probabilities)} "
                     f"(bound 2^-8 = 0.0039)")
    return "; ".join(parts) + f" ({out.n_events} events)"


def _code(text: Any) -> str:
    return f"`{text}`" if text else "-"


def _physics_lines(phys: dict) -> list[str]:
    metric = phys.get("metric", "accuracy")
    roles = [r for r in ("teacher", "qkeras", "csim", "csim_softmax_table") if r in phys]
    lines = ["### Physics on the same events", ""]
    if metric == "accuracy":
        rows = [[r, phys[r].get("accuracy"), phys[r].get("mean_auc")] for r in roles]
        lines += _table(["model", "accuracy", "mean AUC"], rows)
        extra = [(k, phys[k]) for k in ("argmax_agreement_csim_qkeras", "argmax_agreement_csim_teacher") if k in phys]
    else:
        rows = [[r, phys[r].get("mean_auc"), _fmt_dict(phys[r].get("efficiency")), phys[r].get("rate_khz")]
                for r in roles]
        lines += _table(["model", "mean AUC", "signal efficiency at the rate", "rate (kHz)"], rows)
        extra = []
    lines += [""] + [f"- {k.replace('_', ' ')}: {_fmt(v)}" for k, v in extra]
    if "csim_softmax_table" in phys:
        lines.append("- csim: the firmware's bit-exact logits; csim_softmax_table: after hls4ml's softmax "
                     "lookup table (not exact)")
    return lines + [f"({phys.get('n_events')} events)", ""]


def _fmt_dict(d: dict | None) -> str:
    return ", ".join(f"{k} {_fmt(v, 3)}" for k, v in (d or {}).items()) or "-"


def _latency_resource_lines(report: FirmwareReport) -> list[str]:
    lat, res, est = report.latency, report.resources, report.estimate
    lines = ["## Latency and resources", ""]
    source = lat.source
    if source in ("vendor", "estimate"):
        label = f"{lat.tool} C synthesis" if source == "vendor" else \
            f"ESTIMATE, not a vendor report ({lat.method})"
        lines += [f"Source: **{source}**: {label}.", ""]
        header = ["", f"{source}"] + (["estimate"] if source == "vendor" and est else [])
        rows = []
        e_lat = (est or {}).get("latency", {})
        e_res = (est or {}).get("resources", {})
        for key, label_ in (("min_cycles", "latency min (cycles)"), ("max_cycles", "latency max (cycles)"),
                            ("interval", "interval (cycles)"), ("ns", "latency (ns)")):
            rows.append([label_, lat.get(key)] + ([e_lat.get(key)] if len(header) == 3 else []))
        pct = res.percent_of_part
        for key in RESOURCE_KEYS:
            val = res.get(key)
            shown = f"{_fmt(val)} ({pct[key]} %)" if key in pct else val
            rows.append([key, shown] + ([e_res.get(key)] if len(header) == 3 else []))
        lines += _table(header, rows) + [""]
        avail_source = res.available.get("source")
        if pct and avail_source:
            lines += [f"Percent of the part from the {avail_source}.", ""]
        if source == "vendor":
            lines += [f"Report file: `{lat.report_file}`.", ""]
    else:
        lines += ["No vendor report and no estimate: only the exact counts below are known.", ""]
    budget = report.budget
    if budget is not None and budget.fits is not None:
        lines += [f"Level-1 budget ({budget.source}): {budget_verdict(budget)}."
                  + ("" if budget.fits_interval else " Lower the interval with a smaller reuse factor, or "
                     "a larger parallelization factor (`--parallelization-factor full`).")
                  + (" Use a smaller model, a larger reuse factor or a larger part." if budget.over_part else ""),
                  ""]
    counts = report.counts
    if counts:
        lines += ["Exact counts: " + f"{_fmt(counts.multiplications)} multiplications (non-zero weights x "
                  f"positions), {_fmt(counts.bops)} BOPs, {_fmt(counts.nonzero_weight_bits)} bits of "
                  f"non-zero weights, {_fmt(counts.pipeline_stages)} layer stages in series.", ""]
    return lines


def read_report(directory: str | os.PathLike) -> str:
    """The report.md text of a firmware project folder (written by ``trigger synth``).

    If report.md is missing but report.json is there, it is rendered from report.json.
    Raises :class:`TriggerError` if the folder holds no report.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TriggerError(f"{directory} is not a folder; pass a project folder written by `trigger synth`")
    md = directory / "report.md"
    js = directory / "report.json"
    if md.is_file():
        return md.read_text()
    if js.is_file():
        return render_markdown(FirmwareReport.read(js))
    raise TriggerError(f"{directory} has no report.md or report.json; run `trigger synth MODEL.h5 --out {directory}`")


def headline_table(model_dir: str | os.PathLike, firmware_dir: str | os.PathLike) -> str:
    """The demo's summary: float teacher vs student metric, sparsity, BOPs (from ``model_dir``'s
    metrics.json), csim bit-exactness, latency/resources with their source (``firmware_dir``'s
    report.json); either file may be absent."""
    model_dir, firmware_dir = Path(model_dir), Path(firmware_dir)
    metrics = TrainMetrics.read(model_dir / "metrics.json") if (model_dir / "metrics.json").is_file() else None
    report = FirmwareReport.read(firmware_dir / "report.json") if (firmware_dir / "report.json").is_file() else None
    rows = _metrics_rows(metrics, report) + (_firmware_rows(report) if report is not None else [])
    if not rows:
        return f"(no metrics.json in {model_dir} and no report.json in {firmware_dir})"
    return "\n".join(_table(["", "value"], rows))


def _metrics_rows(metrics: TrainMetrics | None, report: FirmwareReport | None) -> list[list[Any]]:
    if metrics is None:
        return []
    key = "accuracy" if metrics.task != "anomaly" else "mean_auc"
    rows: list[list[Any]] = [[f"{role} {key.replace('_', ' ')}", getattr(metrics, role).get(key)]
                             for role in ("teacher", "student")]
    total = metrics.sparsity.get("trainable_total", metrics.sparsity.get("total"))
    if total is not None:
        rows.append(["student sparsity", total])
    rows += [[f"{role} BOPs", getattr(metrics.bops, role)] for role in ("teacher", "student")
             if getattr(metrics.bops, role) is not None]
    return rows


def _firmware_rows(report: FirmwareReport) -> list[list[Any]]:
    rows: list[list[Any]] = []
    csim = report.csim
    if csim:
        rows.append([f"csim bit-exact fraction ({csim.compared})", csim.bit_exact_fraction])
        if csim.output is not None and csim.output.argmax_agreement is not None:
            rows.append([f"firmware output ({csim.output.kind}) argmax agreement", csim.output.argmax_agreement])
        phys = csim.physics or {}
        if "csim" in phys:
            metric = phys.get("metric", "accuracy")
            rows.append([f"firmware (csim) {metric}", phys["csim"].get(metric)])
    lat, res = report.latency, report.resources
    if lat.source in ("vendor", "estimate"):
        rows.append([f"latency [{lat.source}]", f"{_fmt(lat.max_cycles)} cycles = {_fmt(lat.ns)} ns, "
                                                 f"II {_fmt(lat.interval)}"])
        rows.append([f"resources [{res.source}]", ", ".join(f"{k} {_fmt(res.get(k))}" for k in RESOURCE_KEYS)])
    if report.counts:
        rows.append(["multiplications / BOPs (exact)",
                     f"{_fmt(report.counts.multiplications)} / {_fmt(report.counts.bops)}"])
    return rows
