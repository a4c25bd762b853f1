"""Firmware library pieces of ``trigger synth`` (the stage itself is :mod:`trigger.stages.synth`).

- :func:`layer_table`: per-layer precisions, exact multiplications and BOPs of a converted model;
- :func:`latency_resources`: the latency and resource blocks of report.json with their source
  (vendor report or estimate) and the percent of the part; :func:`estimate_targets`: the
  estimate's two labelled targets (``csynth``, ``synth``) with their uncertainty;
- :func:`budget_figures`, :func:`trigger_budget`: the Level-1 budget check with the uncertainty (its
  one-line verdict is :func:`trigger.report.render.budget_verdict`); :func:`sized_resources`: the
  resources that check used, read back from a written report;
- :func:`compare_with_vendor`: the estimate against the vendor reports, per layer and in total.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trigger.config import SynthConfig
from trigger.contracts import RESOURCE_KEYS, VERDICTS, EstimateReport, EstimateTarget, FirmwareReport, Resources
from trigger.errors import TriggerError
from trigger.firmware.precision import bit_width
from trigger.firmware.vendor import percent_of_part
from trigger.models.graph import bit_operations


# --- per-layer table and exact counts ---------------------------------------------------------------

def _precision_str(t) -> str | None:
    return None if t is None else str(t.precision)


def layer_table(hls_model, config: SynthConfig) -> tuple[list[dict], dict]:
    """Per-layer precisions, multiplications (non-zero weights x positions), bits, BOPs and reuse;
    plus the model totals and the number of pipelined stages (longest layer chain)."""
    rows = []
    depth: dict[str, int] = {}
    total_mults = 0
    total_bops = 0.0
    total_weight_bits = 0
    for layer in hls_model.get_layers():
        types = {k: _precision_str(v) for k, v in layer.types.items()}
        row: dict[str, Any] = {"name": layer.name, "class": layer.class_name,
                               "result": types.get("result_t"), "accum": types.get("accum_t"),
                               "weight": types.get("weight_t"), "bias": types.get("bias_t"),
                               "reuse": int(layer.get_attr("reuse_factor", config.reuse) or config.reuse)}
        out_shape = list(layer.get_output_variable().shape)
        row["output_shape"] = out_shape
        weight = layer.weights.get("weight") if hasattr(layer, "weights") else None
        if weight is not None and getattr(weight, "data", None) is not None:
            w = np.asarray(weight.data)
            nonzero = int(np.count_nonzero(w))
            n_out = w.shape[-1] if w.ndim else 1
            positions = int(np.prod(out_shape) // max(n_out, 1)) if out_shape else 1
            fan_in = max(1, w.size // max(n_out, 1))
            w_bits = bit_width(layer.types["weight_t"].precision) if "weight_t" in layer.types else None
            in_var = layer.get_input_variable()
            a_bits = bit_width(in_var.type.precision) if in_var is not None else None
            mults = nonzero * positions
            row.update(weights=int(w.size), nonzero_weights=nonzero, multiplications=mults,
                       weight_bits=w_bits, input_bits=a_bits)
            if w_bits and a_bits:
                # BOPs as trigger.compress.model_bops defines them (one definition project-wide):
                # every MAC pays the accumulator, only non-zero weights pay the multiply
                macs = int(w.size) * positions
                bops = bit_operations(macs=macs, nonzero_macs=mults, fan_in=fan_in, activation_bits=a_bits,
                                      weight_bits=w_bits)
                row["bops"] = round(bops, 1)
                total_bops += bops
            total_mults += mults
            total_weight_bits += nonzero * (w_bits or 0)
        inputs = [i for i in layer.inputs if i in depth]
        depth[layer.name] = (max(depth[i] for i in inputs) + 1) if inputs else 0
        row["stage"] = depth[layer.name]
        row["index"] = int(layer.index)  # N of the layer's config struct (config<N>) in the HLS code
        rows.append(row)
    counts = {"multiplications": int(total_mults), "bops": round(total_bops, 1),
              "nonzero_weight_bits": int(total_weight_bits),
              "pipeline_stages": int(max(depth.values()) if depth else 0),
              "note": "exact counts from the converted model: multiplications = non-zero weights x output "
                      "positions; BOPs = mults x b_in*b_w + MACs x (b_in + b_w + log2(fan-in)), the formula of "
                      "trigger.compress.model_bops but with the firmware's actual input widths (model_bops "
                      "counts a tensor without a quantizer at 32 bits); pipeline stages = "
                      "longest chain of hls4ml layers (each is at least one pipeline stage)"}
    return rows, counts


#: Device totals from the AMD/Xilinx data sheets (BRAM_18K = 2 x BRAM36), for "% of the part" when no
#: vendor report gives them. Keyed by the part's device prefix.
PART_RESOURCES: dict[str, dict[str, int]] = {
    "xcvu13p": {"DSP": 12288, "LUT": 1728000, "FF": 3456000, "BRAM_18K": 5376},
    "xcvu9p": {"DSP": 6840, "LUT": 1182240, "FF": 2364480, "BRAM_18K": 4320},
    "xczu3eg": {"DSP": 360, "LUT": 70560, "FF": 141120, "BRAM_18K": 432},
    "xc7z020": {"DSP": 220, "LUT": 53200, "FF": 106400, "BRAM_18K": 280},
}


def part_resources(part: str) -> dict[str, int] | None:
    """Data-sheet totals of a known part (matched on the device prefix), else None."""
    device = part.lower().split("-")[0]
    return PART_RESOURCES.get(device)


def check_part(config: SynthConfig) -> dict[str, Any]:
    """The totals of ``config.part`` with their ``source``: the config's ``part_resources`` if given,
    else the data sheet's from :data:`PART_RESOURCES`. A part in neither is a one-line
    :class:`TriggerError` listing the known parts and how to add one (called before any work)."""
    if config.part_resources is not None:
        return dict(config.part_resources.model_dump(), source=f"part_resources of {config.part} in the synth config")
    totals = part_resources(config.part)
    if totals is None:
        known = ", ".join(f"{device}-*" for device in PART_RESOURCES)
        raise TriggerError(f"unknown FPGA part '{config.part}'; known parts: {known} (e.g. xcvu13p-flga2577-2-e); "
                           "for another part give its totals in the synth config (--config FILE with "
                           "part_resources: {DSP: N, LUT: N, FF: N, BRAM_18K: N}) or add it to PART_RESOURCES "
                           "in trigger/firmware/synth.py")
    return dict(totals, source=f"data sheet of {config.part}")


def _part_totals(part: str | None, totals: dict | None) -> dict | None:
    """The part's totals with their source: ``totals`` (from :func:`check_part`) if given, else the
    data sheet's of ``part``, else None."""
    if totals is not None:
        return dict(totals)
    found = part_resources(part) if part else None
    return dict(found, source=f"data sheet of {part}") if found else None


