"""The ``trigger`` command line: parses arguments and calls the stage libraries, nothing more.

data -> train -> compress -> synth -> report. User mistakes (:class:`TriggerError`) print one line
on stderr and exit 2. Any other exception that escapes a stage (a file or model no check foresaw, or
a bug of ours) is also one line and exit 2, but says it is unexpected, names the input files and
asks for ``-v`` (which prints the traceback) and a report.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Sequence

from trigger import __version__
from trigger.errors import TriggerError

DEFAULT_SEED = 42


# --- subcommands --------------------------------------------------------------------------------

def _cmd_data(args: argparse.Namespace) -> int:
    from trigger.runtime import check_output_free

    check_output_free(args.out, args.force, folder=False)  # --force never replaces a folder by the file
    # --workers defaults to 1 only without --scheduler (giving both is refused in one line)
    workers = 1 if args.workers is None and args.scheduler is None else args.workers
    execution = {"workers": workers, "scheduler": args.scheduler, "chunk_size": args.chunk_size}
    if args.kind == "jets":
        from trigger.data import generate_jets

        path = generate_jets(out=args.out, n_per_class=args.n_per_class, n_particles=args.particles,
                             image_size=args.image_size, seed=args.seed, force=args.force, **execution)
    else:
        from trigger.data import generate_ad

        path = generate_ad(out=args.out, n_background=args.n_background, n_signal=args.n_signal,
                           seed=args.seed, force=args.force, **execution)
    print(f"wrote {path}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from trigger.config import ModelConfig, apply_overrides, load_config

    config = apply_overrides(load_config(args.config, ModelConfig), {"seed": args.seed_given})
    from trigger.stages import train

    print(train(config, data=args.data, out=args.out, force=args.force, teacher=args.teacher,
                trust=args.trust_model).summary())
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    from trigger.config import CompressConfig, apply_overrides, load_config, validate_config

    base = load_config(args.config, CompressConfig) if args.config else validate_config({}, CompressConfig)
    config = apply_overrides(base, {
        "quantization.weight_bits": args.bits, "quantization.activation_bits": args.bits,
        "pruning.sparsity": args.sparsity, "distillation.enabled": args.distill, "seed": args.seed_given})
    from trigger.stages import compress_file

    print(compress_file(args.model, data=args.data, config=config, out=args.out, force=args.force,
                        trust=args.trust_model).summary())
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from trigger.config import SynthConfig, apply_overrides, load_config, validate_config

    base = load_config(args.config, SynthConfig) if args.config else validate_config({}, SynthConfig)
    config = apply_overrides(base, {
        "backend": args.backend, "part": args.part, "clock_ns": args.clock_ns, "reuse": args.reuse,
        "strategy": args.strategy, "io": args.io, "parallelization_factor": args.parallelization_factor,
        "output": args.output})
    from trigger.stages import synthesize

    result = synthesize(args.model, config=config, data=args.data, teacher=args.teacher, out=args.out,
                        build=args.build, force=args.force, seed=args.seed, calibration=args.calibration,
                        trust=args.trust_model)
    print(result.summary())
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from trigger.stages.calibrate import calibrate

    print(calibrate(args.projects, out=args.out).summary())
    return 0


def _cmd_rtl(args: argparse.Namespace) -> int:
    from trigger.stages.rtl import rtl

    result = rtl(args.model, data=args.data, out=args.out, clock_ns=args.clock_ns, pipeline=args.pipeline,
                 synth=not args.no_synth, hls=not args.no_hls, seed=args.seed, force=args.force,
                 trust=args.trust_model)
    print(result.summary())
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from trigger.report import read_report
    from trigger.runtime import reading

    with reading(args.directory, "a firmware project folder", "rerun `trigger synth` with --force"):
        text = read_report(args.directory)
    print(text)
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    if args.target == "report":
        from trigger.stages.scan_report import scan_report

        print(scan_report(_scan_dir(args)))
    elif args.target == "export":
        from trigger.stages.scan_report import export_trial

        if args.trial is None or args.out is None:
            raise TriggerError("`trigger scan export DIR` needs --trial ID and --out MODEL_DIR")
        print(f"wrote {export_trial(_scan_dir(args), args.trial, args.out, force=args.force)}")
    else:
        from trigger.stages.scan import run_scan

        if args.directory is not None or args.data is None or args.out is None:
            raise TriggerError("`trigger scan CONFIG` needs --data FILE and --out DIR (and no second "
                               "positional argument; `trigger scan report DIR` prints a finished scan)")
        result = run_scan(args.target, data=args.data, out=args.out, trials=args.trials, workers=args.workers,
                          scheduler=args.scheduler, seed=args.seed_given, trust=args.trust_model)
        best = result.best
        print(f"{len(result.records)} trials in {result.out_dir}; best inside the budget: "
              + (f"trial {best.number}, {best.metric_name} {best.metric:.4f}" if best else "none")
              + f"; `trigger scan report {result.out_dir}` prints the Pareto table and draws the plots")
    return 0


def _cmd_configs(args: argparse.Namespace) -> int:
    from trigger.config import copy_config, format_config_list

    if args.action == "list":
        print(format_config_list())
    else:
        print(f"wrote {copy_config(args.name, args.directory, force=args.force)}")
    return 0


def _scan_dir(args: argparse.Namespace) -> str:
    if args.directory is None:
        raise TriggerError(f"`trigger scan {args.target}` needs the scan folder: trigger scan {args.target} DIR")
    return args.directory


# --- parser -------------------------------------------------------------------------------------

def _parallelization_factor(text: str) -> int | str:
    """--parallelization-factor: 'full' or a positive integer (argparse turns the error into usage)."""
    if text == "full":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not 'full' or an integer >= 1")


def _common(p: argparse.ArgumentParser, *, force: bool = True) -> None:
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS,
                   help=f"seed for python, numpy and tensorflow (default {DEFAULT_SEED}, or the config's)")
    if force:
        p.add_argument("--force", action="store_true", help="overwrite an existing output")


def _trust_model(p: argparse.ArgumentParser) -> None:
    """--trust-model on every command that reads a model file."""
    p.add_argument("--trust-model", action="store_true",
                   help="load model files that carry code (a Lambda layer, a serialized function, a class "
                        "trigger does not know), refused otherwise: only for your own files (docs/models.md)")


def build_parser() -> argparse.ArgumentParser:
    """The full ``trigger`` argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="trigger",
        description="Neural networks to nanosecond-latency FPGA trigger firmware: "
                    "data -> train -> compress -> synth -> report.")
    parser.add_argument("--version", action="version", version=f"trigger {__version__}")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"global seed for python, numpy and tensorflow (default {DEFAULT_SEED})")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_data, _add_train, _add_compress, _add_synth, _add_calibrate, _add_rtl, _add_report, _add_scan,
                _add_configs):
        add(sub)
    return parser


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="generate jet or anomaly-detection events (Pythia 8 + FastJet)",
                       description="Generate a data set with Pythia 8 and FastJet. Reads nothing; "
                                   "writes one HDF5 file (--out) with arrays, labels, names, generator "
                                   "settings, seed and package versions.")
    dsub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    pj = dsub.add_parser("jets", help="5-class jets (g, q, W, Z, t) like the hls4ml LHC jet data set",
                         description="Writes datasets hlf (N,16), constituents (N,P,3), images "
                                     "(N,S,S,1), labels, and jet kinematics to --out.")
    pj.add_argument("--n-per-class", type=int, default=1000, help="jets per class (default 1000)")
    pj.add_argument("--particles", type=int, default=16, help="constituents kept per jet, P (default 16, max 32)")
    pj.add_argument("--image-size", type=int, default=16, help="image side S in pixels (default 16)")
    pj.add_argument("--out", type=Path, default=Path("data/jets.h5"), help="output HDF5 (default data/jets.h5)")
    pa = dsub.add_parser("ad", help="L1 events (MET, e, mu, jets) like CMS ADC2021, SM + 4 BSM signals",
                         description="Writes datasets features (N,57), labels and the background "
                                     "sub-process of each event to --out.")
    pa.add_argument("--n-background", type=int, default=10000, help="SM background events (default 10000)")
    pa.add_argument("--n-signal", type=int, default=1000, help="events per BSM signal (default 1000)")
    pa.add_argument("--out", type=Path, default=Path("data/ad.h5"), help="output HDF5 (default data/ad.h5)")
    for q, unit in ((pj, "jets"), (pa, "events")):
        q.add_argument("--workers", type=int, default=None,
                       help="local worker processes, a Dask LocalCluster (default 1: in this process)")
        q.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the workers of this Dask scheduler, e.g. tcp://10.0.0.5:8786 (not with --workers)")
        q.add_argument("--chunk-size", type=int, default=None, metavar="K",
                       help=f"{unit} per chunk, each a shard in OUT.parts/ that a rerun after a kill reuses; whole "
                            f"units of at most {200 if unit == 'jets' else 500} (default: one full unit); the output does not depend on it")
        _common(q)
    p.set_defaults(func=_cmd_data)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a float teacher and a QKeras student from a config",
                       description="Reads CONFIG (a file, or a shipped model config's name such as jet_mlp: "
                                   "`trigger configs list`), its HDF5 data and the --teacher "
                                   "model if given; writes "
                                   "DIR/teacher.h5, DIR/model.h5 (the student), DIR/metrics.json, "
                                   "DIR/history.json and PNG plots (training curves, ROC curves).")
    p.add_argument("config", type=Path, help="model config: a file, or a shipped config's name, e.g. jet_mlp")
    p.add_argument("--data", type=Path, default=None, help="HDF5 data file (default: the config's data.file)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default runs/<config name>)")
    p.add_argument("--teacher", type=Path, default=None, metavar="MODEL",
                   help="an already trained float teacher (teacher.h5 of a run of the same config, seed and "
                        "data) used instead of training one")
    _trust_model(p)
    _common(p)
    p.set_defaults(func=_cmd_train)


