"""`trigger scan`: multi-objective design-space search over students, with the firmware in the loop.

Optuna proposes trials (grid, random, TPE or NSGA-II; its SQLite storage ``DIR/study.db`` is the
scan's memory), Dask runs them (:func:`trigger.stages.scan_trial.run_trial`, one TensorFlow per
worker process), and each finished trial is written at once (``DIR/trials/<id>/trial.json`` and
``DIR/trials.csv``).

Determinism and resume: trials are proposed in batches (``search.batch``, the NSGA-II population)
by a sampler seeded from the scan seed and the batch index, and a batch is told to the sampler in
trial order once all of it has finished. A scan killed and restarted on the same ``DIR`` therefore
re-proposes nothing: the trials of the interrupted batch that finished are told from their
records, the others are run again with the same parameters, and later batches are what an
uninterrupted run would have proposed (given the same trial results).
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trigger.config import resolve_repo_path
from trigger.data.dataset import check_data_file, view_shape
from trigger.errors import TriggerError
from trigger.firmware.estimate.calibration import synth_calibration
from trigger.models.io import check_model_file
from trigger.models.safety import input_shape, read_model_config
from trigger.runtime import atomic_path, log
from trigger.scan.config import MANIFEST, ScanConfig, ScanManifest, load_scan_config, read_base, read_manifest
from trigger.scan.results import TrialRecord, best_in_budget, export_csv, read_record, write_record
from trigger.scan.space import decode, directions, grid_size, make_sampler, objective_names, suggest
from trigger.stages.scan_trial import COLLAPSED, TrialSpec, run_trial

STUDY = "study.db"


@dataclass
class ScanResult:
    """What a scan run leaves: its folder, every finished record, and the best trial in budget."""

    out_dir: Path
    records: list[TrialRecord]
    best: TrialRecord | None


def prepare_scan(config: str | Path, *, data: str | Path, out: str | Path, trials: int | None = None,
                 seed: int | None = None, trust: bool = False) -> tuple[ScanConfig, ScanManifest, Path]:
    """Validate everything before any work: the scan config (each space key at both ends), the data
    file, the teacher (unless ``trust``, one carrying code is refused), and an existing ``out`` (only
    the same scan may be resumed there). Returns the scan config, the folder's manifest (the recorded
    one when resuming) and the folder."""
    scan = load_scan_config(config)
    update = {k: v for k, v in {"seed": seed}.items() if v is not None}
    if trials is not None:
        update["search"] = scan.search.model_copy(update={"trials": trials})
    scan = scan.model_copy(update=update)
    data_path, out_dir = Path(data).resolve(), Path(out).resolve()
    if not data_path.is_file():
        raise TriggerError(f"data file {data} not found; make it with `trigger data` (or `make data`)")
    # a damaged file or one without the base model's view: one line now, not a failure in every trial
    view = read_base(scan).model.data.view
    check_data_file(data_path, view)
    teacher = resolve_repo_path(scan.teacher)
    if not teacher.is_file():
        raise TriggerError(f"{config}: teacher {scan.teacher} not found; train it with `trigger train {scan.model}`")
    check_model_file(teacher, trust=trust)  # read as data, before any trial loads it
    _check_teacher_inputs(config, teacher, data_path, view)
    calibration = synth_calibration(scan.calibration)  # a bad file: one line now, not in every trial
    scan = scan.model_copy(update={"calibration": str(calibration.resolve()) if calibration else "builtin"})
    return scan, _manifest_for(out_dir, scan, data_path), out_dir


def _check_teacher_inputs(config: str | Path, teacher: Path, data: Path, view: str) -> None:
    """The teacher reads what the students are trained on: its declared input shape is the data
    view's (read as data from both files); one line otherwise."""
    declared = input_shape(read_model_config(teacher)[0])
    shape = view_shape(data, view)
    if declared is not None and tuple(declared) != shape:
        raise TriggerError(f"{config}: teacher {teacher} reads inputs of shape {tuple(declared)}, but the "
                           f"students' view '{view}' of {data} is {shape}; give the teacher of this model family")


def _manifest_for(out_dir: Path, scan: ScanConfig, data: Path) -> ScanManifest:
    """The manifest this run works with: a new folder's, or the recorded one if it is the same scan."""
    path = out_dir / MANIFEST
    if out_dir.exists() and not path.is_file() and any(out_dir.iterdir()):
        raise TriggerError(f"{out_dir} exists and is not a scan folder; choose another --out")
    current = ScanManifest.build(scan, data, read_base(scan))
    if not path.is_file():
        return current
    recorded = read_manifest(path, current.base)
    if (recorded.scan, recorded.data) != (current.scan, current.data):
        raise TriggerError(f"{out_dir} holds a scan with another config, seed or data file; resume it with the "
                           "same command or choose another --out")
    for name, now in (("model", scan.model), ("synth", scan.synth)):
        if getattr(recorded.base, name) != getattr(current.base, name):
            log.warning("%s changed since this scan started; its trials go on with the copy recorded in %s",
                        now, path)
    return recorded