def _estimate_blocks(block: EstimateReport | EstimateTarget, method: str | None, target: str,
                     avail: dict | None) -> tuple[dict, dict]:
    """The latency and resources of one estimate target, labelled (source, method, target), with
    the percent of the part where its totals are known."""
    lat = dict(block.latency.model_dump(exclude_unset=True), source="estimate", method=method, target=target)
    used = {k: getattr(block.resources, k) for k in RESOURCE_KEYS}
    res = dict(used, source="estimate", method=method)
    if avail:
        res["percent_of_part"] = percent_of_part(used, avail)
        res["available"] = dict(avail)
    res["target"] = target
    return lat, res


def estimate_targets(estimate: EstimateReport | None, part: str | None = None,
                     totals: dict | None = None) -> dict | None:
    """The report's ``targets`` block (:class:`trigger.contracts.EstimateTargets`): each target of
    the estimate (``csynth``, ``synth``) with its latency, resources, percent of the part and
    uncertainty; None for an estimate without targets (or no estimate)."""
    blocks = {target: getattr(estimate.targets, target) for target in ("csynth", "synth")
              if estimate is not None and estimate.targets is not None and getattr(estimate.targets, target)}
    if not blocks:
        return None
    avail = _part_totals(part, totals)
    out = {}
    for target, block in blocks.items():
        lat, res = _estimate_blocks(block, estimate.method, target, avail)
        out[target] = {"latency": lat, "resources": res, "uncertainty": block.uncertainty.model_dump(exclude_unset=True)}
    return out