def _add_compress(sub) -> None:
    p = sub.add_parser("compress", help="quantization-aware pruning (+ distillation) of a float Keras model",
                       description="Reads a float Keras MODEL (.h5) and --data; writes the QKeras "
                                   "student OUT.h5 and OUT.json (teacher/student metrics, sparsity, "
                                   "bits, BOPs).")
    p.add_argument("model", type=Path, help="float Keras model (.h5)")
    p.add_argument("--data", type=Path, required=True, help="HDF5 data file from `trigger data`")
    p.add_argument("--config", type=Path, default=None,
                   help="a file, or a shipped compress config's name, e.g. qap_6bit_75 (default: built-in)")
    p.add_argument("--bits", type=int, default=None, help="weight and activation bits (overrides the config)")
    p.add_argument("--sparsity", type=float, default=None, help="target sparsity 0..1 (overrides the config)")
    p.add_argument("--distill", action=argparse.BooleanOptionalAction, default=None,
                   help="knowledge distillation from the float model (default: the config's)")
    p.add_argument("--out", type=Path, default=None, help="output .h5 (default MODEL_compressed.h5)")
    _trust_model(p)
    _common(p)
    p.set_defaults(func=_cmd_compress)


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="hls4ml HLS project, bit-exact C simulation, vendor build or estimate",
                       description="Reads a QKeras MODEL (.h5) and optional --data; writes the HLS "
                                   "project, report.json and report.md to --out. With --build runs "
                                   "Vitis/Vivado HLS if on PATH.")
    p.add_argument("model", type=Path, help="QKeras model (.h5)")
    p.add_argument("--config", type=Path, default=None,
                   help="a file, or a shipped synth config's name, e.g. vitis_latency_pf64 (default: built-in)")
    p.add_argument("--backend", choices=["Vitis", "Vivado"], default=None)
    p.add_argument("--part", default=None, help="FPGA part (default xcvu13p-flga2577-2-e)")
    p.add_argument("--clock-ns", type=float, default=None, help="clock period in ns (default 5)")
    p.add_argument("--reuse", type=int, default=None, help="reuse factor (default 1)")
    p.add_argument("--strategy", choices=["Latency", "Resource", "distributed_arithmetic"], default=None)
    p.add_argument("--io", choices=["parallel", "stream"], default=None)
    p.add_argument("--parallelization-factor", type=_parallelization_factor, default=None, metavar="{full,N}",
                   help="io_parallel convolutions and per-position Dense layers: output positions "
                        "computed per cycle ('full', the default: all, interval 1; 1: hls4ml's default)")
    p.add_argument("--output", choices=["softmax", "logits", "argmax"], default=None,
                   help="what a classifier's firmware outputs: its bit-exact logits (the default), "
                        "argmax (one-hot of the largest logit) or softmax (probabilities through "
                        "lookup tables, within 2^-8)")
    p.add_argument("--data", type=Path, default=None,
                   help="HDF5 data for the C simulation (default: random inputs on the input grid)")
    p.add_argument("--teacher", type=Path, default=None, help="float teacher (.h5) for physics comparison")
    p.add_argument("--out", type=Path, default=None, help="project folder (default firmware_projects/<model>)")
    p.add_argument("--build", action="store_true", help="run C synthesis with the vendor tool")
    p.add_argument("--calibration", type=Path, default=None, metavar="FILE",
                   help="estimator calibration written by `trigger calibrate`, or 'builtin' (default: "
                        "$TRIGGER_CALIBRATION or ~/.config/trigger/estimator_calibration.yaml if it exists, "
                        "else the builtin one)")
    _trust_model(p)
    _common(p)
    p.set_defaults(func=_cmd_synth)


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="refit the latency/resource estimator on your own vendor reports",
                       description="Reads PROJECT_DIR/report.json (the estimate) and the vendor reports in each "
                                   "folder (<prj>/solution1/syn/report/*_csynth.xml, vivado_synth.rpt) of "
                                   "projects written by `trigger synth --build`; refits the estimator's "
                                   "constants on them and writes the calibration file (--out), which "
                                   "`trigger synth` then uses. Prints the constants and each design's error "
                                   "before and after.")
    p.add_argument("projects", type=Path, nargs="+", metavar="PROJECT_DIR", help="folder written by `trigger synth`")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="calibration file to refit and write (default $TRIGGER_CALIBRATION, else "
                        "~/.config/trigger/estimator_calibration.yaml)")
    p.set_defaults(func=_cmd_calibrate)