def _open_study(out_dir: Path, scan: ScanConfig, manifest: ScanManifest) -> Any:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # constraints_func is marked experimental in Optuna 4; the pinned version's behaviour is tested
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = manifest.model_dump_json(indent=2) + "\n"
    path = out_dir / MANIFEST
    if not path.is_file() or path.read_text() != text:  # new, or a schema-1 manifest gains its base configs
        with atomic_path(path, force=True) as tmp:
            tmp.write_text(text)
    storage = optuna.storages.RDBStorage(f"sqlite:///{out_dir / STUDY}")
    return optuna.create_study(study_name=scan.name, storage=storage, directions=directions(scan),
                               load_if_exists=True)


def _constraints(records: dict[int, TrialRecord]) -> Callable[[Any], list[float]]:
    """Optuna's constraint for a told trial (<= 0 is feasible): inside the Level-1 budget, read from
    the trial's record (the sampler stores it in the study when the trial is told)."""
    return lambda frozen: [0.0 if records[frozen.number].fits_budget else 1.0]


def _values(scan: ScanConfig, record: TrialRecord) -> list[float]:
    by_name = {"metric": record.metric, "cost": record.cost, "LUT": record.LUT, "DSP": record.DSP,
               "FF": record.FF, "latency_ns": record.latency_ns}
    return [float(by_name[name]) for name in objective_names(scan)]


