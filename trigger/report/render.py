"""report.md of a firmware project (from its report.json), ``trigger report DIR`` and the demo's
headline table.

Every latency and resource figure is printed with its ``source``: ``vendor`` (the Vivado/Vitis HLS
C-synthesis report) or ``estimate`` (the analytic model of :mod:`trigger.firmware.estimate`); with a
vendor report the estimate is printed beside it. Without either, only the exact counts are shown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trigger.errors import TriggerError

RESOURCE_KEYS = ("DSP", "LUT", "FF", "BRAM_18K")


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


def render_markdown(report: dict) -> str:
    """The report.md text of one firmware project."""
    model = report.get("model", {})
    cfg = report.get("config", {})
    csim = report.get("csim", {})
    lines = [f"# Firmware report: {model.get('name', '?')}", ""]
    lines += [f"- model: `{model.get('path')}` (family {_fmt(model.get('family'))}, task {_fmt(model.get('task'))}, "
              f"{_fmt(model.get('params'))} parameters, input type `{_fmt(model.get('input_type'))}`)",
              f"- backend {cfg.get('backend')}, part {cfg.get('part')}, clock {_fmt(cfg.get('clock_ns'))} ns, "
              f"reuse {cfg.get('reuse')}, strategy {cfg.get('strategy')}, io {cfg.get('io_type', cfg.get('io'))}",
              f"- versions: " + ", ".join(f"{k} {v}" for k, v in (cfg.get("versions") or {}).items()), ""]

    lines += ["## C simulation vs QKeras", ""]
    if csim:
        lines += [f"Inputs: {csim.get('inputs', '-')}. Compared: {csim.get('compared')} "
                  f"(Keras layer `{csim.get('compared_layer')}`); reference: {csim.get('reference')}.", ""]
        f32 = csim.get("float32", {})
        rows = [["bit-exact fraction (vs exact QKeras)", csim.get("bit_exact_fraction")],
                ["max abs difference", csim.get("max_abs_diff")],
                ["values compared", csim.get("n_values")],
                ["equal to float32 QKeras output", f32.get("fraction_equal")],
                ["max abs difference vs float32 QKeras", f32.get("max_abs_diff")]]
        soft = csim.get("softmax")
        if soft:
            rows += [["argmax agreement of logits", soft.get("argmax_agreement_logits")],
                     ["argmax agreement after softmax (hls4ml LUT vs QKeras)", soft.get("argmax_agreement_softmax")],
                     ["max abs difference of probabilities", soft.get("max_abs_diff_probabilities")]]
        lines += _table(["quantity", "value"], rows) + [""]
        first = csim.get("first_differing_layer")
        if first:
            lines += [f"First differing layer: `{first.get('layer')}` (hls4ml `{first.get('hls_layer')}`): "
                      f"{_fmt(first.get('fraction_equal'))} equal, max |diff| {_fmt(first.get('max_abs_diff'))}.", ""]
        elif csim.get("bit_exact_fraction") == 1.0:
            lines += ["Every compared value equals the QKeras value exactly.", ""]
        inexact = csim.get("inexact_layers") or []
        if inexact:
            lines += ["Layers that cannot be bit-exact:", ""]
            lines += [f"- `{e.get('layer')}`: {e.get('reason')}" for e in inexact] + [""]
        phys = csim.get("physics")
        if phys:
            lines += _physics_lines(phys)
    else:
        lines += ["No C simulation was run.", ""]

    lines += _latency_resource_lines(report)

    layers = report.get("layers") or []
    if layers:
        lines += ["## Layers", ""]
        rows = [[l.get("name"), l.get("class"), _code(l.get("result")), _code(l.get("accum")), _code(l.get("weight")),
                 l.get("multiplications"), l.get("nonzero_weights"), l.get("weights"), l.get("bops"), l.get("reuse")]
                for l in layers]
        lines += _table(["layer", "class", "result", "accum", "weight", "mults", "non-zero w", "weights",
                         "BOPs", "reuse"], rows) + [""]
    recipe = report.get("recipe") or []
    if recipe:
        lines += ["## Bit-exact recipe applied", ""]
        lines += [f"- `{r.get('layer')}`: {r.get('action')} ({r.get('why')})" for r in recipe] + [""]
    timing = report.get("timing") or {}
    if timing:
        lines += ["Timing: " + ", ".join(f"{k.replace('_s', '')} {_fmt(v)} s" for k, v in timing.items()), ""]
    return "\n".join(lines)


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


def _latency_resource_lines(report: dict) -> list[str]:
    lat = report.get("latency") or {}
    res = report.get("resources") or {}
    est = report.get("estimate")
    lines = ["## Latency and resources", ""]
    source = lat.get("source")
    if source in ("vendor", "estimate"):
        label = f"{lat.get('tool')} C synthesis" if source == "vendor" else \
            f"ESTIMATE, not a vendor report ({lat.get('method')})"
        lines += [f"Source: **{source}**: {label}.", ""]
        header = ["", f"{source}"] + (["estimate"] if source == "vendor" and est else [])
        rows = []
        e_lat = (est or {}).get("latency", {})
        e_res = (est or {}).get("resources", {})
        for key, label_ in (("min_cycles", "latency min (cycles)"), ("max_cycles", "latency max (cycles)"),
                            ("interval", "interval (cycles)"), ("ns", "latency (ns)")):
            rows.append([label_, lat.get(key)] + ([e_lat.get(key)] if len(header) == 3 else []))
        pct = res.get("percent_of_part") or {}
        for key in RESOURCE_KEYS:
            val = res.get(key)
            shown = f"{_fmt(val)} ({pct[key]} %)" if key in pct else val
            rows.append([key, shown] + ([e_res.get(key)] if len(header) == 3 else []))
        lines += _table(header, rows) + [""]
        avail_source = (res.get("available") or {}).get("source")
        if pct and avail_source:
            lines += [f"Percent of the part from the {avail_source}.", ""]
        if source == "vendor":
            lines += [f"Report file: `{lat.get('report_file')}`.", ""]
    else:
        lines += ["No vendor report and no estimate: only the exact counts below are known.", ""]
    budget = report.get("budget") or {}
    if budget.get("fits") is not None:
        verdict = "fits" if budget["fits"] else "does NOT fit"
        lines += [f"Trigger budget ({budget['source']}): the design {verdict} the Level-1 budget: latency "
                  f"{_fmt(budget['latency_ns'])} ns (budget {_fmt(budget['latency_budget_ns'])} ns), a new event "
                  f"every {_fmt(budget['interval_ns'])} ns (budget {_fmt(budget['interval_budget_ns'])} ns)."
                  + ("" if budget["fits_interval"] else " Lower the interval with a smaller reuse factor, or "
                     "a larger parallelization factor (`--parallelization-factor full`).")
                  + (f" {', '.join(budget['over_part'])} exceed the part: use a smaller model, a larger "
                     "reuse factor or a larger part." if budget.get("over_part") else ""), ""]
    counts = report.get("counts")
    if counts:
        lines += ["Exact counts: " + f"{_fmt(counts.get('multiplications'))} multiplications (non-zero weights x "
                  f"positions), {_fmt(counts.get('bops'))} BOPs, {_fmt(counts.get('nonzero_weight_bits'))} bits of "
                  f"non-zero weights, {_fmt(counts.get('pipeline_stages'))} layer stages in series.", ""]
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
        return render_markdown(_load_json(js))
    raise TriggerError(f"{directory} has no report.md or report.json; run `trigger synth MODEL.h5 --out {directory}`")


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TriggerError(f"{path} is not valid JSON ({exc}); rerun `trigger synth` with --force") from None


def headline_table(model_dir: str | os.PathLike, firmware_dir: str | os.PathLike) -> str:
    """The demo's summary: float teacher vs student metric, sparsity, BOPs (from ``model_dir``'s
    metrics.json, read defensively), csim bit-exactness, latency/resources with their source."""
    model_dir, firmware_dir = Path(model_dir), Path(firmware_dir)
    metrics = _load_json(model_dir / "metrics.json") if (model_dir / "metrics.json").is_file() else {}
    report = _load_json(firmware_dir / "report.json") if (firmware_dir / "report.json").is_file() else {}
    rows: list[list[Any]] = []
    task = metrics.get("task") or (report.get("model") or {}).get("task")
    key = "accuracy" if task != "anomaly" else "mean_auc"
    for role in ("teacher", "student"):
        m = metrics.get(role)
        if isinstance(m, dict):
            value = m.get(key, m.get("mean_auc"))
            rows.append([f"{role} {key.replace('_', ' ')}", value])
    sparsity = metrics.get("sparsity")
    if isinstance(sparsity, dict):
        total = sparsity.get("trainable_total", sparsity.get("total"))
        if total is not None:
            rows.append(["student sparsity", total])
    elif isinstance(sparsity, (int, float)):
        rows.append(["student sparsity", sparsity])
    bops = metrics.get("bops")
    if isinstance(bops, dict):
        for role in ("teacher", "student"):
            if bops.get(role) is not None:
                rows.append([f"{role} BOPs", bops[role]])
    csim = report.get("csim") or {}
    if csim:
        rows.append([f"csim bit-exact fraction ({csim.get('compared')})", csim.get("bit_exact_fraction")])
        phys = csim.get("physics") or {}
        if "csim" in phys:
            rows.append([f"firmware (csim) {phys.get('metric', key)}", phys["csim"].get(phys.get("metric", key))])
    lat = report.get("latency") or {}
    res = report.get("resources") or {}
    if lat.get("source") in ("vendor", "estimate"):
        rows.append([f"latency [{lat['source']}]", f"{_fmt(lat.get('max_cycles'))} cycles = {_fmt(lat.get('ns'))} ns, "
                                                    f"II {_fmt(lat.get('interval'))}"])
        rows.append([f"resources [{res.get('source')}]", ", ".join(f"{k} {_fmt(res.get(k))}" for k in RESOURCE_KEYS)])
    counts = report.get("counts") or {}
    if counts:
        rows.append(["multiplications / BOPs (exact)", f"{_fmt(counts.get('multiplications'))} / {_fmt(counts.get('bops'))}"])
    if not rows:
        return f"(no metrics.json in {model_dir} and no report.json in {firmware_dir})"
    return "\n".join(_table(["", "value"], rows))