def _add_rtl(sub) -> None:
    p = sub.add_parser("rtl", help="Verilog through da4ml, bit-exact Verilator simulation, yosys counts",
                       description="Reads a QKeras MODEL (.h5); writes its Verilog (distributed arithmetic, "
                                   "pipelined to --clock-ns), the Verilator simulation of the check sample or "
                                   "--data against the exact QKeras reference, yosys synth_xilinx counts, "
                                   "report.json and report.md to --out (docs/rtl.md).")
    p.add_argument("model", type=Path, help="QKeras model (.h5)")
    p.add_argument("--data", type=Path, default=None,
                   help="HDF5 events to simulate (default: check_sample.h5 beside the model, else random inputs)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default rtl_projects/<model>)")
    p.add_argument("--clock-ns", type=float, default=5.0, help="clock period in ns (default 5)")
    p.add_argument("--pipeline", default="auto", metavar="{auto,N}",
                   help="adder levels per pipeline stage (default auto: from the adder-delay model at the clock)")
    p.add_argument("--no-synth", action="store_true", help="skip the yosys synthesis")
    p.add_argument("--no-hls", action="store_true",
                   help="skip hls4ml's distributed-arithmetic C simulation and our estimate of that design")
    _trust_model(p)
    _common(p)
    p.set_defaults(func=_cmd_rtl)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="print the report of a firmware project",
                       description="Reads DIR/report.json and prints DIR/report.md. Writes nothing.")
    p.add_argument("directory", type=Path, help="folder written by `trigger synth`")
    p.set_defaults(func=_cmd_report)


