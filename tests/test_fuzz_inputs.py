"""Property tests (hypothesis, derandomized) over the files a user hands us: model files (.h5 and
.keras), data files and YAML configs, damaged at random (truncation, bit flips, a deleted or
retyped key, dataset or attribute, a deleted key or a cut in a model's JSON configuration) and fed
to every command that reads them.

The property: the command exits 0 or 2; on failure it prints exactly one line (besides its own
``[trigger]`` log lines), no traceback and never the CLI's last-resort "unexpected" line; nothing is
written to ``--out``; the process neither crashes nor hangs.

The commands run in one long-lived CLI process (:mod:`tests.cli_worker`), so TensorFlow is imported
once, and a crash or a hang is seen as such instead of taking pytest down. Each command is stopped
right before its heavy step (training, hls4ml conversion, C compile, the scan's study): a mutation
the command accepts ends there with the worker's stop line, counted as accepted; the reading and
checking of every input file happens before it. tests/test_bad_inputs.py runs hand-made bad files
through fresh interpreters.

Exploring (many more examples, every failure printed instead of the first):
``FUZZ_SCALE=10 FUZZ_KEEP_GOING=1 FUZZ_SHOW=1 pytest tests/test_fuzz_inputs.py -s``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.cli_worker import STOP_MARK
from tests.conftest import REPO
from tests.test_bad_inputs import assert_nothing_written

MODELS = REPO / "models"
MLP = MODELS / "jet_mlp"
TEACHER, STUDENT, JETS = MLP / "teacher.h5", MLP / "model.h5", MLP / "check_sample.h5"
CALL_TIMEOUT_S = 180  # a command stopped before its heavy step takes seconds; the first imports TF

FUZZ = dict(derandomize=True, deadline=None, database=None, print_blob=False, report_multiple_bugs=False,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: each example costs a command
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.function_scoped_fixture])


def examples(n: int) -> int:
    """``n`` examples, times $FUZZ_SCALE when exploring (FUZZ_SCALE=10 FUZZ_KEEP_GOING=1 FUZZ_SHOW=1)."""
    return max(1, round(n * float(os.environ.get("FUZZ_SCALE", "1"))))


# --- the CLI in one long-lived process --------------------------------------------------------

@dataclass
class Outcome:
    code: int | None
    output: str
    problem: str | None = None  # the worker died or hung


class CliWorker:
    """``python -m tests.cli_worker``: one request, one answer; restarted after a crash or hang."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, TRIGGER_PROGRESS="0", TF_CPP_MIN_LOG_LEVEL="3")
        with tempfile.TemporaryFile("w+") as log:  # what the worker says outside of calls (a failed start)
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.cli_worker"], cwd=REPO, env=env, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
            if self._answer(120) is None:
                self.close()
                log.seek(0)
                raise AssertionError(f"the CLI worker did not start: {log.read()[-2000:]}")

    def _answer(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        return json.loads(line) if line else None

    def _send(self, request: dict) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def save_keras(self, src: Path, dst: Path) -> None:
        """The .h5 model ``src`` saved as a .keras file ``dst``."""
        self._send({"save_keras": [str(src), str(dst)]})
        assert self._answer(CALL_TIMEOUT_S) == {"code": 0, "output": ""} and dst.is_file()

    def run(self, *argv: Any, stop: str | None = None, timeout: float = CALL_TIMEOUT_S) -> Outcome:
        """``trigger *argv`` with the worker's ``stop`` (see tests/cli_worker.py)."""
        self._send({"argv": [str(a) for a in argv], "stop": stop})
        answer = self._answer(timeout)
        if answer is not None:
            return Outcome(answer["code"], answer["output"])
        if self.proc.poll() is None:
            self.close()
            return Outcome(None, "", f"no answer in {timeout} s (a hang)")
        code = self.proc.returncode
        self.close()
        return Outcome(code, "", f"the process died with exit code {code}")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc = None


@pytest.fixture(scope="module")
def cli():
    worker = CliWorker()
    yield worker
    worker.close()


_counter = itertools.count()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh(scratch: Path) -> Path:
    """A new empty folder for one example."""
    folder = scratch / f"ex{next(_counter)}"
    folder.mkdir()
    return folder


#: The CLI's last-resort line for an exception no check turned into a TriggerError (trigger/cli.py).
LAST_RESORT = re.compile(r"trigger: error: unexpected \w+ in `trigger ")


def check_property(res: Outcome, out: Path, what: str) -> str:
    """The property of the module docstring; 'accepted' or the one error line."""
    assert res.problem is None, f"{what}: {res.problem}"
    assert res.code in (0, 2), f"{what}: exit {res.code}\n{res.output[-3000:]}"
    assert "Traceback" not in res.output, f"{what}:\n{res.output[-3000:]}"
    lines = [line for line in res.output.splitlines() if line.strip() and not line.startswith("[trigger] ")]
    assert_nothing_written(out)
    if res.code == 0:
        return "accepted"
    assert len(lines) == 1 and lines[0].startswith("trigger: error: "), f"{what}:\n{res.output[-3000:]}"
    assert not LAST_RESORT.match(lines[0]), f"{what}: {lines[0]}"
    return "accepted" if STOP_MARK in lines[0] else lines[0]


# --- mutations --------------------------------------------------------------------------------

#: What a retyped value becomes (an HDF5 attribute stores each as its nearest HDF5 type).
RETYPES = [None, "text", 0, -3, 1e30, [], {"key": 1}, True, [1, "a"]]
BIG = 2**31 - 1
byte_flips = st.lists(st.tuples(st.booleans(), st.integers(0, BIG), st.integers(0, 7)), min_size=1, max_size=8)
MUTATIONS = {
    "truncate": st.tuples(st.just("truncate"), st.integers(0, BIG)),
    "flip": st.tuples(st.just("flip"), byte_flips),
    "delete": st.tuples(st.just("delete"), st.integers(0, BIG)),
    "retype": st.tuples(st.just("retype"), st.integers(0, BIG), st.sampled_from(range(len(RETYPES)))),
    "json-delete": st.tuples(st.just("json-delete"), st.integers(0, BIG), st.integers(0, BIG)),
    "json-truncate": st.tuples(st.just("json-truncate"), st.integers(0, BIG), st.integers(0, BIG)),
}


def mutations(*names: str):
    return st.one_of(*(MUTATIONS[name] for name in names))


def mutate_bytes(data: bytes, mutation: tuple) -> bytes | None:
    """Truncation or bit flips (half of them in the first 4 kB, where HDF5 and zip keep most
    structure); None for another kind of mutation."""
    if mutation[0] == "truncate":
        return data[:mutation[1] % len(data)]
    if mutation[0] == "flip":
        out = bytearray(data)
        for head, pos, bit in mutation[1]:
            out[pos % (min(len(out), 4096) if head else len(out))] ^= 1 << bit
        return bytes(out)
    return None


def json_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key (dict) and index (list) path inside a JSON/YAML tree, in a fixed order."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    paths = []
    for key, value in items:
        paths.append(prefix + (key,))
        paths.extend(json_paths(value, prefix + (key,)))
    return paths


def edit_tree(tree: Any, path: tuple, value: Any = ...) -> Any:
    """``tree`` with the key at ``path`` deleted (``value`` not given) or set to ``value``."""
    node = tree
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


def mutate_tree(tree: Any, mutation: tuple) -> Any:
    """A key deleted or retyped somewhere in a parsed YAML/JSON tree."""
    paths = json_paths(tree)
    if not paths:
        return None
    path = paths[mutation[1] % len(paths)]
    return edit_tree(tree, path) if mutation[0] == "delete" else edit_tree(
        tree, path, RETYPES[mutation[2]])


def _h5_value(value: Any) -> Any:
    if value is None:
        return np.zeros(0)
    if isinstance(value, (dict, list)) and value and not all(isinstance(v, (int, float)) for v in value):
        return json.dumps(value)
    return np.asarray(value, dtype=np.float64) if isinstance(value, list) else value


def _h5_inventory(f: h5py.File) -> tuple[list[str], list[tuple[str, str]]]:
    names: list[str] = []
    f.visit(names.append)
    attrs = [(obj, key) for obj in ["/", *names] for key in sorted(f[obj].attrs)]
    return sorted(names), attrs


def _json_attrs(f: h5py.File, attrs: list[tuple[str, str]]) -> list[tuple[str, str, Any]]:
    found = []
    for obj, key in attrs:
        value = f[obj].attrs[key]
        value = value.decode() if isinstance(value, bytes) else value
        if isinstance(value, str) and value[:1] in "{[":
            found.append((obj, key, json.loads(value)))
    return found


def mutate_hdf5(src: Path, dst: Path, mutation: tuple) -> None:
    """``src`` copied to ``dst`` and damaged by ``mutation``: bytes, or with h5py a deleted object or
    attribute, a retyped attribute, a deleted key or a cut in a JSON attribute (model_config...)."""
    raw = mutate_bytes(src.read_bytes(), mutation)
    dst.write_bytes(raw if raw is not None else src.read_bytes())
    if raw is not None:
        return
    with h5py.File(dst, "a") as f:
        names, attrs = _h5_inventory(f)
        if mutation[0] == "delete":
            choices = [(name, None) for name in names] + attrs
            obj, key = choices[mutation[1] % len(choices)]
            if key is None:
                del f[obj]
            else:
                del f[obj].attrs[key]
        elif mutation[0] == "retype":
            obj, key = attrs[mutation[1] % len(attrs)]
            f[obj].attrs[key] = _h5_value(RETYPES[mutation[2]])
        elif _json_attrs(f, attrs):
            found = _json_attrs(f, attrs)
            obj, key, tree = found[mutation[1] % len(found)]
            f[obj].attrs[key] = mutate_json_text(tree, mutation)


def mutate_json_text(tree: Any, mutation: tuple) -> str:
    """A JSON document with a key deleted, or cut short (where: ``mutation[2]``)."""
    if mutation[0] == "json-delete":
        return json.dumps(mutate_tree(tree, ("delete", mutation[2])))
    text = json.dumps(tree)
    return text[:mutation[2] % len(text)]


def mutate_keras(src: Path, dst: Path, mutation: tuple) -> None:
    """A ``.keras`` zip damaged in its bytes, by a deleted member, or in its config.json."""
    raw = mutate_bytes(src.read_bytes(), mutation)
    if raw is not None:
        dst.write_bytes(raw)
        return
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if mutation[0] == "delete":
        del members[sorted(members)[mutation[1] % len(members)]]
    else:
        tree = json.loads(members["config.json"])
        members["config.json"] = (mutate_json_text(tree, mutation) if mutation[0].startswith("json")
                                  else json.dumps(mutate_tree(tree, mutation))).encode()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def mutate_yaml(src: Path, dst: Path, mutation: tuple) -> None:
    """A YAML config damaged in its bytes or by a deleted or retyped key."""
    tree = yaml.safe_load(src.read_text())
    text = yaml.safe_dump(tree, sort_keys=False).encode()
    raw = mutate_bytes(text, mutation)
    if raw is None:
        mutated = mutate_tree(tree, mutation)
        raw = yaml.safe_dump(mutated, sort_keys=False).encode()
    dst.write_bytes(raw)


# --- commands ---------------------------------------------------------------------------------

#: (argv with "{file}" for the damaged file and "{out}" for the output, the worker's stop, the
#: output's name). Each reads the damaged file in the role its name says.
DATA_COMMANDS = {
    "train": (["train", REPO / "configs" / "jet_mlp.yaml", "--data", "{file}", "--out", "{out}"], "train", "run"),
    "scan": (["scan", REPO / "configs" / "scan" / "jet_mlp.yaml", "--data", "{file}", "--out", "{out}"], "scan",
             "scan"),
    "compress": (["compress", TEACHER, "--data", "{file}", "--out", "{out}"], "compress", "student.h5"),
    "synth": (["synth", STUDENT, "--data", "{file}", "--out", "{out}"], "synth_data", "project"),
    "rtl": (["rtl", STUDENT, "--data", "{file}", "--no-synth", "--out", "{out}"], "rtl", "rtl"),
}
MODEL_COMMANDS = {  # the damaged file is a student (QKeras) or a float teacher, as each command reads
    "compress": (["compress", "{file}", "--data", JETS, "--out", "{out}"], "compress", "student.h5"),
    "synth": (["synth", "{file}", "--out", "{out}"], "synth", "project"),
    "synth-teacher": (["synth", STUDENT, "--teacher", "{file}", "--out", "{out}"], "synth", "project"),
    "rtl": (["rtl", "{file}", "--no-synth", "--out", "{out}"], "rtl", "rtl"),
    "train-teacher": (["train", REPO / "configs" / "jet_mlp.yaml", "--data", JETS, "--teacher", "{file}", "--out",
                       "{out}"], "train_teacher", "run"),
}
STUDENT_COMMANDS = ("synth", "rtl")


def run_command(cli: CliWorker, spec: tuple, file: Path, folder: Path, **run: Any) -> tuple[str, Path]:
    """Run one command of a table above on ``file``: (its outcome per :func:`check_property`, out)."""
    argv, stop, out_name = spec
    out = folder / out_name
    args = [out if a == "{out}" else file if a == "{file}" else a for a in argv]
    what = " ".join(["trigger", *map(str, args)])
    if os.environ.get("FUZZ_KEEP_GOING"):  # exploring: print each failure of the property and go on
        try:
            outcome = check_property(cli.run(*args, stop=stop, **run), out, what)
        except AssertionError as exc:
            outcome = f"PROPERTY FAILS: {str(exc)[:1500]}"
    else:
        outcome = check_property(cli.run(*args, stop=stop, **run), out, what)
    if os.environ.get("FUZZ_SHOW"):  # to see what the mutations did: FUZZ_SHOW=1 pytest -s
        print(f"{args[0]}: {outcome[:200 if not outcome.startswith('PROPERTY') else 3000]}")
    return outcome, out


def scan_config_with_teacher(folder: Path, teacher: Path) -> Path:
    """configs/scan/jet_mlp.yaml with its files as absolute paths and ``teacher`` as the teacher."""
    tree = yaml.safe_load((REPO / "configs" / "scan" / "jet_mlp.yaml").read_text())
    tree.update(model=str(REPO / tree["model"]), synth=str(REPO / tree["synth"]), teacher=str(teacher),
                reference={"model_dir": str(MLP)})
    path = folder / "scan.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def _sample_for(model_config: str) -> Path:
    """The committed check sample of the reference model a model config (path) trains."""
    return MODELS / Path(model_config).stem / "check_sample.h5"


MODEL_CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
SCAN_CONFIGS = sorted((REPO / "configs" / "scan").rglob("*.yaml"))
SYNTH_CONFIGS = sorted((REPO / "configs" / "synth").glob("*.yaml"))
COMPRESS_CONFIGS = sorted((REPO / "configs" / "compress").glob("*.yaml"))
CALIBRATION = REPO / "trigger" / "firmware" / "estimate" / "calibration.yaml"  # what `trigger calibrate` writes


def yaml_command(config: Path, file: Path) -> tuple:
    """The command that reads ``config``'s kind of YAML, with ``file`` (the damaged copy) in its place."""
    if config == CALIBRATION:
        return ["synth", STUDENT, "--calibration", file, "--out", "{out}"], "synth_config", "project"
    if config.parent.name == "synth":
        return ["synth", STUDENT, "--config", file, "--out", "{out}"], "synth_config", "project"
    if config.parent.name == "compress":
        return ["compress", TEACHER, "--data", JETS, "--config", file, "--out", "{out}"], "compress", "student.h5"
    if "scan" in config.parts:
        model = yaml.safe_load(config.read_text())["model"]
        return ["scan", file, "--data", _sample_for(model), "--out", "{out}"], "scan", "scan"
    return ["train", file, "--data", _sample_for(config.name), "--out", "{out}"], "train", "run"


# --- the properties: fast (no TensorFlow in the worker) ------------------------------------------

DATA_MUTATIONS = mutations("truncate", "flip", "delete", "retype", "json-delete", "json-truncate")
YAML_MUTATIONS = mutations("truncate", "flip", "delete", "retype")


#: Damages found to fail the property before trigger.data.dataset caught h5py's RuntimeError and
#: KeyError and checked the types of its attributes: a broken link or attribute message (single bit
#: flips), the class names retyped to a number, the kind to a list.
DATA_EXAMPLES = [("flip", [(True, 704, 6)]), ("flip", [(True, 1787, 4)]), ("retype", 0, RETYPES.index(0)),
                 ("retype", 8, RETYPES.index([1, "a"]))]


@example(mutation=DATA_EXAMPLES[0], command="scan")
@example(mutation=DATA_EXAMPLES[1], command="train")
@example(mutation=DATA_EXAMPLES[2], command="train")
@example(mutation=DATA_EXAMPLES[3], command="scan")
@settings(max_examples=examples(12), **FUZZ)
@given(mutation=DATA_MUTATIONS, command=st.sampled_from(["train", "scan"]))
def test_damaged_data_file(cli, scratch, mutation, command):
    folder = fresh(scratch)
    damaged = folder / "jets.h5"
    mutate_hdf5(JETS, damaged, mutation)
    run_command(cli, DATA_COMMANDS[command], damaged, folder)


@settings(max_examples=examples(30), **FUZZ)
@given(mutation=YAML_MUTATIONS, config=st.sampled_from(MODEL_CONFIGS + SCAN_CONFIGS + SYNTH_CONFIGS + [CALIBRATION]))
def test_damaged_yaml_config(cli, scratch, mutation, config):
    """Model configs (train), scan configs (scan), firmware configs and calibration files (synth)."""
    folder = fresh(scratch)
    damaged = folder / config.name
    mutate_yaml(config, damaged, mutation)
    run_command(cli, yaml_command(config, damaged), damaged, folder)


@settings(max_examples=examples(10), **FUZZ)
@given(mutation=mutations("truncate", "flip", "delete", "retype", "json-delete", "json-truncate"))
def test_damaged_teacher_of_a_scan(cli, scratch, mutation):
    """The scan reads its teacher (as data: no TensorFlow) before any trial."""
    folder = fresh(scratch)
    damaged = folder / "teacher.h5"
    mutate_hdf5(TEACHER, damaged, mutation)
    spec = (["scan", scan_config_with_teacher(folder, damaged), "--data", JETS, "--out", "{out}"], "scan", "scan")
    run_command(cli, spec, damaged, folder)


#: Single bit flips (offset, mask) of models/jet_mlp/check_sample.h5 that crash (SIGSEGV) or hang the
#: HDF5 library in h5py's attribute reading, found by this module; each is now one line.
HDF5_KILLERS = {"segfault-1025": (1025, 4), "segfault-1313": (1313, 4), "hang-3865": (3865, 8)}


def _flipped(folder: Path, name: str) -> Path:
    damaged = folder / "jets.h5"
    offset, mask = HDF5_KILLERS[name]
    raw = bytearray(JETS.read_bytes())
    raw[offset] ^= mask
    damaged.write_bytes(bytes(raw))
    return damaged


@pytest.mark.parametrize("name", ["segfault-1025", "segfault-1313"])
def test_data_file_that_crashes_hdf5_is_one_line(cli, scratch, name):
    folder = fresh(scratch)
    damaged = _flipped(folder, name)
    line, _ = run_command(cli, DATA_COMMANDS["train"], damaged, folder)
    assert str(damaged) in line and "crashed" in line, line


def test_data_file_that_hangs_hdf5_is_one_line(scratch, monkeypatch):
    """In this process: the probe's child hangs, not us (2 s instead of the default 60 s)."""
    from trigger.data.dataset import check_data_file
    from trigger.errors import TriggerError
    from trigger.runtime import HDF5_PROBE_TIMEOUT_S

    assert HDF5_PROBE_TIMEOUT_S == 60
    monkeypatch.setattr("trigger.runtime.HDF5_PROBE_TIMEOUT_S", 2)
    damaged = _flipped(fresh(scratch), "hang-3865")
    with pytest.raises(TriggerError, match="did not finish reading it in 2 s") as err:
        check_data_file(damaged, "hlf")
    assert str(damaged) in str(err.value)


def test_scan_refuses_a_damaged_data_file_before_any_trial(cli, scratch):
    """Not accepted (the stop is the scan's first trial batch): the workers would each fail on it."""
    folder = fresh(scratch)
    damaged = folder / "jets.h5"
    mutate_hdf5(JETS, damaged, DATA_EXAMPLES[0])
    line, _ = run_command(cli, DATA_COMMANDS["scan"], damaged, folder)
    assert str(damaged) in line, line


@pytest.mark.parametrize("command", ["train", "scan"])
def test_unmutated_inputs_reach_the_stop(cli, scratch, command):
    """The base case of each fast property is accepted, so a mutation that is refused was refused
    for what it damaged."""
    folder = fresh(scratch)
    assert run_command(cli, DATA_COMMANDS[command], JETS, folder)[0] == "accepted"


@pytest.mark.parametrize("config", MODEL_CONFIGS + SCAN_CONFIGS + SYNTH_CONFIGS + [CALIBRATION],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_unmutated_configs_reach_the_stop(cli, scratch, config):
    assert run_command(cli, yaml_command(config, config), config, fresh(scratch))[0] == "accepted"


# --- the properties: slow (the commands load the model with TensorFlow) ---------------------------

@pytest.fixture(scope="module")
def keras_teacher(cli, scratch) -> Path:
    """models/jet_mlp/teacher.h5 saved in the .keras format, as a user's model may come."""
    path = scratch / "teacher.keras"
    cli.save_keras(TEACHER, path)
    return path


MODEL_MUTATIONS = mutations("truncate", "flip", "delete", "retype", "json-delete", "json-truncate")


#: Damaged model files that once broke the property (the CLI's last-resort "unexpected" line, or a
#: hang), each now one line from trigger/models/io.py. (mutation, command, .keras?)
MODEL_FAILURES = {
    # config.json's layers[6].inbound_nodes[0] replaced by []: Keras's deserialization raises
    # UnboundLocalError ("cannot access local variable 'kwargs'"), which load_model lets through
    "keras-inbound-node-retyped": (("retype", 28244, RETYPES.index([])), "train-teacher", True),
    # bit flips in an attribute message: h5py raises RuntimeError ("Can't synchronously determine if
    # attribute exists by name") where the model file's attributes are read (load_meta)
    "h5-attribute-flipped": (("flip", [(True, 433910742, 1), (True, 1604843312, 7), (False, 1169066522, 3),
                                       (True, 417521740, 7)]), "rtl", False),
    # the `trigger` metadata attribute retyped to a number: load_meta's json.loads raises TypeError
    "h5-metadata-retyped": (("retype", 3, RETYPES.index(0)), "rtl", False),
    # model_config's layer fc3 left without inbound nodes: Keras's functional-model reconstruction
    # loops forever (100 % CPU) while the loaded model never completes
    "h5-inbound-node-deleted": (("json-delete", 0, 296), "synth", False),
}
#: Seconds before a known hang counts as one (a warm worker loads the model in a fraction of that).
HANG_TIMEOUT_S, HANGS = 20, {"h5-inbound-node-deleted"}


def _damaged_model(folder: Path, keras_teacher: Path, mutation: tuple, command: str, keras: bool) -> Path:
    """A student for synth and rtl, a float teacher (.h5, or .keras) for the others."""
    if command in STUDENT_COMMANDS or not keras:
        source = STUDENT if command in STUDENT_COMMANDS else TEACHER
        damaged = folder / source.name
        mutate_hdf5(source, damaged, mutation)
    else:
        damaged = folder / "teacher.keras"
        mutate_keras(keras_teacher, damaged, mutation)
    return damaged


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODEL_FAILURES))
def test_model_files_that_once_crashed_or_hung_are_one_line(cli, scratch, keras_teacher, name):
    mutation, command, keras = MODEL_FAILURES[name]
    folder = fresh(scratch)
    damaged = _damaged_model(folder, keras_teacher, mutation, command, keras)
    timeout = CALL_TIMEOUT_S
    if name in HANGS:  # TensorFlow imported first, so that the short timeout is the model's alone
        assert run_command(cli, MODEL_COMMANDS[command], STUDENT, fresh(scratch))[0] == "accepted"
        timeout = HANG_TIMEOUT_S
    run_command(cli, MODEL_COMMANDS[command], damaged, folder, timeout=timeout)


