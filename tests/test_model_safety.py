"""Model files cannot run code (issue 27): a model file's configuration is read as data before Keras
deserializes it, and a layer that carries code (Lambda, a serialized function, a class trigger does
not know) is refused in one line naming it, through every command that reads a model. The user's
own files load with --trust-model / trust=True."""

from __future__ import annotations

import copy
import json
import re
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import pytest
import yaml

from tests.conftest import REPO, run_cli
from trigger.errors import TriggerError
from trigger.models.io import check_model_file

LAMBDA_LINE = "layer 'evil' (Lambda) carries Python code"


def _evil_function(marker: Path):
    """A function whose bytecode writes ``marker`` (the path is a constant of the code object, so
    deserializing and calling it anywhere would create the file)."""
    namespace: dict = {}
    exec(f"def evil(x):\n    open({str(marker)!r}, 'w').close()\n    return x\n", namespace)  # noqa: S102
    return namespace["evil"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The Lambda model (.h5, .keras) whose code writes MARKER, a Lambda-free model, and MARKER
    (removed after building: building the graph calls the function once)."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("safety")
    marker = folder / "MARKER"
    L = tf.keras.layers
    inp = tf.keras.Input((16,), name="features")
    x = L.Lambda(_evil_function(marker), name="evil")(L.Dense(8, activation="relu", name="d1")(inp))
    evil = tf.keras.Model(inp, L.Dense(5, name="out")(x))
    safe = tf.keras.Model(inp, L.Dense(5, name="out")(L.Dense(8, activation="relu", name="d1")(inp)))
    paths = {"h5": folder / "evil.h5", "keras": folder / "evil.keras", "safe": folder / "safe.h5", "marker": marker}
    evil.save(paths["h5"])
    evil.save(paths["keras"])
    safe.save(paths["safe"])
    marker.unlink()
    return paths


def _scan_config(folder: Path, teacher: Path) -> Path:
    raw = {"name": "safety", "model": "configs/jet_mlp.yaml", "synth": "configs/synth/vitis_latency.yaml",
           "teacher": str(teacher), "search": {"sampler": "grid", "trials": 1, "batch": 1},
           "space": {"student.pruning.sparsity": {"choices": [0.5]}}}
    path = folder / "scan.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _commands(model: Path, safe: Path, out: Path) -> dict[str, list]:
    """Every command that reads a model file, ``model`` being the one it reads."""
    out.parent.mkdir(parents=True, exist_ok=True)
    data = REPO / "models" / "jet_mlp" / "check_sample.h5"  # a valid jets file (hlf view), as the scan checks
    return {"train --teacher": ["train", REPO / "configs" / "jet_mlp.yaml", "--teacher", model, "--out", out],
            "compress": ["compress", model, "--data", data, "--out", out / "q.h5"],
            "synth": ["synth", model, "--out", out],
            "synth --teacher": ["synth", safe, "--teacher", model, "--out", out],
            "rtl": ["rtl", model, "--out", out],
            "scan": ["scan", _scan_config(out.parent, model), "--data", data, "--out", out]}


COMMANDS = ["train --teacher", "compress", "synth", "synth --teacher", "rtl", "scan"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_a_lambda_model_without_running_it(command, files, tmp_path):
    """.h5 and .keras side by side (two fresh interpreters at once): exit 2, one line naming the
    Lambda layer and --trust-model, no traceback, the marker never written, no output."""
    runs = {fmt: _commands(files[fmt], files["safe"], tmp_path / fmt / "out")[command] for fmt in ("h5", "keras")}
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(runs, pool.map(lambda args: run_cli(*args), runs.values())))
    for fmt, res in results.items():
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert LAMBDA_LINE in lines[0] and "--trust-model" in lines[0] and str(files[fmt]) in lines[0]
        assert "Traceback" not in res.stderr and "unexpected" not in res.stderr
        assert not (tmp_path / fmt / "out").exists() and not (tmp_path / fmt / "out.failed").exists()
    assert not files["marker"].exists()


def test_the_api_refuses_it_too_and_trust_loads_it(files):
    """trigger.load_model refuses without trust; with trust=True the user's own file loads, and its
    code runs (which shows the refusals above guard a file that really carries code)."""
    from trigger import load_model

    for fmt in ("h5", "keras"):
        with pytest.raises(TriggerError, match=re.escape(LAMBDA_LINE)):
            load_model(files[fmt])
    assert not files["marker"].exists()
    model = load_model(files["h5"], trust=True)
    assert [layer.name for layer in model.layers][2] == "evil"
    assert files["marker"].exists()
    files["marker"].unlink()


def test_trust_model_reaches_load_model_through_every_command(files, tmp_path, monkeypatch):
    """--trust-model on each command is passed to the stage and on to its model check (the stage
    hands the same ``trust`` to load_model; test_the_api_refuses_it_too_and_trust_loads_it loads)."""
    import importlib

    from trigger import cli

    seen: list[tuple[str, bool]] = []

    def record(stage: str):
        def check(path, *, trust: bool = False):
            seen.append((stage, trust))
            raise TriggerError("stop here")
        return check

    for stage in ("train", "compress", "synth", "rtl", "scan"):
        monkeypatch.setattr(importlib.import_module(f"trigger.stages.{stage}"), "check_model_file", record(stage))
    for command, args in _commands(files["h5"], files["safe"], tmp_path / "out").items():
        stage = command.split()[0]
        assert cli.main([str(a) for a in args]) == 2
        assert cli.main([str(a) for a in args] + ["--trust-model"]) == 2
        assert seen[-2:] == [(stage, False), (stage, True)], (command, seen)


def test_trust_model_gets_past_the_check_on_the_command_line(files, tmp_path):
    res = run_cli("synth", files["keras"], "--trust-model", "--out", tmp_path / "out", timeout=600)
    assert "carries Python code" not in res.stderr
    assert files["marker"].exists()  # the user trusted the file: Keras ran its Lambda
    files["marker"].unlink()


# --- the check itself, on configurations edited as data (h5py only) --------------------------------

def _with_config(src: Path, dst: Path, edit) -> Path:
    """A copy of ``src`` whose model_config is ``edit(config)`` (a dict, or a str written as is)."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        config = edit(json.loads(f.attrs["model_config"]))
        f.attrs["model_config"] = config if isinstance(config, str) else json.dumps(config)
    return dst


def _layer(config: dict, name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == name)


def _set(name: str, **changes):
    def edit(config):
        _layer(config, name).update(changes)
        return config
    return edit


def _set_inner(name: str, **changes):
    def edit(config):
        _layer(config, name)["config"].update(changes)
        return config
    return edit


def _wrap(wrapper: str, name: str):
    """Put layer ``name`` inside a ``wrapper`` layer (TimeDistributed, Bidirectional, PruneLowMagnitude)."""
    def edit(config):
        layer = _layer(config, name)
        inner = {"class_name": layer["class_name"], "config": copy.deepcopy(layer["config"])}
        layer["class_name"], layer["config"] = wrapper, {"name": f"wrap_{name}", "layer": inner}
        return config
    return edit


def _nest(config):
    """The whole model as a layer of an outer Sequential model."""
    return {"class_name": "Sequential", "config": {"name": "outer", "layers": [config]}}


def _lambda_activation(config):
    _layer(config, "d1")["config"]["activation"] = {"class_name": "__lambda__", "config": {"value": ["4wEA", None, None]}}
    return config


EDITS = {
    "made-up class": (_set("d1", class_name="MadeUpDense"),
                      "layer 'd1' (MadeUpDense) is not a Keras, QKeras or tfmot class trigger knows"),
    "Lambda in TimeDistributed": (lambda c: _wrap("TimeDistributed", "d1")(_set("d1", class_name="Lambda")(c)),
                                  "layer 'd1' (Lambda) carries Python code"),
    "Lambda in PruneLowMagnitude": (lambda c: _wrap("PruneLowMagnitude", "d1")(_set("d1", class_name="Lambda")(c)),
                                    "layer 'd1' (Lambda) carries Python code"),
    "Lambda in a nested model": (lambda c: _nest(_set("d1", class_name="Lambda")(c)),
                                 "layer 'd1' (Lambda) carries Python code"),
    "unknown class in Bidirectional": (lambda c: _wrap("Bidirectional", "d1")(_set("d1", class_name="Evil")(c)),
                                       "layer 'd1' (Evil) is not a Keras, QKeras or tfmot class"),
    "lambda activation": (_lambda_activation,
                          "layer 'd1' (Dense) holds a serialized Python function (activation)"),
    "function_type lambda": (_set_inner("d1", function=["4wEA", None, None], function_type="lambda"),
                             "layer 'd1' (Dense) holds a serialized Python function (function_type)"),
    "function from a module": (_set_inner("d1", activation={"class_name": "function", "module": "os",
                                                            "config": "system", "registered_name": "system"}),
                               "layer 'd1' (Dense) holds the Python function 'system' from module 'os'"),
    "unknown initializer": (_set_inner("d1", kernel_initializer={"class_name": "EvilInit", "config": {}}),
                            "layer 'd1' (Dense): its kernel_initializer is of class 'EvilInit', not a Keras"),
    "module to import": (_set("d1", module="evil_package"),
                         "layer 'd1' (Dense) names the Python module 'evil_package' to import its class"),
    "registered name": (_set("d1", registered_name="SomethingElse"),
                        "layer 'd1' (Dense) asks for the registered class 'SomethingElse' in place of 'Dense'"),
    "TFOpLambda writing a file": (_set("d1", class_name="TFOpLambda", config={"name": "w", "function": "io.write_file"}),
                                  "layer 'w' (TFOpLambda) calls TensorFlow's 'io.write_file'"),
    "quantizer string": (_set("d1", class_name="QDense", config={"name": "q", "kernel_quantizer": "safe_eval('x')"}),
                         "layer 'q' (QDense) gives its kernel_quantizer as \"safe_eval('x')\""),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_a_config_carrying_code_is_refused_in_one_line(case, files, tmp_path):
    edit, message = EDITS[case]
    path = _with_config(files["safe"], tmp_path / "edited.h5", edit)
    with pytest.raises(TriggerError) as info:
        check_model_file(path)
    line = str(info.value)
    assert message in line and "\n" not in line and "--trust-model" in line and str(path) in line
    check_model_file(path, trust=True)  # the user's own file: the check is skipped


def test_an_unknown_class_is_refused_on_the_command_line(files, tmp_path):
    path = _with_config(files["safe"], tmp_path / "made_up.h5", _set("d1", class_name="MadeUpDense"))
    res = run_cli("synth", path, "--out", tmp_path / "out")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "layer 'd1' (MadeUpDense) is not a Keras, QKeras or tfmot class" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text,message", [("{not json", "its model_config is not valid JSON"),
                                          ('["a list"]', "is not a Keras model configuration"),
                                          ('{"class_name": "Functional"}', "is not a Keras model configuration")])
def test_a_config_that_is_not_a_model_config_is_one_line(text, message, files, tmp_path):
    path = _with_config(files["safe"], tmp_path / "bad.h5", lambda _: text)
    for trust in (False, True):
        with pytest.raises(TriggerError, match=message):
            check_model_file(path, trust=trust)


def test_a_keras_archive_is_read_from_its_config_json(files, tmp_path):
    """.keras: config.json is the data checked (and a broken one is one line)."""
    with pytest.raises(TriggerError, match=re.escape(LAMBDA_LINE)):
        check_model_file(files["keras"])
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(files["keras"]) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, b"{truncated" if name == "config.json" else src.read(name))
    with pytest.raises(TriggerError, match="its config.json is not valid JSON"):
        check_model_file(bad)
    misnamed = tmp_path / "archive.h5"  # Keras would read it as HDF5, not its config.json: refused
    shutil.copyfile(files["keras"], misnamed)
    with pytest.raises(TriggerError, match="only under a name ending in .keras"):
        check_model_file(misnamed, trust=True)


def test_no_shipped_or_ordinary_model_is_refused(tmp_path):
    """Every model file in the repository passes, and so do Keras/QKeras/tfmot models with wrappers,
    quantizer strings, TF operations and nested models, in both formats."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    from qkeras import QActivation, QDense, quantized_bits

    shipped = [p for folder in ("models", "scans", "tests", "benchmarks") for p in (REPO / folder).rglob("*.h5")
               if _holds_a_model(p)]
    assert len(shipped) > 10
    for path in shipped:
        check_model_file(path)
    L = tf.keras.layers
    inner = tf.keras.Sequential([tf.keras.Input((30,)), L.Dense(4, activation="tanh")], name="inner")
    inp = tf.keras.Input((5, 6))
    x = L.TimeDistributed(QDense(6, kernel_quantizer="quantized_bits(4,0,1)", bias_quantizer=quantized_bits(4, 0, 1)))(inp)
    x = L.Bidirectional(L.LSTM(3, return_sequences=True))(x)
    x = inner(L.Flatten()(tf.concat([x, x * 2.0], axis=-1)[:, :, :6]))
    x = tfmot.sparsity.keras.prune_low_magnitude(L.Dense(3))(QActivation("quantized_relu(4)")(x))
    model = tf.keras.Model(inp, tf.math.add(x, 1.0))
    for suffix in (".h5", ".keras"):
        model.save(tmp_path / f"ok{suffix}")
        check_model_file(tmp_path / f"ok{suffix}")


def _holds_a_model(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return "model_config" in f.attrs
    except OSError:
        return False


def test_the_supported_sets_cover_the_installed_libraries():
    """The static class sets (checked without importing TensorFlow) hold every layer Keras 2 exports
    but the code-carrying Lambda, every object QKeras registers, and tfmot's pruning schedules."""
    from qkeras.utils import _add_supported_quantized_objects
    from tensorflow import keras

    from trigger.models import safety

    qkeras: dict = {}
    _add_supported_quantized_objects(qkeras)
    assert set(qkeras) <= safety.QKERAS_CLASSES
    excluded = {"Lambda", "Layer", "AbstractRNNCell", "Wrapper", "InputSpec", "DenseFeatures", "TextVectorization"}
    layers = {k for k, v in vars(keras.layers).items() if isinstance(v, type) and not k.startswith("_")}
    assert layers - excluded <= safety.KERAS_LAYERS and "Lambda" not in safety.SUPPORTED_CLASSES
    for module in (keras.initializers, keras.regularizers, keras.constraints):
        assert {k for k, v in vars(module).items() if isinstance(v, type)} <= safety.KERAS_OBJECTS


def test_the_trial_spec_travels_as_json(tmp_path):
    """The scan's trial spec is data: JSON written and read back, equal, and no pickle anywhere."""
    from trigger.scan.config import load_scan_config, read_base
    from trigger.stages import scan_trial

    scan = load_scan_config(_scan_config(tmp_path, REPO / "models" / "jet_mlp" / "teacher.h5"))
    spec = scan_trial.TrialSpec(scan, read_base(scan), tmp_path / "out", 3, {"student.pruning.sparsity": 0.5},
                                tmp_path / "data.h5", 7, True)
    text = spec.to_json()
    assert json.loads(text)["trust"] is True
    assert scan_trial.TrialSpec.from_json(text) == spec
    assert "import pickle" not in Path(scan_trial.__file__).read_text()


def test_an_hgq_proxy_model_without_the_hgq_extra_is_one_line(monkeypatch):
    """HGQ's proxy-model cast is a known class (read as data), but loading it needs HGQ: without the
    optional extra the model is refused in one line naming the layer and the extra to install."""
    import importlib.util

    from trigger.models.safety import check_buildable

    config = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "HGQ>FixedPointQuantizer", "config": {"name": "q0"}}]}}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "HGQ" else real(name, *a))
    with pytest.raises(TriggerError) as info:
        check_buildable(config)
    assert str(info.value) == ("layer 'q0' (HGQ>FixedPointQuantizer) is HGQ's: this is an HGQ proxy model, which needs "
                               "the optional hgq extra (pip install 'trigger[hgq]', HGQ 0.2.6)")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "HGQ" else real(name, *a))
    check_buildable(config)  # with HGQ installed, Keras loads it
