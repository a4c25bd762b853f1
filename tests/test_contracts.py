"""The typed contracts between stages (trigger.contracts): every committed file round-trips unchanged
except for the added schema_version, older files without one are read, newer ones are refused with
one line, and the JSON Schemas in docs/schemas/ are the generated ones."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from tests.conftest import REPO
from trigger.config import DistillSection, PruningSection, QuantSection, TrainSection
from trigger.contracts import (CONTRACTS, SCHEMA_DIR, CompressReport, FirmwareReport, ModelMeta, RtlReport, TrainMetrics,
                               TrialRecord, json_schemas)
from trigger.errors import TriggerError

METRICS = sorted((REPO / "models").glob("*/metrics.json"))
MODEL_FILES = sorted((REPO / "models").glob("*/*.h5"))
REPORTS = sorted((REPO / "firmware_projects").glob("*/report.json"))  # not committed today; checked if present
#: the committed scans: each trial's record, its firmware report.json and its student's metrics.json
SCAN_FILES = sorted((REPO / "scans").glob("*/trials/*/*.json")) + sorted((REPO / "scans").glob("*/trials/*/*/*.json"))
SCAN_CONTRACTS = {"trial.json": TrialRecord, "report.json": FirmwareReport, "metrics.json": TrainMetrics}


def _round_trip(cls, raw: dict, source: str) -> None:
    back = cls.from_dict(raw, source=source).to_dict()
    # a file of an older schema version reads unchanged and is written back at the current one
    assert back.pop("schema_version") == cls.SCHEMA_VERSION >= raw.get("schema_version", cls.SCHEMA_VERSION)
    raw = {key: value for key, value in raw.items() if key != "schema_version"}  # a file written since has it
    assert back == raw and list(back) == list(raw), source
    assert json.dumps(back) == json.dumps(raw), source  # values, types and order of every nested key


@pytest.mark.parametrize("path", METRICS, ids=lambda p: p.parent.name)
def test_committed_metrics_round_trip(path):
    _round_trip(TrainMetrics, json.loads(path.read_text()), str(path))


def test_every_reference_is_checked():
    assert len(METRICS) == 4 and len([p for p in MODEL_FILES if p.name != "check_sample.h5"]) == 8


@pytest.mark.parametrize("path", [p for p in MODEL_FILES if p.name != "check_sample.h5"],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_model_metadata_round_trips_and_rebuilds_the_split(path):
    with h5py.File(path, "r") as f:
        raw = json.loads(f.attrs["trigger"])
    _round_trip(ModelMeta, raw, str(path))
    meta = ModelMeta.from_dict(raw, source=str(path))
    train, val, test = meta.split(1000)
    assert len(train) + len(val) + len(test) == 1000 and len(test) == round(1000 * meta.test_fraction)


def test_committed_firmware_reports_round_trip():
    for path in REPORTS:  # firmware_projects/ keeps only report.md in git; any local report.json is checked
        _round_trip(FirmwareReport, json.loads(path.read_text()), str(path))


def test_committed_scan_files_round_trip():
    """Every trial.json, firmware report.json and metrics.json of the committed scans reads into its
    typed contract and is written back unchanged."""
    checked = 0
    for path in SCAN_FILES:
        if path.name in SCAN_CONTRACTS:
            _round_trip(SCAN_CONTRACTS[path.name], json.loads(path.read_text()), str(path))
            checked += 1
    assert checked >= 250  # 87 trials, 82 firmware reports, 87 metrics at the time of writing


def test_rtl_report_round_trip():
    """The shape `trigger rtl` writes (trigger.stages.rtl), every section typed."""
    raw = {"model": {"path": "m.h5", "output_layer": "logits", "cut_softmax": True,
                     "input_format": "fixed<16,7> signed (k=1, i=6, f=9)", "n_inputs": 16, "n_outputs": 5},
           "rtl_sim": {"n_events": 10, "n_values": 50, "bit_exact_fraction": 1.0, "max_abs_diff": 0.0,
                       "interpreter_bit_exact_fraction": 1.0, "inputs": "10 random events", "build_seconds": 3.2,
                       "run_seconds": 0.1},
           "latency": {"cycles": 4, "ns": 20.0, "clock_ns": 5.0, "adder_levels_per_stage": 3, "adder_levels": 11,
                       "method": "pipeline", "source": "pipeline"},
           "da4ml": {"LUT": 1200.5, "FF": 300, "source": "da4ml"},
           "estimate": {"synth": {"LUT": 1300, "FF": 280}, "csynth": {"LUT": 1500.0}, "cycles": 5,
                        "calibration": "builtin", "source": "estimate"},
           "hls4ml_note": None,
           "timings": {"trace": 1.0, "write": 0.1, "verilator_build": 3.2, "simulation": 0.1},
           "verilog": ["top.v"], "versions": {"da4ml": "0.5"}}
    _round_trip(RtlReport, raw, "report.json")
    with pytest.raises(TriggerError, match=r"key 'da4ml.LUTS'"):
        RtlReport.from_dict({**raw, "da4ml": {"LUT": 1, "LUTS": 1, "FF": 1, "source": "da4ml"}}, source="report.json")


def test_firmware_report_round_trip_of_a_written_shape():
    """The shape `trigger synth` writes (sections in their written order, ints kept as ints)."""
    raw = {"model": {"path": "m.h5", "name": "m", "family": "mlp", "task": "classification", "view": "hlf",
                     "params": 10, "input_type": "fixed<16,6>", "class_names": ["a", "b"]},
           "config": {"backend": "Vitis", "clock_ns": 5.0, "reuse": 1, "parallelization_factor": "full",
                      "io_type": "io_parallel", "versions": {"hls4ml": "1.0"}},
           "layers": [{"name": "fc1", "class": "Dense", "multiplications": 3}],
           "csim": {"n_events": 2, "compared": "logits", "float32": {"fraction_equal": 1.0, "max_abs_diff": 0.0, "n_values": 10}, "bit_exact_fraction": 1.0,
                    "first_differing_layer": None, "inexact_layers": [], "inputs": "2 events"},
           "latency": {"min_cycles": 3, "max_cycles": 3, "interval": 1, "ns": 15.0, "source": "estimate",
                       "method": "v1"},
           "resources": {"DSP": 1, "LUT": 100, "FF": 50, "BRAM_18K": 0, "source": "estimate", "method": "v1",
                         "percent_of_part": {"DSP": 0.01}, "available": {"DSP": 12288, "source": "data sheet"}},
           "budget": {"source": "estimate", "latency_ns": 15.0, "latency_budget_ns": 100.0, "interval_ns": 5.0,
                      "interval_budget_ns": 25.0, "fits_latency": True, "fits_interval": True, "fits_part": True,
                      "over_part": [], "fits": True},
           "counts": {"multiplications": 3, "bops": 40.0, "nonzero_weight_bits": 18, "pipeline_stages": 2,
                      "note": "exact"},
           "estimate": {"source": "estimate", "method": "v2",
                        "layers": [{"name": "fc1", "class": "Dense", "cycles": 2, "interval": 1, "mults": 3, "DSP": 1,
                                    "LUT": 90, "FF": 40, "BRAM_18K": 0}], "not_modelled": ["x (Foo)"]},
           "vendor": {"source": "vendor", "tool": "Vitis HLS 2023.2", "clock": {"target_ns": 5, "estimated_ns": 4.1},
                      "latency": {"min_cycles": 3, "max_cycles": 3, "interval": 1, "interval_max": 1, "ns": 15},
                      "resources": {"DSP": 1, "LUT": 120, "FF": 60, "BRAM_18K": 0, "URAM": 0},
                      "modules": [{"name": "dense_config2_s", "config": 2, "latency": {"max_cycles": 2},
                                   "resources": {"DSP": 1, "LUT": 100, "FF": 50, "BRAM_18K": 0}}],
                      "post_synth": {"source": "vendor", "target": "synth", "tool": "Vivado 2023.2",
                                     "resources": {"DSP": 1, "LUT": 80, "FF": 50, "BRAM_18K": 0}}},
           "recipe": [{"layer": "*", "action": "stripped pruning wrappers", "why": "hls4ml does not parse them"}],
           "timing": {"total_s": 1.5}}
    _round_trip(FirmwareReport, raw, "report.json")


def test_firmware_report_of_schema_v1_reads_and_renders():
    """A report.json written before the estimate's targets (v1) reads unchanged and is rendered."""
    from trigger.report.render import render_markdown

    raw = {"schema_version": 1, "model": {"name": "m"}, "config": {"clock_ns": 5.0},
           "latency": {"max_cycles": 3, "interval": 1, "ns": 15.0, "source": "estimate", "method": "v1"},
           "resources": {"DSP": 1, "LUT": 100, "FF": 50, "BRAM_18K": 0, "source": "estimate"},
           "budget": {"source": "estimate", "latency_ns": 15.0, "latency_budget_ns": 100.0, "interval_ns": 5.0,
                      "interval_budget_ns": 25.0, "fits": True}}
    _round_trip(FirmwareReport, raw, "report.json")
    report = FirmwareReport.from_dict(raw, source="report.json")
    assert report.schema_version == 1 and report.targets is None and report.budget.verdict is None
    assert "fits (latency 15/100 ns, new event every 5/25 ns)" in render_markdown(report)