#: A teacher whose trigger metadata lost one of its 16 input offsets (and one of its scales): the
#: input transform did not broadcast ("unexpected ValueError") before ModelMeta.prepare_inputs checked it.
@pytest.mark.slow
@example(mutation=("json-delete", 1, 10), command="compress", keras=False)
@example(mutation=("json-delete", 1, 30), command="compress", keras=False)
@settings(max_examples=examples(100), **FUZZ)
@given(mutation=MODEL_MUTATIONS, command=st.sampled_from(sorted(MODEL_COMMANDS)), keras=st.booleans())
def test_damaged_model_file(cli, scratch, keras_teacher, mutation, command, keras):
    folder = fresh(scratch)
    run_command(cli, MODEL_COMMANDS[command], _damaged_model(folder, keras_teacher, mutation, command, keras), folder)



@pytest.mark.slow
@example(mutation=DATA_EXAMPLES[2], command="synth")
@example(mutation=DATA_EXAMPLES[3], command="compress")
@settings(max_examples=examples(20), **FUZZ)
@given(mutation=DATA_MUTATIONS, command=st.sampled_from(["compress", "synth", "rtl"]))
def test_damaged_data_file_through_model_commands(cli, scratch, mutation, command):
    folder = fresh(scratch)
    damaged = folder / "jets.h5"
    mutate_hdf5(JETS, damaged, mutation)
    run_command(cli, DATA_COMMANDS[command], damaged, folder)


@pytest.mark.slow
@settings(max_examples=examples(10), **FUZZ)
@given(mutation=YAML_MUTATIONS, config=st.sampled_from(COMPRESS_CONFIGS))
def test_damaged_compress_config(cli, scratch, mutation, config):
    folder = fresh(scratch)
    damaged = folder / config.name
    mutate_yaml(config, damaged, mutation)
    run_command(cli, yaml_command(config, damaged), damaged, folder)


@pytest.mark.slow
@pytest.mark.parametrize("role,command", [("model", c) for c in sorted(MODEL_COMMANDS)]
                         + [("data", c) for c in ("compress", "synth", "rtl")])
def test_unmutated_files_reach_the_stop(cli, scratch, keras_teacher, role, command):
    """The base case of each slow property is accepted (the .keras teacher through compress)."""
    folder = fresh(scratch)
    if role == "data":
        assert run_command(cli, DATA_COMMANDS[command], JETS, folder)[0] == "accepted"
        return
    model = STUDENT if command in STUDENT_COMMANDS else keras_teacher if command == "compress" else TEACHER
    assert run_command(cli, MODEL_COMMANDS[command], model, folder)[0] == "accepted"
