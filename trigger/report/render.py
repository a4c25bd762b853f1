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

from trigger.contracts import (RESOURCE_KEYS, TARGET_LABELS, VERDICTS, Budget, BudgetCheck, ComparisonRow,
                               ComparisonTable, Csim, CsimOutput, FirmwareReport, Latency, Physics,
                               Resources, TrainMetrics, Uncertainty)
from trigger.errors import TriggerError
from trigger.report.markdown import number, table as markdown_table


def _band(check: BudgetCheck) -> str:
    """'80' for a figure without uncertainty, '80 ± 10' with one."""
    spread = check.high - check.nominal
    return f"{check.nominal:g}" if spread == 0 else f"{check.nominal:g} ± {spread:.3g}"


def budget_verdict(budget: Budget) -> str:
    """The Level-1 verdict of :func:`trigger.firmware.synth.trigger_budget` in one line: 'fits (latency
    75/100 ns, new event every 5/25 ns)', with '± uncertainty' on estimated figures and each resource
    that does not plainly fit the part. The verdict is one of "fits", "fits within the uncertainty"
    and "does not fit" (a report written before the uncertainty: "fits" or "does not fit" on the
    nominal figures). The one budget sentence: the synth summary, report.md and the model cards all
    print it."""
    budget = budget if isinstance(budget, Budget) else Budget.model_validate(budget)
    verdict = budget.verdict or (VERDICTS[0] if budget.fits else VERDICTS[-1])
    lat = budget.checks.get("latency")
    latency = _band(lat) if lat is not None else f"{budget.latency_ns:g}"
    parts = [f"latency {latency}/{budget.latency_budget_ns:g} ns",
             f"new event every {budget.interval_ns:g}/{budget.interval_budget_ns:g} ns"]
    if budget.checks:
        over = [f"{key} {_band(check)} % of the part" for key, check in budget.checks.items()
                if key in RESOURCE_KEYS and check.verdict != VERDICTS[0]]
    else:
        over = [f"{key} over the part" for key in budget.over_part]
    return f"{verdict} ({', '.join(parts)}{'; ' + ', '.join(over) if over else ''})"


#: How report.md and the synth summary explain the three verdicts (docs/firmware.md)
VERDICT_DEFINITION = ("*fits*: within the budget even at the figure + its uncertainty; *fits within the "
                      "uncertainty*: the budget lies between the figure - and + its uncertainty; *does not "
                      "fit*: over the budget even at the figure - its uncertainty. Vendor figures have no "
                      "uncertainty; the interval is checked at its nominal value.")


def as_report(report: FirmwareReport | dict, *, source: str = "report") -> FirmwareReport:
    """``report`` as the typed :class:`FirmwareReport` (a dict is validated)."""
    return report if isinstance(report, FirmwareReport) else FirmwareReport.from_dict(report, source=source)


def render_markdown(report: FirmwareReport | dict) -> str:
    """The report.md text of one firmware project."""
    report = as_report(report)
    model, cfg = report.model, report.config
    out = report.csim.output if report.csim is not None else None
    lines = [f"# Firmware report: {model.name or '?'}", ""]
    lines += [f"- model: `{model.path}` (family {number(model.family)}, task {number(model.task)}, "
              f"{number(model.params)} parameters, input type `{number(model.input_type)}`)",
              f"- backend {cfg.backend}, part {cfg.part}, clock {number(cfg.clock_ns)} ns, "
              f"reuse {cfg.reuse}, strategy {cfg.strategy}, io {cfg.io_type or cfg.io}"
              + (f", output {out.kind}" if out is not None and out.kind != "outputs" else ""),
              "- versions: " + ", ".join(f"{k} {v}" for k, v in cfg.versions.items()), ""]
    lines += ["## C simulation vs QKeras", ""]
    lines += _csim_lines(report.csim) if report.csim else ["No C simulation was run.", ""]
    lines += _latency_resource_lines(report)
    if report.layers:
        lines += ["## Layers", ""]
        rows = [[l.name, l.cls, _code(l.result), _code(l.accum), _code(l.weight),
                 l.multiplications, l.nonzero_weights, l.weights, l.bops, l.reuse] for l in report.layers]
        lines += markdown_table(["layer", "class", "result", "accum", "weight", "mults", "non-zero w", "weights",
                                "BOPs", "reuse"], rows, number) + [""]
    if report.recipe:
        lines += ["## Bit-exact recipe applied", ""]
        lines += [f"- `{r.layer}`: {r.action} ({r.why})" for r in report.recipe] + [""]
    if report.timing:
        lines += ["Timing: " + ", ".join(f"{k.replace('_s', '')} {number(v)} s" for k, v in report.timing.items()), ""]
    return "\n".join(lines)


