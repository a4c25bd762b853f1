"""``trigger synth``: QKeras model -> hls4ml project, bit-exact C simulation, report.

The project folder is written under a temporary name and renamed when complete (an existing
``--out`` is refused without ``--force``). It holds the hls4ml project (``firmware/``,
``build_prj.tcl``, ...), ``report.json`` and ``report.md``. With ``build`` the vendor C synthesis runs
after the folder is complete; a missing tool raises :class:`ToolNotFoundError` and keeps the folder.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trigger.config import SynthConfig
from trigger.errors import TriggerError
from trigger.firmware.precision import bit_width
from trigger.runtime import atomic_path, check_output_free, jsonable, log, set_seed
from trigger.models.io import check_model_file

DEFAULT_PROJECTS = Path("firmware_projects")


@dataclass
class SynthResult:
    """What ``trigger synth`` wrote: the project folder and its report (as in report.json)."""

    out_dir: Path
    report: dict

    def summary(self) -> str:
        """A few lines for the command line."""
        csim = self.report.get("csim", {})
        lat = self.report.get("latency", {})
        res = self.report.get("resources", {})
        lines = [f"wrote {self.out_dir} (report.json, report.md, hls4ml project)"]
        frac = csim.get("bit_exact_fraction")
        if frac is not None:
            lines.append(f"csim: {frac:.6f} of {csim.get('n_values')} {csim.get('compared')} bit-exact vs QKeras "
                         f"({csim.get('n_events')} events, max |diff| {csim.get('max_abs_diff'):.3g})")
        if lat.get("max_cycles") is not None:
            lines.append(f"latency ({lat.get('source')}): {lat.get('max_cycles')} cycles = {lat.get('ns')} ns, "
                         f"II {lat.get('interval')}")
        if res.get("source") not in (None, "none"):
            lines.append(f"resources ({res.get('source')}): " + ", ".join(
                f"{k} {res[k]}" for k in ("DSP", "LUT", "FF", "BRAM_18K") if res.get(k) is not None))
        budget = self.report.get("budget") or {}
        if budget.get("fits") is not None:
            lines.append(f"Level-1 budget ({budget['source']}): {budget_verdict(budget)}")
        elif self.report.get("counts"):
            c = self.report["counts"]
            lines.append(f"counts: {c['multiplications']} multiplications, {c['bops']:.3g} BOPs "
                         "(no latency/resource estimate available)")
        return "\n".join(lines)


# --- inputs -----------------------------------------------------------------------------------

def _csim_inputs(data, meta: dict, model, input_precision: str | None, config: SynthConfig,
                 seed: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """(model inputs, labels or None, raw inputs for the teacher or None, description)."""
    from trigger.firmware.convert import grid_inputs
    from trigger.models.io import prepare_inputs

    n_max = config.max_csim_events
    if data is None:
        shape = tuple(model.input_shape[1:])
        x = grid_inputs(input_precision or "fixed<16,6>", shape, n_max, seed=seed)
        return x, None, None, f"{n_max} random events on the input grid {input_precision}"
    from trigger.data import load_dataset

    view = meta.get("view")
    if not view:
        raise TriggerError("the model file has no 'view' in its metadata, so --data cannot be matched to it; "
                           "synthesize without --data (random inputs) or use a model written by `trigger train`")
    ds = load_dataset(data, view)
    idx = np.arange(len(ds.y))
    where = f"all {len(idx)} events of {data}"
    if ds.attrs.get("split") == "test":  # already held-out events only (e.g. a committed check sample)
        where = f"all {len(idx)} events of {data} (a test-split sample)"
    elif all(k in meta for k in ("val_fraction", "test_fraction")):
        from trigger.data.splits import split_indices

        idx = split_indices(len(ds.y), meta["val_fraction"], meta["test_fraction"], seed=meta.get("seed", 42))[2]
        where = f"test split of {data}"
    if len(idx) > n_max:  # an even subsample keeps the class mix of the split
        idx = idx[np.linspace(0, len(idx) - 1, n_max).astype(int)]
    x_raw = ds.x[idx]
    if tuple(x_raw.shape[1:]) != tuple(model.input_shape[1:]):
        raise TriggerError(f"--data view '{view}' has shape {x_raw.shape[1:]} but the model reads "
                           f"{model.input_shape[1:]}; pass the data set the model was trained on")
    if not meta.get("class_names"):  # names for the physics metrics: the model's, else the data's
        meta["class_names"] = list(ds.class_names)
    return prepare_inputs(x_raw, meta), ds.y[idx], x_raw, f"{len(idx)} events, {where}"


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
                bops = mults * a_bits * w_bits + macs * (a_bits + w_bits + math.log2(fan_in))
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


def _estimate(hls_model) -> dict | None:
    """The estimator's figures (trigger.firmware.estimate), if that module is built."""
    try:
        from trigger.firmware import estimate as estimate_module
    except ImportError:
        return None
    if not hasattr(estimate_module, "estimate_model"):
        return None
    return estimate_module.estimate_model(hls_model).to_dict()


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


def _percent(used: dict, available: dict | None) -> dict:
    return {k: round(100.0 * used[k] / available[k], 2) for k in RESOURCE_KEYS
            if isinstance(used.get(k), (int, float)) and available and available.get(k)}


RESOURCE_KEYS = ("DSP", "LUT", "FF", "BRAM_18K")


def _latency_resources(estimate: dict | None, vendor: dict | None, part: str | None = None) -> tuple[dict, dict]:
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
        avail = part_resources(part) if part else None
        if avail:
            res["percent_of_part"] = _percent(estimate["resources"], avail)
            res["available"] = dict(avail, source=f"data sheet of {part}")
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