def latency_resources(estimate: EstimateReport | None, vendor: dict | None, part: str | None = None,
                      totals: dict | None = None) -> tuple[dict, dict]:
    """The report's latency and resources blocks, the C-synthesis figures (``target: csynth``): the
    vendor report's if there is one (with the part's totals it names), else the estimate's (with
    the part's ``totals`` from :func:`check_part`, else the data-sheet totals of ``part``)."""
    if vendor is not None:
        lat = dict(vendor["latency"], source="vendor", tool=vendor.get("tool"),
                   report_file=vendor.get("report_file"), target="csynth")
        res = dict(vendor["resources"], source="vendor", tool=vendor.get("tool"))
        avail = vendor.get("available") or {}
        res["percent_of_part"] = percent_of_part(vendor["resources"], avail)
        res["available"] = avail
        res["target"] = "csynth"
        return lat, res
    if estimate is not None:
        return _estimate_blocks(estimate, estimate.method, "csynth", _part_totals(part, totals))
    note = "no vendor report and no estimator available: see counts for the exact figures"
    return {"source": "none", "note": note}, {"source": "none", "note": note}


def budget_figures(latency: dict, resources: dict, targets: dict | None = None,
                   post_synth: dict | None = None, totals: dict | None = None) -> tuple[dict, dict, dict]:
    """(latency, resources, uncertainty) the Level-1 budget checks. Users size a design on its
    post-synthesis figures, so: with a vendor report, Vivado's post-synthesis utilisation
    (``post_synth``, from vivado_synth.rpt) if there is one, else the C-synthesis report, and no
    uncertainty; with an estimate, its ``synth`` target and that target's uncertainty; else the
    report's own ``latency`` and ``resources`` (an estimate without targets)."""
    if latency.get("source") == "vendor":
        if post_synth is None:
            return latency, resources, {}
        avail = post_synth.get("available") or totals or {}
        res = dict(post_synth["resources"], source="vendor", tool=post_synth.get("tool"),
                   percent_of_part=percent_of_part(post_synth["resources"], avail), available=dict(avail),
                   target="synth", report_file=post_synth.get("report_file"))
        return latency, res, {}
    synth = (targets or {}).get("synth")
    if synth:
        return synth["latency"], synth["resources"], dict(synth.get("uncertainty") or {})
    return latency, resources, {}


def sized_resources(report: FirmwareReport) -> tuple[Resources, str | None]:
    """The resources a written report's budget was checked on (:func:`budget_figures`: after logic
    synthesis where there is a figure for it), and a label of their source, e.g. "estimate, after
    logic synthesis"."""
    targets = report.targets.model_dump() if report.targets is not None else None
    post = report.vendor.post_synth if report.vendor is not None else None
    _, res, _ = budget_figures(report.latency.model_dump(), report.resources.model_dump(), targets,
                               post.model_dump(exclude_unset=True) if post is not None else None)
    source = res.get("source")
    label = f"{source}, after logic synthesis" if res.get("target") == "synth" else source
    return Resources.model_validate(res), label


def _check(nominal: float, spread: float, limit: float, unit: str) -> dict:
    """One :class:`trigger.contracts.BudgetCheck`: the band nominal -/+ spread against ``limit``."""
    low, high = max(0.0, nominal - spread), nominal + spread
    verdict = VERDICTS[0] if high <= limit else VERDICTS[2] if low > limit else VERDICTS[1]
    return {"nominal": round(nominal, 3), "low": round(low, 3), "high": round(high, 3), "limit": limit,
            "unit": unit, "verdict": verdict}