def _csim_lines(csim: Csim) -> list[str]:
    lines = [f"Inputs: {csim.inputs or '-'}. Compared: {csim.compared} "
             f"(Keras layer `{csim.compared_layer}`); reference: {csim.reference}.", ""]
    f32 = csim.float32
    rows = [["bit-exact fraction (vs exact QKeras)", csim.bit_exact_fraction],
            ["max abs difference", csim.max_abs_diff],
            ["values compared", csim.n_values],
            ["equal to float32 QKeras output", f32.fraction_equal if f32 else None],
            ["max abs difference vs float32 QKeras", f32.max_abs_diff if f32 else None]]
    soft = csim.softmax
    if soft:
        rows.append(["argmax agreement of logits", soft.argmax_agreement_logits])
        if soft.argmax_agreement_softmax is not None:  # a report written before the `output` choice
            rows += [["argmax agreement after softmax (hls4ml LUT vs QKeras)", soft.argmax_agreement_softmax],
                     ["max abs difference of probabilities", soft.max_abs_diff_probabilities]]
    lines += markdown_table(["quantity", "value"], rows, number) + [""]
    if csim.output is not None and csim.output.kind != "outputs":
        lines += [f"**Firmware output: {csim.output.kind}**: {output_summary(csim.output)}.", ""]
    first = csim.first_differing_layer
    if first:
        lines += [f"First differing layer: `{first.layer}` (hls4ml `{first.hls_layer}`): "
                  f"{number(first.fraction_equal)} equal, max |diff| {number(first.max_abs_diff)}.", ""]
    elif csim.bit_exact_fraction == 1.0:
        lines += ["Every compared value equals the QKeras value exactly.", ""]
    if csim.inexact_layers:
        lines += ["Layers that cannot be bit-exact:", ""]
        lines += [f"- `{e.layer}`: {e.reason}" for e in csim.inexact_layers] + [""]
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
        parts.append(f"bit-exact fraction {number(out.bit_exact_fraction)}")
    if out.argmax_agreement is not None:
        parts.append(f"argmax agreement with QKeras {number(out.argmax_agreement)}")
    if out.max_abs_diff_probabilities is not None:
        parts.append(f"max |probability difference| {number(out.max_abs_diff_probabilities)} "
                     f"(bound 2^-8 = 0.0039)")
    return "; ".join(parts) + f" ({out.n_events} events)"


def _code(text: Any) -> str:
    return f"`{text}`" if text else "-"


def _physics_lines(phys: Physics) -> list[str]:
    metric = phys.metric or "accuracy"
    roles = {r: getattr(phys, r) for r in ("teacher", "qkeras", "csim", "csim_softmax_table")
             if getattr(phys, r) is not None}
    lines = ["### Physics on the same events", ""]
    if metric == "accuracy":
        rows = [[r, s.accuracy, s.mean_auc] for r, s in roles.items()]
        lines += markdown_table(["model", "accuracy", "mean AUC"], rows, number)
        extra = [(k, getattr(phys, k)) for k in ("argmax_agreement_csim_qkeras", "argmax_agreement_csim_teacher")
                 if getattr(phys, k) is not None]
    else:
        rows = [[r, s.mean_auc, _fmt_dict(s.efficiency), s.rate_khz] for r, s in roles.items()]
        lines += markdown_table(["model", "mean AUC", "signal efficiency at the rate", "rate (kHz)"], rows, number)
        extra = []
    lines += [""] + [f"- {k.replace('_', ' ')}: {number(v)}" for k, v in extra]
    if phys.csim_softmax_table is not None:
        lines.append("- csim: the firmware's bit-exact logits; csim_softmax_table: after hls4ml's softmax "
                     "lookup table (not exact)")
    return lines + [f"({phys.n_events} events)", ""]


def _fmt_dict(d: dict | None) -> str:
    return ", ".join(f"{k} {number(v, 3)}" for k, v in (d or {}).items()) or "-"


def _latency_resource_lines(report: FirmwareReport) -> list[str]:
    lines = ["## Latency and resources", ""]
    if report.latency.source in ("vendor", "estimate"):
        lines += _target_lines(report) if report.targets is not None else _source_lines(report)
    else:
        lines += ["No vendor report and no estimate: only the exact counts below are known.", ""]
    lines += _budget_lines(report.budget)
    counts = report.counts
    if counts:
        lines += ["Exact counts: " + f"{number(counts.multiplications)} multiplications (non-zero weights x "
                  f"positions), {number(counts.bops)} BOPs, {number(counts.nonzero_weight_bits)} bits of "
                  f"non-zero weights, {number(counts.pipeline_stages)} layer stages in series.", ""]
    if report.comparison is not None:
        lines += _comparison_lines(report)
    return lines


