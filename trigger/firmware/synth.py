"""Firmware library pieces of ``trigger synth`` (the stage itself is :mod:`trigger.stages.synth`).

- :func:`layer_table`: per-layer precisions, exact multiplications and BOPs of a converted model;
- :func:`latency_resources`: the latency and resource blocks of report.json with their source
  (vendor report or estimate) and the percent of the part;
- :func:`trigger_budget`: the Level-1 budget check (its one-line verdict is
  :func:`trigger.report.render.budget_verdict`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trigger.config import SynthConfig
from trigger.contracts import RESOURCE_KEYS
from trigger.errors import TriggerError
from trigger.firmware.precision import bit_width
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


def _percent(used: dict, available: dict | None) -> dict:
    return {k: round(100.0 * used[k] / available[k], 2) for k in RESOURCE_KEYS
            if isinstance(used.get(k), (int, float)) and available and available.get(k)}


def latency_resources(estimate: dict | None, vendor: dict | None, part: str | None = None,
                      totals: dict | None = None) -> tuple[dict, dict]:
    """The report's latency and resources blocks: the vendor report's if there is one (with the
    part's totals it names), else the estimate's (with the part's ``totals`` from :func:`check_part`,
    else the data-sheet totals of ``part``)."""
    if vendor is not None:
        lat = dict(vendor["latency"], source="vendor", tool=vendor.get("tool"),
                   report_file=vendor.get("report_file"))
        res = dict(vendor["resources"], source="vendor", tool=vendor.get("tool"))
        avail = vendor.get("available") or {}
        res["percent_of_part"] = _percent(vendor["resources"], avail)
        res["available"] = avail
        return lat, res
    if estimate is not None:
        lat = dict(estimate["latency"], source="estimate", method=estimate.get("method"))
        res = dict(estimate["resources"], source="estimate", method=estimate.get("method"))
        avail = part_resources(part) if part and totals is None else None
        avail = dict(avail, source=f"data sheet of {part}") if avail else totals
        if avail:
            res["percent_of_part"] = _percent(estimate["resources"], avail)
            res["available"] = dict(avail)
        return lat, res
    note = "no vendor report and no estimator available: see counts for the exact figures"
    return {"source": "none", "note": note}, {"source": "none", "note": note}


def trigger_budget(latency: dict, config: SynthConfig, resources: dict | None = None) -> dict:
    """Does the design fit the Level-1 budget: total latency and initiation interval in ns, and no
    resource above 100 % of the part where the part's totals are known; all from the same source
    as ``latency`` (vendor report or estimate)."""
    ns, interval = latency.get("ns"), latency.get("interval")
    if ns is None or interval is None:
        return {"source": latency.get("source"), "fits": None, "note": "no latency figures to check"}
    interval_ns = float(interval) * config.clock_ns
    fits_latency = ns <= config.latency_budget_ns
    fits_interval = interval_ns <= config.interval_budget_ns
    percent = (resources or {}).get("percent_of_part") or {}
    over_part = sorted(k for k, v in percent.items() if v > 100.0)
    fits_part = None if not percent else not over_part
    return {"source": latency.get("source"), "latency_ns": ns, "latency_budget_ns": config.latency_budget_ns,
            "interval_ns": interval_ns, "interval_budget_ns": config.interval_budget_ns,
            "fits_latency": fits_latency, "fits_interval": fits_interval,
            "fits_part": fits_part, "over_part": over_part,
            "fits": fits_latency and fits_interval and fits_part is not False}