def _add_scan(sub) -> None:
    p = sub.add_parser(
        "scan", help="multi-objective search for the best student inside the budget (Optuna on Dask)",
        description="`trigger scan CONFIG --data FILE --out DIR`: run or resume a scan (a file, or a shipped "
                    "scan config's name such as jet_mlp: `trigger configs list`). "
                    "Reads the scan config, its base model and firmware configs, the teacher and the data; "
                    "writes DIR/trials/<id>/ (student, firmware report, trial.json), DIR/trials.csv and "
                    "DIR/study.db as each trial finishes. "
                    "`trigger scan report DIR`: the Pareto table and PNG plots of a scan; "
                    "`trigger scan export DIR --trial ID --out MODEL_DIR`: a trial's student as a model folder. "
                    "A killed scan restarted with the same command continues where it stopped (docs/scan.md).")
    p.add_argument("target", metavar="CONFIG|report|export", help="a scan config, or `report` / `export`")
    p.add_argument("directory", nargs="?", metavar="DIR", help="the scan folder (report, export)")
    p.add_argument("--data", help="HDF5 from `trigger data`, readable on every worker")
    p.add_argument("--out", help="scan folder (CONFIG), or the model folder to write (export)")
    p.add_argument("--trials", type=int, help="finished trials to reach (default: the config's search.trials)")
    p.add_argument("--trial", type=int, help="export: the trial number")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local Dask worker processes (default 1)")
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
    _trust_model(p)
    _common(p)
    p.set_defaults(func=_cmd_scan)