def _source_lines(report: FirmwareReport) -> list[str]:
    """The latency/resource table of a report written before the estimate's two targets."""
    lat, res, est = report.latency, report.resources, report.estimate
    source = lat.source
    label = f"{lat.tool} C synthesis" if source == "vendor" else f"ESTIMATE, not a vendor report ({lat.method})"
    lines = [f"Source: **{source}**: {label}.", ""]
    header = ["", f"{source}"] + (["estimate"] if source == "vendor" and est else [])
    rows = []
    for key, label_ in LATENCY_ROWS:
        rows.append([label_, getattr(lat, key)] + ([getattr(est.latency, key)] if len(header) == 3 else []))
    pct = res.percent_of_part
    for key in RESOURCE_KEYS:
        val = getattr(res, key)
        shown = f"{number(val)} ({pct[key]} %)" if key in pct else val
        rows.append([key, shown] + ([getattr(est.resources, key)] if len(header) == 3 else []))
    lines += markdown_table(header, rows, number) + [""]
    avail_source = res.available.source
    if pct and avail_source:
        lines += [f"Percent of the part from the {avail_source}.", ""]
    if source == "vendor":
        lines += [f"Report file: `{lat.report_file}`.", ""]
    return lines


LATENCY_ROWS = (("min_cycles", "latency min (cycles)"), ("max_cycles", "latency max (cycles)"),
                ("interval", "interval (cycles)"), ("ns", "latency (ns)"))
Column = tuple[str, "Latency | None", "Resources | None", "Uncertainty | None"]


def _columns(report: FirmwareReport) -> list[Column]:
    """(header, latency, resources, uncertainty) of each column: the vendor's C-synthesis and
    post-synthesis figures where present, then the estimate's two targets."""
    cols: list[Column] = []
    if report.latency.source == "vendor":
        cols.append((f"vendor: {TARGET_LABELS['csynth']}", report.latency, report.resources, None))
        post = report.vendor.post_synth if report.vendor is not None else None
        if post is not None:
            res = Resources.model_validate(post.resources.model_dump(exclude_unset=True)
                                           | {"percent_of_part": post.percent_of_part})
            cols.append((f"vendor: {TARGET_LABELS['synth']}", None, res, None))
    for target in ("csynth", "synth"):
        block = getattr(report.targets, target, None)
        if block is not None:
            cols.append((f"ESTIMATE: {TARGET_LABELS[target]}", block.latency, block.resources, block.uncertainty))
    return cols


def _num(value: Any) -> str:
    """A figure with thousands separators (12,300), '-' if missing."""
    if value is None:
        return "-"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.4g}"


def _latency_cell(lat: Latency | None, unc: Uncertainty | None, key: str, clock_ns: float | None) -> str:
    value = getattr(lat, key) if lat is not None else None
    if value is None:
        return "-"
    cycles = (unc.cycles or 0) if unc is not None and key != "interval" else 0
    spread = cycles * (clock_ns or 0) if key == "ns" else cycles
    return _num(value) + (f" ± {_num(spread)}" if spread else "")


def _resource_cell(res: Resources | None, unc: Uncertainty | None, key: str, part: bool = True) -> str:
    """A resource figure with its relative uncertainty and, with ``part``, its share of the part."""
    value = getattr(res, key) if res is not None else None
    if value is None:
        return "-"
    rel = getattr(unc, key) if unc is not None else None
    pct = res.percent_of_part.get(key) if part else None
    return (_num(value) + (f" ± {100 * rel:.0f} %" if rel and value else "")
            + (f" ({pct:g} % of the part)" if pct is not None else ""))


def _target_lines(report: FirmwareReport) -> list[str]:
    """Both targets side by side with their uncertainty (and the vendor's figures if any)."""
    lat, res, cal = report.latency, report.resources, report.calibration
    cols = _columns(report)
    rows = [[label] + [_latency_cell(c[1], c[3], key, report.config.clock_ns) for c in cols]
            for key, label in LATENCY_ROWS]
    rows += [[key] + [_resource_cell(c[2], c[3], key) for c in cols] for key in RESOURCE_KEYS]
    source = f"**vendor** ({lat.tool} C synthesis)" if lat.source == "vendor" else "**estimate**"
    lines = [f"Source of the headline figures: {source}. The estimate columns are ESTIMATES, not vendor "
             f"reports ({lat.method or (report.estimate.method if report.estimate else None)}).", ""]
    lines += markdown_table([""] + [c[0] for c in cols], rows, number) + [""]
    lines += ["C-synthesis: what an HLS C-synthesis report says; after logic synthesis: Vivado's post-synthesis "
              "utilisation, what a design is sized on. ± is the estimator's uncertainty (its held-out errors, "
              "docs/estimator.md): cycles absolute, resources relative."]
    if cal is not None:
        lines += [f"Estimator calibration: {cal.name} (fitted for {cal.tool}; from {cal.source})."]
    avail_source = res.available.source
    if res.percent_of_part and avail_source:
        lines += [f"Percent of the part from the {avail_source}."]
    if lat.source == "vendor":
        lines += [f"Report file: `{lat.report_file}`."]
    return lines + [""]