def trigger_budget(latency: dict, config: SynthConfig, resources: dict | None = None,
                   uncertainty: dict | None = None, not_modelled: list[str] | None = None) -> dict:
    """Does the design fit the Level-1 budget: total latency and initiation interval in ns, and no
    resource above 100 % of the part where the part's totals are known; all from the same source
    as ``latency`` (vendor report or estimate, see :func:`budget_figures`).

    ``fits`` and the ``fits_*`` flags compare the nominal figures. ``verdict`` (and each of
    ``checks``) also uses ``uncertainty`` (cycles for the latency, a relative fraction for each
    resource; none for vendor figures): "fits" if nominal + uncertainty is within the limit, "does
    not fit" if nominal - uncertainty is over it, else "fits within the uncertainty". The interval
    is checked at its nominal value (the uncertainty is measured on the latency). The overall
    verdict is the worst of the checks. ``not_modelled``: layers an estimate counts as zero cost;
    then there is no verdict (``fits`` None and a ``note``)."""
    ns, interval = latency.get("ns"), latency.get("interval")
    if ns is None or interval is None:
        return {"source": latency.get("source"), "fits": None, "note": "no latency figures to check"}
    if not_modelled:
        return {"source": latency.get("source"), "fits": None,
                "note": f"no verdict: the estimate has no model for {', '.join(not_modelled)} (counted as zero "
                        "cost), so its figures are lower bounds; run the vendor tool (--build)"}
    unc = uncertainty or {}
    interval_ns = float(interval) * config.clock_ns
    checks = {"latency": _check(float(ns), float(unc.get("cycles") or 0) * config.clock_ns,
                                config.latency_budget_ns, "ns"),
              "interval": _check(interval_ns, 0.0, config.interval_budget_ns, "ns")}
    percent = (resources or {}).get("percent_of_part") or {}
    for key, value in percent.items():
        checks[key] = _check(float(value), float(value) * float(unc.get(key) or 0), 100.0, "% of the part")
    fits_latency = ns <= config.latency_budget_ns
    fits_interval = interval_ns <= config.interval_budget_ns
    over_part = sorted(k for k, v in percent.items() if v > 100.0)
    fits_part = None if not percent else not over_part
    return {"source": latency.get("source"), "latency_ns": ns, "latency_budget_ns": config.latency_budget_ns,
            "interval_ns": interval_ns, "interval_budget_ns": config.interval_budget_ns,
            "fits_latency": fits_latency, "fits_interval": fits_interval,
            "fits_part": fits_part, "over_part": over_part,
            "fits": fits_latency and fits_interval and fits_part is not False,
            "target": (resources or {}).get("target") or latency.get("target"),
            "verdict": max((c["verdict"] for c in checks.values()), key=VERDICTS.index), "checks": checks}


def report_figures(estimate: EstimateReport | None, vendor: dict | None, config: SynthConfig, layers: list[dict]) -> dict:
    """The report.json blocks that carry figures: ``latency`` and ``resources`` (C-synthesis: the
    vendor's, else the estimate's), the estimate's ``targets``, the ``budget`` (on the figures of
    :func:`budget_figures`), the ``calibration`` the estimate used and the ``comparison`` with the
    vendor reports; blocks without content are left out."""
    totals = check_part(config)
    latency, resources = latency_resources(estimate, vendor, config.part, totals)
    targets = estimate_targets(estimate, config.part, totals)
    post = (vendor or {}).get("post_synth")
    b_latency, b_resources, uncertainty = budget_figures(latency, resources, targets, post, totals)
    not_modelled = estimate.not_modelled if estimate is not None and b_latency.get("source") == "estimate" else None
    calibration = estimate.calibration if estimate is not None else None
    out = {"latency": latency, "resources": resources,
           "budget": trigger_budget(b_latency, config, b_resources, uncertainty, not_modelled), "targets": targets,
           "calibration": calibration.model_dump(exclude_unset=True) if calibration is not None else None,
           "comparison": compare_with_vendor(estimate, layers, vendor, post, targets)}
    return {key: value for key, value in out.items() if value is not None}


# --- the estimate against the vendor reports ---------------------------------------------------------

#: The figures compared, per layer and in total: latency (worst case) and interval in cycles, resources.
COMPARED = ("cycles", "interval", *RESOURCE_KEYS)


