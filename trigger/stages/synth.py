"""``trigger synth``: QKeras model -> hls4ml project, bit-exact C simulation, report.

The project folder is written under a temporary name and renamed when complete (an existing
``--out`` is refused without ``--force``). It holds the hls4ml project (``firmware/``,
``build_prj.tcl``, ...), ``report.json`` (:class:`trigger.contracts.FirmwareReport`) and
``report.md``; nothing in it names the temporary name, so its compiled C simulation runs from the
folder as it stands (:mod:`trigger.firmware.project`). With ``build`` the vendor C synthesis runs
after the folder is complete; a missing tool raises :class:`ToolNotFoundError` and keeps the folder
(a log line says so before the conversion starts). A missing or broken g++ is one line before any work; a generated project that g++
fails to compile is kept as ``<out>.failed`` with its ``csim_build.log``. The firmware library pieces (per-layer
table, latency/resource sources, the Level-1 budget) are in :mod:`trigger.firmware.synth`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from trigger.config import SynthConfig
from trigger.contracts import (RESOURCE_KEYS, TARGET_LABELS, FirmwareReport, ModelMeta, ResourceFigures, Resources,
                               Uncertainty)
from trigger.data.dataset import check_data_file
from trigger.errors import TriggerError
from trigger.firmware.convert import convert_model
from trigger.firmware.csim import BUILD_LOG, CsimBuildError, require_compiler, run_csim
from trigger.firmware.estimate import estimate_model
from trigger.firmware.estimate.calibration import synth_calibration
from trigger.firmware.events import csim_inputs
from trigger.firmware.project import point_config_at
from trigger.firmware.synth import check_part, layer_table, report_figures
from trigger.firmware.vendor import require_tool, run_csynth, warn_missing_tool
from trigger.models.io import TRAINED_MODEL_REMEDY, check_model_file, load_meta, load_model
from trigger.report.markdown import write_json_and_markdown
from trigger.report.render import budget_verdict, output_summary, render_markdown
from trigger.runtime import atomic_path, check_output_free, log, reading, set_seed

DEFAULT_PROJECTS = Path("firmware_projects")


@dataclass
class SynthResult:
    """What ``trigger synth`` wrote: the project folder and its report (as in report.json)."""

    out_dir: Path
    report: FirmwareReport

    def summary(self) -> str:
        """A few lines for the command line."""
        r = self.report
        csim, lat = r.csim, r.latency
        lines = [f"wrote {self.out_dir} (report.json, report.md, hls4ml project)"]
        if csim is not None and csim.bit_exact_fraction is not None:
            lines.append(f"csim: {csim.bit_exact_fraction:.6f} of {csim.n_values} {csim.compared} bit-exact vs "
                         f"QKeras ({csim.n_events} events, max |diff| {csim.max_abs_diff:.3g})")
        lines.append(f"input type {r.model.input_type}; " + (
            f"inexact by construction (reasons in report.md): {', '.join(e.layer for e in csim.inexact_layers)}"
            if csim is not None and csim.inexact_layers else "no layer inexact by construction"))
        if csim is not None and csim.output is not None and csim.output.kind != "outputs":
            lines.append(f"firmware output: {output_summary(csim.output)}")
        if lat.max_cycles is not None:
            lines.append(self._latency_line())
        lines += self._resource_lines()
        if r.budget is not None and r.budget.fits is not None:
            figures = f", {TARGET_LABELS[r.budget.target]} figures" if r.budget.target else ""
            lines.append(f"Level-1 budget ({r.budget.source}{figures}): {budget_verdict(r.budget)}")
        elif r.budget is not None and r.budget.note and lat.max_cycles is not None:
            lines.append(f"Level-1 budget: {r.budget.note}")
        elif r.counts:
            lines.append(f"counts: {r.counts.multiplications} multiplications, {r.counts.bops:.3g} BOPs "
                         "(no latency/resource estimate available)")
        return "\n".join(lines)

    def _latency_line(self) -> str:
        """The headline latency, with the estimate's uncertainty when it is an estimate."""
        r = self.report
        lat = r.latency
        estimated = lat.source == "estimate" and r.targets is not None and r.targets.csynth is not None
        cycles = (r.targets.csynth.uncertainty.cycles or 0) if estimated else 0
        ns_spread = cycles * (r.config.clock_ns or 0)
        missing = r.estimate.not_modelled if lat.source == "estimate" and r.estimate is not None else None
        bound = f", a lower bound: no model for {', '.join(missing)}" if missing else ""
        return (f"latency ({lat.source}{bound}): {lat.max_cycles}{f' ± {cycles}' if cycles else ''} cycles = "
                f"{lat.ns}{f' ± {ns_spread:g}' if ns_spread else ''} ns, II {lat.interval}")

    def _resource_lines(self) -> list[str]:
        """The vendor's resources (C synthesis, and after logic synthesis if reported), then each
        estimate target with its uncertainty."""
        r = self.report
        blocks: list[tuple[str, Resources | ResourceFigures, Uncertainty | None]] = []
        if r.resources.source == "vendor" or (r.resources.source == "estimate" and r.targets is None):
            blocks.append((r.resources.source, r.resources, None))
        post = r.vendor.post_synth if r.vendor is not None else None
        if post is not None:
            blocks.append((f"vendor, {TARGET_LABELS['synth']}", post.resources, None))
        for target in ("csynth", "synth"):
            block = getattr(r.targets, target, None)
            if block is not None:
                blocks.append((f"estimate, {TARGET_LABELS[target]}", block.resources, block.uncertainty))
        return [f"resources ({label}): " + ", ".join(
            f"{k} {getattr(res, k)}" + (f" ± {100 * getattr(unc, k):.0f} %"
                                        if unc is not None and getattr(unc, k) and getattr(res, k) else "")
            for k in RESOURCE_KEYS if getattr(res, k) is not None) for label, res, unc in blocks]