def _add_configs(sub) -> None:
    p = sub.add_parser("configs", help="list the shipped configs, or copy one to edit",
                       description="The configs shipped with trigger (model, synth, compress, scan). `list` "
                                   "reads them and writes nothing; `copy NAME DIR` reads one and writes "
                                   "DIR/<its file name>. Any of them can be passed by name where a config file "
                                   "is taken (`trigger train jet_mlp`, `trigger synth MODEL --config "
                                   "vitis_latency_pf64`); an existing file of that name wins.")
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    csub.add_parser("list", help="names and one-line descriptions, by group")
    pc = csub.add_parser("copy", help="copy a shipped config into DIR to edit it",
                         description="Writes DIR/<file name of the config> (DIR is created if missing); an "
                                     "existing file is replaced only with --force.")
    pc.add_argument("name", help="a name from `trigger configs list` (a scan config as scan/NAME)")
    pc.add_argument("directory", type=Path, metavar="DIR", help="folder to copy into")
    pc.add_argument("--force", action="store_true", help="overwrite an existing file of that name")
    p.set_defaults(func=_cmd_configs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trigger`` console script."""
    from trigger.runtime import run_main, set_seed, setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    # a subcommand's --seed wins over the global one; None means "the config's seed, else 42"
    args.seed_given = getattr(args, "seed", None)
    args.seed = DEFAULT_SEED if args.seed_given is None else args.seed_given

    def run() -> int:
        set_seed(args.seed)
        return args.func(args)

    return run_main("trigger", run, verbose=bool(args.verbose),
                    last_resort=lambda exc: disk_failure(args, exc) or unexpected_error(args, exc))


#: The arguments of each subcommand that name a file or folder it reads.
INPUT_ARGS = ("config", "model", "data", "teacher", "directory", "calibration", "projects")


def disk_failure(args: argparse.Namespace, exc: BaseException) -> str | None:
    """The one line of a write that failed on a full or broken disk outside an output's own
    ``atomic_path`` (which names the output itself), e.g. a scratch folder in /tmp; None otherwise."""
    from trigger.runtime import DISK_ERRNOS, disk_errno, free_bytes, human_bytes

    number = disk_errno(exc)
    if number is None:
        return None
    where = getattr(exc, "filename", None) or tempfile.gettempdir()
    free = free_bytes(where)
    found = "unknown" if free is None else human_bytes(free)
    return (f"`trigger {args.command}` could not write {where}: {DISK_ERRNOS[number]} ({found} free there); "
            "nothing was written to the output; free some space (or point TMPDIR elsewhere) and rerun")


def unexpected_error(args: argparse.Namespace, exc: BaseException) -> str:
    """The one line of an exception no check turned into a :class:`TriggerError`: what it was, the
    input files it may come from, and that -v shows the traceback to report."""
    named = [getattr(args, name) for name in INPUT_ARGS if getattr(args, name, None) is not None]
    inputs = [str(path) for value in named for path in (value if isinstance(value, list) else [value])]
    detail = " ".join(str(exc).split())[:300] or "(no message)"
    on = f" on {', '.join(inputs)}" if inputs else ""
    return (f"unexpected {type(exc).__name__} in `trigger {args.command}`{on}: {detail}. This is a bug in "
            "trigger or an input it does not recognise; rerun with -v for the traceback and report it")


if __name__ == "__main__":
    raise SystemExit(main())