def budget_verdict(budget: dict) -> str:
    """The verdict of :func:`trigger_budget` in one line: 'fits (latency 75/100 ns, new event every
    5/25 ns)', naming any resource over the part."""
    over = f"; {', '.join(budget['over_part'])} over the part" if budget.get("over_part") else ""
    return (f"{'fits' if budget['fits'] else 'does NOT fit'} (latency {budget['latency_ns']:g}/"
            f"{budget['latency_budget_ns']:g} ns, new event every {budget['interval_ns']:g}/"
            f"{budget['interval_budget_ns']:g} ns{over})")


# --- report files -----------------------------------------------------------------------------------

def write_report_files(directory: Path, report: dict) -> None:
    """report.json and report.md into ``directory`` (each written to a temporary file, then renamed)."""
    from trigger.report import render_markdown

    for name, text in (("report.json", json.dumps(jsonable(report), indent=2, default=str) + "\n"),
                       ("report.md", render_markdown(report))):
        tmp = directory / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, directory / name)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("hls4ml", "qkeras", "tensorflow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


# --- the stage ------------------------------------------------------------------------------------

def synthesize(model, *, config: SynthConfig, data=None, teacher=None, out=None, build: bool = False,
               force: bool = False, seed: int = 42) -> SynthResult:
    """Convert ``model`` (QKeras ``.h5``) with hls4ml, C-simulate it against QKeras, write the report.

    ``data``: HDF5 from ``trigger data`` (its test split is used when the model records its split),
    or None for random inputs on the model's input grid. ``teacher``: float ``.h5`` compared on the
    same events. ``out``: project folder (default ``firmware_projects/<model stem>``). ``build``: run
    the vendor C synthesis afterwards (:class:`ToolNotFoundError` if the tool is absent, after the
    project and report are written).
    """
    from trigger.firmware.convert import convert_model
    from trigger.firmware.csim import run_csim
    from trigger.models.io import load_meta, load_model

    t_start = time.perf_counter()
    model_path = Path(model)
    out_dir = Path(out) if out is not None else DEFAULT_PROJECTS / model_path.stem
    check_model_file(model_path)  # before importing TensorFlow: a typo costs no seconds
    if teacher is not None:
        check_model_file(Path(teacher))
    check_output_free(out_dir, force)  # fail before minutes of work, not after
    keras_model = load_model(model_path)
    import tensorflow as tf  # noqa: F401  (loaded by load_model)

    set_seed(seed)
    meta = load_meta(model_path)
    teacher_model = load_model(teacher) if teacher is not None else None
    timing: dict[str, float] = {}
    with atomic_path(out_dir, force=force) as tmp:
        tmp.mkdir(parents=True)
        t0 = time.perf_counter()
        conversion = convert_model(keras_model, config, tmp)
        timing["convert_s"] = time.perf_counter() - t0
        x, labels, x_raw, inputs_desc = _csim_inputs(data, meta, conversion.keras_model,
                                                     conversion.input_precision, config, seed)
        teacher_x = None
        if teacher_model is not None:
            teacher_meta = load_meta(teacher)
            teacher_x = _teacher_inputs(x_raw, x, meta, teacher_meta)
        log.info("C simulation of %s on %s", model_path.name, inputs_desc)
        t0 = time.perf_counter()
        csim = run_csim(conversion.hls_model, conversion.keras_model, x, labels=labels, meta=meta,
                        teacher=teacher_model if teacher_x is not None else None, teacher_x=teacher_x,
                        inexact=conversion.inexact)
        timing["compile_s"] = csim.get("compile_seconds", 0.0)
        timing["csim_s"] = time.perf_counter() - t0 - timing["compile_s"]
        csim["inputs"] = inputs_desc
        layers, counts = layer_table(conversion.hls_model, config)
        estimate = _estimate(conversion.hls_model)
        latency, resources = _latency_resources(estimate, None, config.part)
        timing["total_s"] = time.perf_counter() - t_start
        report = {
            "model": {"path": str(model_path), "name": keras_model.name, "family": meta.get("family"),
                      "task": meta.get("task"), "view": meta.get("view"), "params": int(keras_model.count_params()),
                      "input_type": conversion.input_precision, "class_names": meta.get("class_names")},
            "config": {**config.model_dump(), "io_type": f"io_{config.io}", "project_name": "myproject",
                       "versions": _versions()},
            "layers": layers,
            "csim": csim,
            "latency": latency,
            "resources": resources,
            "budget": trigger_budget(latency, config, resources),
            "counts": counts,
            "estimate": estimate,
            "vendor": None,
            "recipe": conversion.recipe,
            "timing": {k: round(v, 2) for k, v in timing.items()},
        }
        write_report_files(tmp, report)
    # the folder now has its final name; the build runs there so its paths are the final ones
    if build:
        from trigger.firmware.vendor import require_tool, run_csynth

        require_tool(config.backend)  # ToolNotFoundError keeps everything written above
        vendor = run_csynth(conversion.hls_model, config.backend, out_dir)
        report["vendor"] = vendor
        report["latency"], report["resources"] = _latency_resources(estimate, vendor, config.part)
        report["budget"] = trigger_budget(report["latency"], config, report["resources"])
        write_report_files(out_dir, report)
    return SynthResult(out_dir=out_dir, report=report)


def _teacher_inputs(x_raw: np.ndarray | None, x_student: np.ndarray, meta: dict, teacher_meta: dict):
    """The teacher's inputs: the raw events through the teacher's own input transform; without data,
    the student's inputs if both models share a transform, else None (no teacher comparison)."""
    from trigger.models.io import prepare_inputs

    if x_raw is not None:
        return prepare_inputs(x_raw, teacher_meta)
    same = all(meta.get(k) == teacher_meta.get(k) for k in ("input_offset", "input_scale"))
    return x_student if same else None