# --- inputs -----------------------------------------------------------------------------------

def teacher_inputs(x_raw: np.ndarray | None, x_student: np.ndarray, meta: ModelMeta, teacher_meta: ModelMeta):
    """The teacher's inputs: the raw events through the teacher's own input transform; without data,
    the student's inputs if both models share a transform, else None (no teacher comparison)."""
    if x_raw is not None:
        return teacher_meta.prepare_inputs(x_raw)
    return x_student if meta.same_transform(teacher_meta) else None


def _versions() -> dict:
    out = {}
    for pkg in ("hls4ml", "qkeras", "tensorflow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


# --- the stage ------------------------------------------------------------------------------------

def check_inputs(model_path: Path, *, config: SynthConfig, data, teacher, out_dir: Path, force: bool,
                 build: bool = False, trust: bool = False) -> None:
    """One-line errors for what can be checked before TensorFlow is imported: the FPGA part, the
    model and teacher files and their metadata, the data file (its kind and the model's view), the
    output folder, the toolchain (g++ that compiles; with ``build``, a warning if the vendor tool is
    missing: the project is still written and the build step fails at the end)."""
    check_part(config)
    for path in (model_path, teacher):
        if path is not None:
            with reading(path, "a Keras model", TRAINED_MODEL_REMEDY):
                check_model_file(path, trust=trust)  # unless trust: a file carrying code is refused
                load_meta(path)
    if data is not None:
        meta = load_meta(model_path)
        if meta is None or not meta.view:
            raise TriggerError("the model file has no 'view' in its metadata, so --data cannot be matched to it; "
                               "synthesize without --data (random inputs) or use a model written by `trigger train`")
        check_data_file(data, meta.view)
    check_output_free(out_dir, force, folder=True)
    require_compiler()
    if build:
        warn_missing_tool(config.backend)


def keep_failed_project(tmp: Path, out_dir: Path, error: CsimBuildError) -> TriggerError:
    """Copy the project whose C simulation did not compile to ``<out>.failed`` (replacing an earlier
    one; the temporary itself is removed by :func:`atomic_path`) and return the one-line error naming
    its build log. ``<out>`` itself is never written."""
    failed = out_dir.with_name(out_dir.name + ".failed")
    if (failed / BUILD_LOG).is_file():  # our own folder from an earlier failed run
        shutil.rmtree(failed)
    if failed.exists():  # something else: do not touch it
        failed = Path(tempfile.mkdtemp(prefix=out_dir.name + ".failed.", dir=out_dir.parent))
        failed.rmdir()
    try:
        shutil.copytree(tmp, failed, symlinks=True)
        if (failed / "hls4ml_config.yml").is_file():  # rebuilt there by hls4ml, not in the temporary
            point_config_at(failed, failed)
    except OSError as exc:  # e.g. a full disk: keep nothing half-copied
        shutil.rmtree(failed, ignore_errors=True)
        return TriggerError(f"g++ failed to compile the generated C simulation: {error.first_error}; the project "
                            f"and its compiler output could not be kept in {failed} ({exc.strerror or exc})")
    return TriggerError(f"g++ failed to compile the generated C simulation: {error.first_error}; the project "
                        f"is kept in {failed} with the full compiler output in {failed / BUILD_LOG}; "
                        f"nothing was written to {out_dir}")


def synthesize(model, *, config: SynthConfig, data=None, teacher=None, out=None, build: bool = False,
               force: bool = False, seed: int = 42, calibration=None, trust: bool = False) -> SynthResult:
    """Convert ``model`` (QKeras ``.h5``) with hls4ml, C-simulate it against QKeras, write the report.

    ``data``: HDF5 from ``trigger data`` (its test split is used when the model records its split),
    or None for random inputs on the model's input grid. ``teacher``: float ``.h5`` compared on the
    same events. ``out``: project folder (default ``firmware_projects/<model stem>``). ``build``: run
    the vendor C synthesis afterwards (:class:`ToolNotFoundError` if the tool is absent, after the
    project and report are written). ``seed``: the random inputs and hls4ml's conversion.
    ``calibration``: the estimator's calibration file (:func:`trigger.firmware.estimate.calibration.synth_calibration`:
    default the user's file written by ``trigger calibrate`` if it exists, else the builtin one).
    ``trust``: load model files that carry code (a Lambda layer), refused otherwise (``--trust-model``).
    """
    t_start = time.perf_counter()
    model_path = Path(model)
    out_dir = Path(out) if out is not None else DEFAULT_PROJECTS / model_path.stem
    # before importing TensorFlow and minutes of work: a typo or a wrong file costs no seconds
    check_inputs(model_path, config=config, data=data, teacher=teacher, out_dir=out_dir, force=force, build=build,
                 trust=trust)
    calibration = synth_calibration(calibration)
    keras_model = load_model(model_path, trust=trust)
    import tensorflow as tf  # noqa: F401  (loaded by load_model)

    set_seed(seed)
    meta = load_meta(model_path) or ModelMeta()
    teacher_model = load_model(teacher, trust=trust) if teacher is not None else None
    with atomic_path(out_dir, force=force) as tmp:
        tmp.mkdir(parents=True)
        try:
            report, conversion, estimate = _convert_and_simulate(
                model_path, keras_model, meta, teacher, teacher_model, config, data, seed, tmp, t_start,
                calibration=calibration)
        except CsimBuildError as exc:
            raise keep_failed_project(tmp, out_dir, exc) from None
        point_config_at(tmp, out_dir)  # hls4ml_config.yml names the folder by its published name
        write_json_and_markdown(tmp, report.to_json(indent=2), render_markdown(report))
    # the folder now has its final name; the build runs there so its paths are the final ones
    if build:
        require_tool(config.backend)  # ToolNotFoundError keeps everything written above
        vendor = run_csynth(conversion.hls_model, config.backend, out_dir)
        report = FirmwareReport.build(**report.to_dict() | {"vendor": vendor} | report_figures(
            estimate, vendor, config, [row.model_dump(by_alias=True) for row in report.layers]))
        write_json_and_markdown(out_dir, report.to_json(indent=2), render_markdown(report))
    return SynthResult(out_dir=out_dir, report=report)


def _convert_and_simulate(model_path: Path, keras_model, meta: ModelMeta, teacher, teacher_model,
                          config: SynthConfig, data, seed: int, tmp: Path, t_start: float, *,
                          calibration: Path | None = None):
    """Conversion into ``tmp``, C simulation, per-layer table and estimate (with the ``calibration``
    file, None for the builtin one): (report, conversion, estimate)."""
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    conversion = convert_model(keras_model, config, tmp)
    timing["convert_s"] = time.perf_counter() - t0
    x, labels, x_raw, inputs_desc, names = csim_inputs(data, meta, conversion.keras_model,
                                                       conversion.input_precision, config, seed)
    teacher_x = None
    if teacher_model is not None:
        teacher_x = teacher_inputs(x_raw, x, meta, load_meta(teacher) or ModelMeta())
    log.info("C simulation of %s on %s", model_path.name, inputs_desc)
    t0 = time.perf_counter()
    csim_meta = ModelMeta.build(**meta.to_dict() | {"class_names": names})
    csim = run_csim(conversion.hls_model, conversion.keras_model, x, labels=labels, meta=csim_meta,
                    teacher=teacher_model if teacher_x is not None else None, teacher_x=teacher_x,
                    inexact=conversion.inexact, output=config.output)
    timing["compile_s"] = csim.get("compile_seconds", 0.0)
    timing["csim_s"] = time.perf_counter() - t0 - timing["compile_s"]
    csim["inputs"] = inputs_desc
    layers, counts = layer_table(conversion.hls_model, config)
    estimate = estimate_model(conversion.hls_model, calibration=calibration).report()
    figures = report_figures(estimate, None, config, layers)
    timing["total_s"] = time.perf_counter() - t_start
    report = FirmwareReport.build(
        model={"path": str(model_path), "name": keras_model.name, "family": meta.family, "task": meta.task,
               "view": meta.view, "params": int(keras_model.count_params()),
               "input_type": conversion.input_precision, "class_names": names if data is not None else meta.class_names},
        config={**config.model_dump(), "io": conversion.io, "io_type": f"io_{conversion.io}",
                "project_name": "myproject", "versions": _versions()},
        layers=layers, csim=csim, latency=figures.pop("latency"), resources=figures.pop("resources"),
        budget=figures.pop("budget"), counts=counts, estimate=estimate, vendor=None,
        recipe=conversion.recipe, timing={k: round(v, 2) for k, v in timing.items()}, **figures)
    return report, conversion, estimate