def comparison_row(name: str, estimate: dict, vendor: dict, *, cls: str | None = None,
                   module: str | None = None) -> dict:
    """One :class:`trigger.contracts.ComparisonRow`: each figure present on either side, the
    difference (estimate - vendor) and the relative difference (None where the vendor figure is 0)."""
    keys = [k for k in COMPARED if estimate.get(k) is not None or vendor.get(k) is not None]
    est = {k: estimate.get(k) for k in keys}
    ven = {k: vendor.get(k) for k in keys}
    both = [k for k in keys if isinstance(est[k], (int, float)) and isinstance(ven[k], (int, float))]
    diff = {k: est[k] - ven[k] for k in both}
    rel = {k: (round(diff[k] / ven[k], 4) if ven[k] else None) for k in both}
    row: dict[str, Any] = {"name": name}
    if cls is not None:
        row["cls"] = cls
    if module is not None:
        row["module"] = module
    return row | {"estimate": est, "vendor": ven, "difference": diff, "relative": rel}


def _figures(latency: dict, resources: dict) -> dict:
    """cycles (worst case), interval and the resources of a latency/resources pair."""
    return {"cycles": latency.get("max_cycles"), "interval": latency.get("interval"),
            **{k: resources.get(k) for k in RESOURCE_KEYS}}


def _layer_rows(estimate: EstimateReport, layers: list[dict], modules: list[dict]) -> tuple[list[dict], list[str]]:
    """Per-layer rows: each vendor module carrying an hls4ml layer's config struct (``config<N>``,
    N = the layer's index in the report's layer table) against that layer's estimate; the largest
    module per layer (a wrapper contains the function it calls). Also the unmatched module names."""
    names = {row["index"]: row["name"] for row in layers if row.get("index") is not None}
    estimated = {row.name: row for row in estimate.layers}
    groups: dict[int, list[dict]] = {}
    unmatched = []
    for module in modules:
        index = module.get("config")
        if index is not None and names.get(index) in estimated:
            groups.setdefault(index, []).append(module)
        else:
            unmatched.append(module["name"])
    rows = []
    for index in sorted(groups):
        module = max(groups[index], key=_size)
        unmatched += [m["name"] for m in groups[index] if m is not module]
        layer = estimated[names[index]]
        rows.append(comparison_row(layer.name, layer.model_dump(include=set(COMPARED)),
                                   _figures(module["latency"], module["resources"]), cls=layer.cls, module=module["name"]))
    return rows, sorted(unmatched)


def _size(module: dict) -> float:
    return sum(float(module["resources"].get(k) or 0) for k in RESOURCE_KEYS)


def compare_with_vendor(estimate: EstimateReport | None, layers: list[dict], vendor: dict | None,
                        post_synth: dict | None = None, targets: dict | None = None) -> dict | None:
    """The report's ``comparison`` block (:class:`trigger.contracts.VendorComparison`): the
    estimate's C-synthesis figures against the vendor C-synthesis report per layer (its module
    reports, :func:`trigger.firmware.vendor.read_module_reports`) and in total, and the ``synth``
    target against Vivado's post-synthesis utilisation in total. None without an estimate or a
    vendor report."""
    if estimate is None or (vendor is None and post_synth is None):
        return None
    out: dict[str, Any] = {}
    if vendor is not None:
        rows, unmatched = _layer_rows(estimate, layers, vendor.get("modules") or [])
        note = None if rows else ("the report has no per-layer module reports that match a layer (HLS inlined the "
                                  "layers into the top function, or the layer table has no indices)")
        out["csynth"] = {"target": "csynth", "tool": vendor.get("tool"), "report_file": vendor.get("report_file"),
                         "total": comparison_row("total", _figures(estimate.latency.model_dump(), estimate.resources.model_dump()),
                                                 _figures(vendor["latency"], vendor["resources"])),
                         "layers": rows, "unmatched_modules": unmatched}
        if note:
            out["csynth"]["note"] = note
    synth = (targets or {}).get("synth")
    if post_synth is not None and synth:
        res = {k: synth["resources"].get(k) for k in RESOURCE_KEYS}
        out["synth"] = {"target": "synth", "tool": post_synth.get("tool"), "report_file": post_synth.get("report_file"),
                        "total": comparison_row("total", res, post_synth["resources"]),
                        "note": "Vivado's utilisation report is compared in total (no per-layer figures)"}
    return out or None
