"""Reference models: the shipped configs trained on the full generated data.

``make reference`` (after ``make data``) runs, for each family: ``trigger train`` into
``models/<name>/``, ``trigger synth`` into ``firmware_projects/<name>/`` (only its report.md is
committed), a committed check sample (``models/<name>/check_sample.h5``: held-out test events,
with the metric the student reaches on them in ``check.json``), a model card
(``models/<name>/README.md``) and the table in ``docs/RESULTS.md``. The same library functions
as the CLI are called; nothing here trains or converts on its own. ``python -m trigger.reference``
(``make reference``) runs :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from trigger.config import (CONFIG_DIR, REPO_ROOT, ModelConfig, ReferenceFirmwareConfig, SynthConfig,
                            apply_overrides, load_config, resolve_repo_path)
from trigger.contracts import FirmwareReport, TrainMetrics
from trigger.data import load_dataset, read_attrs
from trigger.data.dataset import write_subset
from trigger.errors import TriggerError
from trigger.firmware.synth import sized_resources
from trigger.models.io import load_meta
from trigger.report.markdown import significant, table
from trigger.report.render import budget_verdict
from trigger.runtime import atomic_path, log, run_main, setup_logging
from trigger.stages.synth import synthesize
from trigger.stages.train import train

REFERENCES = ("jet_mlp", "jet_cnn", "jet_gnn", "ad_autoencoder")
MODELS_DIR = REPO_ROOT / "models"
FIRMWARE_DIR = REPO_ROOT / "firmware_projects"
CHECK_EVENTS = {"jets": 1000, "ad": 2000}  # committed held-out events (<= SynthConfig.max_csim_events)
FIRMWARE_CONFIGS = CONFIG_DIR / "reference" / "firmware.yaml"


def reference_firmware(name: str) -> Path:
    """The firmware config file reference ``name`` is converted with (``configs/reference/firmware.yaml``),
    relative to the repository root as the config writes it."""
    listed = load_config(FIRMWARE_CONFIGS, ReferenceFirmwareConfig).firmware
    if set(listed) != set(REFERENCES):
        raise TriggerError(f"{FIRMWARE_CONFIGS}: 'firmware' must name each of {', '.join(REFERENCES)} once "
                           f"(it names {', '.join(sorted(listed))})")
    path = Path(listed[name])
    if not resolve_repo_path(path).is_file():
        raise TriggerError(f"{FIRMWARE_CONFIGS}: firmware.{name}: {path} not found; name a file of configs/synth/")
    return path


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path, force=True) as tmp:
        tmp.write_text(text)


def check_sample(name: str, data: Path, model_dir: Path) -> Path:
    """Write ``model_dir/check_sample.h5``: an even subsample of the model's own test split."""
    meta = load_meta(model_dir / "model.h5")
    if meta is None:
        raise TriggerError(f"{model_dir / 'model.h5'} has no trigger metadata; retrain it with `trigger train`")
    ds = load_dataset(data, meta.view)
    test = meta.split(len(ds.y), source=str(model_dir / "model.h5"))[2]
    n = min(CHECK_EVENTS[ds.kind], len(test))
    if ds.kind == "ad":  # keep every signal represented: all background first, then signals
        bg, sig = test[ds.y[test] == 0], test[ds.y[test] > 0]
        n_sig = min(len(sig), n // 4)
        pick = np.concatenate([bg[np.linspace(0, len(bg) - 1, n - n_sig).astype(int)],
                               sig[np.linspace(0, len(sig) - 1, n_sig).astype(int)]])
    else:
        pick = test[np.linspace(0, len(test) - 1, n).astype(int)]
    return write_subset(data, model_dir / "check_sample.h5", meta.view, pick, split="test", force=True)


def build_reference(name: str, data: Path, *, synth: SynthConfig | None = None, seed: int | None = None,
                    reuse_trained: bool = False, reuse_teacher: bool = False) -> dict:
    """Train, synthesize and document one reference model; return its summary row.

    ``reuse_trained``: keep an existing ``models/<name>/`` written by ``trigger train`` on ``data``
    instead of training again (its metrics.json must name the same data file). ``reuse_teacher``:
    train only the student, distilled from the committed ``models/<name>/teacher.h5`` (promoting a
    scan's student: every trial of the scan was distilled from that teacher)."""
    cfg = apply_overrides(load_config(CONFIG_DIR / f"{name}.yaml", ModelConfig), {"seed": seed})
    # paths inside the working directory are written relative to it, so the committed metrics and
    # reports read the same in every clone (`make reference` runs from the repository root)
    data = _relative(data)
    model_dir, fw_dir = _relative(MODELS_DIR / name), _relative(FIRMWARE_DIR / name)
    if reuse_trained and (model_dir / "metrics.json").is_file():
        metrics = TrainMetrics.read(model_dir / "metrics.json")
        if Path(metrics.data.file).name != data.name:
            raise TriggerError(f"models/{name} was trained on {metrics.data.file}, not {data}; "
                               "run without --reuse-trained")
        log.info("== %s: reusing the trained models/%s", name, name)
    else:
        teacher = _committed_teacher(name, model_dir, data) if reuse_teacher else None
        log.info("== %s: training on %s%s", name, data, f" from the committed {teacher}" if teacher else "")
        train(cfg, data=data, out=model_dir, force=True, teacher=teacher)
        metrics = TrainMetrics.read(model_dir / "metrics.json")
    synth = synth or load_config(resolve_repo_path(reference_firmware(name)), SynthConfig)
    log.info("== %s: firmware", name)
    # the committed references are estimated with the builtin calibration, never a user's file
    fw = synthesize(model_dir / "model.h5", config=synth, data=data, teacher=model_dir / "teacher.h5",
                    out=fw_dir, force=True, calibration="builtin")
    sample = check_sample(name, data, model_dir)
    log.info("== %s: C simulation of the check sample", name)
    check_fw = synthesize(model_dir / "model.h5", config=synth, data=sample, teacher=model_dir / "teacher.h5",
                          out=fw_dir.parent / f".{name}_check", force=True, calibration="builtin")
    phys = check_fw.report.csim.physics
    scores = {role: s.model_dump(exclude_unset=True) if (s := getattr(phys, role)) is not None else None
              for role in ("qkeras", "csim", "teacher")}
    check = {"sample": sample.name, "n_events": check_fw.report.csim.n_events, "metric": phys.metric, **scores,
             "bit_exact_fraction": check_fw.report.csim.bit_exact_fraction}
    _write_text(model_dir / "check.json", json.dumps(check, indent=2) + "\n")
    shutil.rmtree(fw_dir.parent / f".{name}_check", ignore_errors=True)
    row = summary_row(name, metrics, fw.report)
    _write_text(model_dir / "README.md", model_card(name, cfg, data, metrics, fw.report, check))
    return row


def _committed_teacher(name: str, model_dir: Path, data: Path) -> Path:
    """``models/<name>/teacher.h5``, checked to have been trained on ``data``."""
    teacher, metrics = model_dir / "teacher.h5", model_dir / "metrics.json"
    if not teacher.is_file() or not metrics.is_file():
        raise TriggerError(f"models/{name} has no committed teacher; run without --reuse-teacher")
    trained_on = TrainMetrics.read(metrics).data.file
    if Path(trained_on).name != data.name:
        raise TriggerError(f"models/{name}/teacher.h5 was trained on {trained_on}, not {data}; "
                           "run without --reuse-teacher")
    return teacher


def _relative(path: Path) -> Path:
    """``path`` relative to the working directory when it lies inside it, else unchanged."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)


def summary_row(name: str, metrics: TrainMetrics, report: FirmwareReport) -> dict:
    """The numbers of one reference model for docs/RESULTS.md."""
    ad = metrics.task == "anomaly"
    key = "mean_auc" if ad else "accuracy"
    lat, res, csim = report.latency, report.resources, report.csim
    return {
        "name": name, "metric": "mean AUC" if ad else "accuracy",
        "teacher": getattr(metrics.teacher, key), "student": getattr(metrics.student, key),
        "csim": getattr(csim.physics.csim, key) if csim.physics is not None and csim.physics.csim else None,
        "bits": _bits_summary(metrics.student_bits),
        "sparsity": metrics.sparsity.get("trainable_total"),
        "bops_teacher": metrics.bops.teacher, "bops_student": metrics.bops.student,
        "bit_exact": csim.bit_exact_fraction, "csim_events": csim.n_events,
        "latency_cycles": lat.max_cycles, "latency_ns": lat.ns, "interval": lat.interval,
        "DSP": res.DSP, "LUT": res.LUT, "FF": res.FF, "BRAM_18K": res.BRAM_18K,
        "source": lat.source, "n_test": metrics.data.n_test, "sized": _sized(report),
        "extra": ({"efficiency": metrics.student.efficiency, "rate_khz": metrics.student.rate_resolved_khz}
                  if ad else {}),
    }


def _sized(report: FirmwareReport) -> dict:
    """The resources the design is sized on (after logic synthesis) with their source: what
    `trigger scan` records per trial, so a scan's plots set the reference beside its trials."""
    res, source = sized_resources(report)
    return {"DSP": res.DSP, "LUT": res.LUT, "FF": res.FF, "BRAM_18K": res.BRAM_18K, "source": source}


def _bits_summary(bits: dict) -> str:
    """The quantizer kinds of ``student_bits``, e.g. 'quantized_bits(6), quantized_relu(6)'."""
    kinds = sorted({q.split("(")[0] + "(" + q.split("(")[1].split(",")[0] for v in bits.values()
                    for q in v.values() if "(" in q})
    return ", ".join(k + ")" for k in kinds)


def model_card(name: str, cfg: ModelConfig, data: Path, metrics: TrainMetrics, report: FirmwareReport,
               check: dict) -> str:
    """A short model card: data, config, seed, metrics, bits, sparsity, BOPs, firmware."""
    attrs = read_attrs(data)
    d = metrics.data
    lines = [f"# Reference model `{name}`", "",
             f"Family `{cfg.family}`, config [`configs/{name}.yaml`](../../configs/{name}.yaml), "
             f"seed {metrics.seed}. Trained by `make reference` "
             f"(`trigger train configs/{name}.yaml --data {data.as_posix()} --out models/{name}`).", "",
             "## Data", "",
             f"- `{data.name}`: `trigger data {attrs.get('kind')}` (Pythia 8 + FastJet, generator seed "
             f"{attrs.get('seed')}), view `{d.view}`, input transform `{d.input_transform}`.",
             f"- {d.n_train} train / {d.n_val} validation / {d.n_test} test events"
             + (" (training and validation on Standard-Model background only)" if d.train_background_only else "")
             + ".", "", "## Metrics on the test split", ""]
    lines += _anomaly_table(metrics) if metrics.task == "anomaly" else _classifier_table(metrics)
    sp = metrics.sparsity
    cfg_ = report.config
    lines += ["", "## Student", "",
              f"- quantizers: {_bits_summary(metrics.student_bits)} (per layer in `metrics.json`, `student_bits`)",
              f"- sparsity of trainable weights: {significant(sp.get('trainable_total'), 3)} "
              f"(per layer: {', '.join(f'{k} {v:.2f}' for k, v in sp.items() if k not in ('total', 'trainable_total'))})",
              f"- BOPs: teacher {significant(metrics.bops.teacher)}, student {significant(metrics.bops.student)} "
              f"({metrics.bops.ratio:.1f}x fewer)", "",
              "## Firmware", "",
              f"[`firmware_projects/{name}/report.md`](../../firmware_projects/{name}/report.md): "
              f"{cfg_.backend}, {cfg_.part}, {cfg_.clock_ns} ns, {cfg_.strategy}, reuse {cfg_.reuse}, {cfg_.io_type}, "
              f"parallelization factor {cfg_.parallelization_factor} "
              f"(`trigger synth models/{name}/model.h5 --config {reference_firmware(name).as_posix()} "
              f"--data {data.as_posix()} --teacher models/{name}/teacher.h5`).", ""]
    csim, lat, res, budget = report.csim, report.latency, report.resources, report.budget
    lines += [f"- C simulation: {csim.bit_exact_fraction:.6f} of {csim.n_values} {csim.compared} "
              f"bit-exact to QKeras ({csim.n_events} test events).",
              f"- latency ({lat.source}): {lat.max_cycles} cycles = {lat.ns:.0f} ns, "
              f"initiation interval {lat.interval} cycles.",
              f"- resources ({res.source}): DSP {res.DSP}, LUT {res.LUT}, FF {res.FF}, BRAM_18K {res.BRAM_18K}."]
    if budget is not None and budget.fits is not None:
        lines.append(f"- Level-1 budget ({budget.source}): {budget_verdict(budget)}.")
    lines += ["", "## Check sample", "",
              f"`check_sample.h5` holds {check['n_events']} events of the test split; `check.json` records the "
              f"student's {check['metric']} on them (QKeras {significant(check['qkeras'][check['metric']])}, "
              f"C simulation {significant(check['csim'][check['metric']])}). "
              "`tests/test_reference.py` re-runs both.", ""]
    return "\n".join(lines)


def _anomaly_table(metrics: TrainMetrics) -> list[str]:
    t, s = metrics.teacher, metrics.student
    header = ["", "mean AUC", *(f"AUC {k}" for k in t.auc), *(f"eff. {k}" for k in t.efficiency)]
    lines = table(header, [[role, m.mean_auc, *m.auc.values(), *m.efficiency.values()]
                           for role, m in (("float teacher", t), ("QKeras student", s))], significant)
    return lines + ["", f"Signal efficiencies at {significant(s.rate_resolved_khz)} kHz of the 40 MHz collision rate "
                    + ("(the 1 kHz target)." if s.resolved else
                       f"(the smallest rate the {s.n_background} test background events resolve; "
                       "the 1 kHz target needs 40k).")]


def _classifier_table(metrics: TrainMetrics) -> list[str]:
    t = metrics.teacher
    roles = [("float teacher", t), ("float student (before compression)", metrics.student_float),
             ("QKeras student", metrics.student)]
    return table(["", "accuracy", "mean AUC", *(f"AUC {k}" for k in t.auc)],
                 [[role, m.accuracy, m.mean_auc, *m.auc.values()] for role, m in roles
                  if m and m.accuracy is not None], significant)


def results_markdown(rows: list[dict]) -> str:
    """The table of docs/RESULTS.md for the reference models."""
    header = ["model", "metric", "float teacher", "QKeras student", "csim (fixed point)", "quantizers", "sparsity",
              "BOPs teacher / student", "csim bit-exact", "latency", "II", "DSP", "LUT", "FF", "BRAM18", "source"]
    f = significant
    return "\n".join(table(header, [
        [f"`{r['name']}`", r["metric"], f(r["teacher"]), f(r["student"]), f(r["csim"]), r["bits"],
         f(r["sparsity"], 3), f"{f(r['bops_teacher'])} / {f(r['bops_student'])}",
         f"{f(r['bit_exact'])} ({r['csim_events']} ev.)", f"{r['latency_cycles']} cyc = {f(r['latency_ns'])} ns",
         r["interval"], r["DSP"], r["LUT"], r["FF"], r["BRAM_18K"], r["source"]] for r in rows]))


RESULTS_DOC = REPO_ROOT / "docs" / "RESULTS.md"
TABLE_BEGIN, TABLE_END = "<!-- reference-table: written by `make reference` -->", "<!-- /reference-table -->"


def update_results_doc(table: str) -> None:
    """Replace the generated table of docs/RESULTS.md (between its markers); the prose stays."""
    text = RESULTS_DOC.read_text()
    if TABLE_BEGIN not in text or TABLE_END not in text:
        raise TriggerError(f"{RESULTS_DOC} lacks the markers {TABLE_BEGIN!r} ... {TABLE_END!r}; restore them")
    head, rest = text.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    _write_text(RESULTS_DOC, f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trigger.reference", description=__doc__)
    parser.add_argument("names", nargs="*", default=list(REFERENCES), help="reference models to build")
    parser.add_argument("--jets", type=Path, default=REPO_ROOT / "data" / "jets.h5")
    parser.add_argument("--ad", type=Path, default=REPO_ROOT / "data" / "ad.h5")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--reuse-trained", action="store_true",
                       help="keep models/<name> already trained on the same data instead of retraining")
    group.add_argument("--reuse-teacher", action="store_true",
                       help="train only the student, from the committed models/<name>/teacher.h5 (promoting a "
                            "student found by `trigger scan`, whose trials used that teacher)")
    args = parser.parse_args(argv)
    setup_logging()
    return run_main("reference", lambda: _build_all(args))


def _build_all(args: argparse.Namespace) -> None:
    """Build the named references, then rewrite the RESULTS table from every summary.json."""
    for name in args.names:
        if name not in REFERENCES:
            raise TriggerError(f"unknown reference model {name!r}; choose from {', '.join(REFERENCES)}")
        kind = load_config(CONFIG_DIR / f"{name}.yaml", ModelConfig).data.kind
        row = build_reference(name, args.jets if kind == "jets" else args.ad, reuse_trained=args.reuse_trained,
                              reuse_teacher=args.reuse_teacher)
        _write_text(MODELS_DIR / name / "summary.json", json.dumps(row, indent=2) + "\n")
    rows = [json.loads((MODELS_DIR / n / "summary.json").read_text()) for n in REFERENCES
            if (MODELS_DIR / n / "summary.json").is_file()]
    table = results_markdown(rows)
    update_results_doc(table)
    print(table)


if __name__ == "__main__":
    raise SystemExit(main())