def test_compress_report_round_trip():
    metrics = {"accuracy": 0.5, "auc": {"a": 0.6}, "rejection": {"a": {"0.5": 2.0}}, "n_events": 4, "mean_auc": 0.6}
    layer = {"fan_in": 16, "outputs": 64, "macs": 1024, "weight_bits": 6, "activation_bits": 16,
             "zero_fraction": 0.75, "bops": 50816.0}
    raw = {"teacher": metrics, "student": metrics,
           "sparsity": {"target": 0.5, "schedule": "constant", "targets": {"fc1": 0.5}, "layers": {"fc1": 0.5},
                        "total": 0.4, "quantized": {"fc1": 0.5}},
           "bits": {"fc1": {"kernel": "quantized_bits(6,0)"}}, "bops": {"teacher": {"layers": {"fc1": layer}, "total": 2.0, "float_bits": 32},
                                                                   "student": {"layers": {"fc1": layer}, "total": 1.0,
                                                                               "float_bits": 32}, "ratio": 2.0},
           "task": "classification", "model": "m.h5",
           "data": {"file": "d.h5", "view": "hlf", "class_names": ["a"], "n_train": 1, "n_val": 1, "n_test": 1,
                    "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42, "train_background_only": False},
           "config": {"quantization": QuantSection().model_dump(mode="json"),
                      "pruning": PruningSection().model_dump(mode="json"),
                      "distillation": DistillSection().model_dump(mode="json"),
                      "train": TrainSection().model_dump(mode="json"), "seed": 42},
           "training": {"objective": "x", "distilled": True, "best_epoch": 3, "epochs_run": 5,
                        "history": {"loss": [1.0, 0.5]}}}
    _round_trip(CompressReport, raw, "OUT.json")


def test_older_file_without_schema_version_is_read_or_refused_in_one_line(tmp_path):
    old = json.loads(METRICS[0].read_text())
    old.pop("schema_version", None)  # a file from before the contracts were versioned (rebuilt models have it)
    assert TrainMetrics.from_dict(old, source="old.json").schema_version == 1
    del old["data"]
    bad = tmp_path / "metrics.json"
    bad.write_text(json.dumps(old))
    with pytest.raises(TriggerError) as err:
        TrainMetrics.read(bad)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message and "'data'" in message and "retrain" in message


def test_newer_schema_version_is_refused_in_one_line(tmp_path):
    for cls in CONTRACTS:
        path = tmp_path / f"{cls.NAME}.json"
        path.write_text(json.dumps({"schema_version": cls.SCHEMA_VERSION + 1}))
        with pytest.raises(TriggerError, match=r"newer than this trigger reads") as err:
            cls.read(path)
        assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_unknown_top_level_key_is_refused():
    with pytest.raises(TriggerError, match=r"key 'fmaily'"):
        ModelMeta.from_dict({"fmaily": "mlp"}, source="m.h5")


def test_split_needs_a_recorded_seed():
    with pytest.raises(TriggerError, match=r"records no seed of its data split"):
        ModelMeta(val_fraction=0.2, test_fraction=0.2).split(100, source="m.h5")
    assert not ModelMeta().records_split


def test_schemas_in_docs_are_up_to_date():
    """docs/schemas/ is what `python -m trigger.contracts` writes."""
    expected = json_schemas()
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json")) == sorted(expected)
    for name, text in expected.items():
        assert (SCHEMA_DIR / name).read_text() == text, f"docs/schemas/{name} is stale: run python -m trigger.contracts"
    assert SCHEMA_DIR == Path(REPO / "docs" / "schemas")