def _tell_batch(study: Any, scan: ScanConfig, numbers: list[int], records: dict[int, TrialRecord]) -> None:
    """Tell a finished batch to its sampler, in trial order (the proposals do not depend on timing);
    a failed trial, or one without a usable value, is told as failed."""
    import optuna

    _use_sampler(study, scan, numbers[0], records)
    for number in numbers:
        record = records[number]
        values = _values(scan, record) if record.status == "complete" else None
        try:
            if values is None or any(v != v for v in values):  # NaN: not a usable result
                study.tell(number, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(number, values)
        except RuntimeError as exc:
            # Optuna's GridSampler stops the study once its last point is told, which ask-and-tell
            # cannot: a RuntimeError after the trial is stored (optuna/optuna#5141; its docs say so)
            if not (scan.search.sampler == "grid" and "Study.stop" in str(exc)):
                raise


def target_trials(scan: ScanConfig) -> int:
    """The trials a run finishes: ``search.trials``, but no more than the grid has points (once the
    grid is exhausted Optuna would propose its points again)."""
    if scan.search.sampler == "grid":
        return min(scan.search.trials, grid_size(scan))
    return scan.search.trials


def _pending(study: Any, scan: ScanConfig) -> list[tuple[int, dict[str, Any]]]:
    """Trials asked but never told (a killed run): (number, decoded values)."""
    import optuna

    running = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    return [(t.number, {k: decode(scan.space[k], v) for k, v in t.params.items()}) for t in running]


def _use_sampler(study: Any, scan: ScanConfig, first_number: int, records: dict[int, TrialRecord]) -> None:
    """The sampler of the batch starting at trial ``first_number``: seeded by the batch index, its
    constraint read from the records. Set before a batch is asked and again before it is told, so a
    batch resumed after a kill is told (and its constraints stored) as an uninterrupted run tells it."""
    study.sampler = make_sampler(scan, first_number // scan.search.batch, _constraints(records))


def _ask_batch(study: Any, scan: ScanConfig, size: int,
               records: dict[int, TrialRecord]) -> list[tuple[int, dict[str, Any]]]:
    _use_sampler(study, scan, len(study.get_trials(deepcopy=False)), records)
    asked = []
    for _ in range(size):
        trial = study.ask()
        asked.append((trial.number, {name: suggest(trial, name, p) for name, p in scan.space.items()}))
    return asked


def _finished(study: Any) -> int:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return sum(t.state in done for t in study.get_trials(deepcopy=False))


class _Progress:
    """A bar over trials (tqdm on a terminal, a log line per trial otherwise) with the best trial
    inside the budget so far."""

    def __init__(self, total: int, done: int, records: list[TrialRecord]) -> None:
        from tqdm.auto import tqdm

        self.records = records
        self.bar = tqdm(total=total, initial=done, unit="trial", desc="scan", disable=None)

    def update(self, record: TrialRecord) -> None:
        self.records.append(record)
        best = best_in_budget(self.records)
        text = (f"best in budget: #{best.number} {best.metric_name} {best.metric:.4f}" if best
                else "no trial in budget yet")
        self.bar.set_postfix_str(text)
        self.bar.update(1)
        if self.bar.disable:
            log.info("trial %d %s (%s); %s", record.number, record.status, record.error or
                     f"{record.metric_name} {record.metric:.4f}", text)

    def close(self) -> None:
        self.bar.close()


def _run_batch(client: Any, specs: list[TrialSpec], on_done) -> dict[int, TrialRecord]:
    """Run a batch on Dask; each finished trial is handed to ``on_done`` at once. A trial that raised
    or lost its worker is retried once (Dask's ``retries``), then recorded as failed."""
    from trigger.executor import completed

    by_number = {spec.number: spec for spec in specs}

    def failed(number: int, exc: Exception) -> TrialRecord:
        spec = by_number[number]
        return TrialRecord.build(number=number, status="failed", params=spec.values, seed=spec.seed,
                                 error=f"{type(exc).__name__}: {exc}".splitlines()[0])

    results: dict[int, TrialRecord] = {}
    for number, record in completed(client, run_trial, ((spec.number, (spec,)) for spec in specs),
                                    retries=1, on_error=failed):
        results[number] = record
        on_done(record)
    return results


def _record_done(out_dir: Path, progress: _Progress, all_records: dict[int, TrialRecord]):
    def on_done(record: TrialRecord) -> None:
        write_record(out_dir, record)
        all_records[record.number] = record
        export_csv(sorted(all_records.values(), key=lambda r: r.number), out_dir / "trials.csv")
        progress.update(record)
    return on_done


#: this many trials failing with one error, and none complete, stop the scan (the cause is not the trial)
FAIL_FAST_TRIALS = 3


def systematic_failure(records: dict[int, TrialRecord], threshold: int = FAIL_FAST_TRIALS) -> str | None:
    """The one line a scan stops with when its first ``threshold`` or more finished trials all failed
    with the same error (trial folders aside) and none completed; None otherwise. A collapsed student
    is an outcome of its parameters, not a systematic failure."""
    if len(records) < threshold or any(r.status == "complete" or (r.error or "").startswith(COLLAPSED)
                                       for r in records.values()):
        return None
    errors = {re.sub(r"trials/\d+", "trials/*", r.error or "") for r in records.values()}
    if len(errors) != 1:
        return None
    return (f"the first {len(records)} trials all failed with the same error, none completed: {errors.pop()}; "
            "the cause is not one trial's parameters: fix it, then resume with the same command")


def _existing_records(out_dir: Path, study: Any) -> dict[int, TrialRecord]:
    records = {}
    for trial in study.get_trials(deepcopy=False):
        record = read_record(out_dir, trial.number)
        if record is not None:
            records[trial.number] = record
    return records


def run_scan(config: str | Path, *, data: str | Path, out: str | Path, trials: int | None = None,
             workers: int | None = None, scheduler: str | None = None, seed: int | None = None,
             trust: bool = False) -> ScanResult:
    """Run (or resume) a scan until ``search.trials`` trials have finished; see the module docstring.
    ``trust``: the teacher file may carry code (``--trust-model``); refused otherwise."""
    from trigger.executor import dask_client

    scan, manifest, out_dir = prepare_scan(config, data=data, out=out, trials=trials, seed=seed, trust=trust)
    study = _open_study(out_dir, scan, manifest)
    data_path = Path(manifest.data)
    records = _existing_records(out_dir, study)
    progress = _Progress(target_trials(scan), _finished(study), list(records.values()))
    on_done = _record_done(out_dir, progress, records)
    try:
        local = workers if workers is not None or scheduler is not None else 1
        with dask_client(workers=local, scheduler=scheduler) as client:
            while True:
                batch = _pending(study, scan)
                if not batch:
                    remaining = target_trials(scan) - _finished(study)
                    if remaining <= 0:
                        break
                    batch = _ask_batch(study, scan, min(scan.search.batch, remaining), records)
                todo = [TrialSpec(scan, manifest.base, out_dir, n, values, data_path, scan.seed, trust)
                        for n, values in batch if n not in records]
                _run_batch(client, todo, on_done)
                _tell_batch(study, scan, [number for number, _ in batch], records)
                stop = systematic_failure(records)
                if stop is not None:
                    raise TriggerError(stop)
    finally:
        progress.close()
    done = sorted(records.values(), key=lambda r: r.number)
    return ScanResult(out_dir=out_dir, records=done, best=best_in_budget(done))