def _budget_lines(budget: Budget | None) -> list[str]:
    if budget is not None and budget.fits is None and budget.note and budget.note.startswith("no verdict"):
        return [f"Level-1 budget ({budget.source}): {budget.note}.", ""]
    if budget is None or budget.fits is None:
        return []
    figures = f", {TARGET_LABELS[budget.target]} figures" if budget.target else ""
    band = " ± uncertainty" if budget.source == "estimate" and budget.checks else ""
    lines = [f"Level-1 budget ({budget.source}{figures}{band}): {budget_verdict(budget)}."
             + ("" if budget.fits_interval else " Lower the interval with a smaller reuse factor, or "
                "a larger parallelization factor (`--parallelization-factor full`).")
             + (" Use a smaller model, a larger reuse factor or a larger part." if budget.over_part else ""), ""]
    if budget.verdict is not None:
        lines += [f"Verdicts: {VERDICT_DEFINITION}", ""]
    return lines


def _compared(row: ComparisonRow, key: str) -> str:
    """'13 / 15 (-13 %)': estimate / vendor (relative difference)."""
    est, ven, rel = row.estimate.get(key), row.vendor.get(key), row.relative.get(key)
    if est is None and ven is None:
        return "-"
    return f"{_num(est)} / {_num(ven)}" + (f" ({100 * rel:+.0f} %)" if rel is not None else "")


def _comparison_table(table: ComparisonTable) -> list[str]:
    keys = [k for k in ("cycles", "interval", *RESOURCE_KEYS)
            if any(k in row.estimate or k in row.vendor for row in [table.total, *table.layers])]
    rows = [["total", "-"] + [_compared(table.total, k) for k in keys]]
    rows += [[row.name, _code(row.module)] + [_compared(row, k) for k in keys] for row in table.layers]
    lines = [f"**{TARGET_LABELS[table.target]}** ({table.tool}, `{table.report_file}`): estimate / vendor "
             "(relative difference).", ""]
    lines += markdown_table(["layer", "vendor module"] + keys, rows, number) + [""]
    if table.unmatched_modules:
        lines += ["Vendor modules not matched to a layer: " + ", ".join(f"`{m}`" for m in table.unmatched_modules)
                  + ".", ""]
    return lines + ([table.note + ".", ""] if table.note else [])


def _comparison_lines(report: FirmwareReport) -> list[str]:
    lines = ["## Estimate vs vendor report", ""]
    for table in (report.comparison.csynth, report.comparison.synth):
        if table is not None:
            lines += _comparison_table(table)
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
    return "\n".join(markdown_table(["", "value"], rows, number))


def _metrics_rows(metrics: TrainMetrics | None, report: FirmwareReport | None) -> list[list[Any]]:
    if metrics is None:
        return []
    key = "accuracy" if metrics.task != "anomaly" else "mean_auc"
    rows: list[list[Any]] = [[f"{role} {key.replace('_', ' ')}", getattr(getattr(metrics, role), key)]
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
        phys = csim.physics
        if phys is not None and phys.csim is not None:
            metric = phys.metric or "accuracy"
            rows.append([f"firmware (csim) {metric}", getattr(phys.csim, metric, None)])
    lat, res = report.latency, report.resources
    if report.targets is not None:  # every column of report.md's table, estimates with their ±
        clock = report.config.clock_ns
        for label, c_lat, c_res, unc in _columns(report):
            if c_lat is not None:
                rows.append([f"latency [{label}]", f"{_latency_cell(c_lat, unc, 'max_cycles', clock)} cycles = "
                                                   f"{_latency_cell(c_lat, unc, 'ns', clock)} ns, "
                                                   f"II {_latency_cell(c_lat, None, 'interval', clock)}"])
            rows.append([f"resources [{label}]",
                         ", ".join(f"{k} {_resource_cell(c_res, unc, k, part=False)}" for k in RESOURCE_KEYS)])
    elif lat.source in ("vendor", "estimate"):
        rows.append([f"latency [{lat.source}]", f"{number(lat.max_cycles)} cycles = {number(lat.ns)} ns, "
                                                 f"II {number(lat.interval)}"])
        rows.append([f"resources [{res.source}]", ", ".join(f"{k} {number(getattr(res, k))}" for k in RESOURCE_KEYS)])
    if report.counts:
        rows.append(["multiplications / BOPs (exact)",
                     f"{number(report.counts.multiplications)} / {number(report.counts.bops)}"])
    return rows
