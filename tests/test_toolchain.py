"""A missing or broken toolchain is one line: g++ is checked before any conversion (missing, or
unable to compile a small program), a generated project that g++ fails on keeps its build log under
``<out>.failed``, and ``--build`` without the vendor tool says so before the work and fails in one
line after it (the full --build case is tests/test_firmware.py::test_build_without_vendor_tool_keeps_project).

g++ is hidden with PATH set to a folder of our own (the interpreter is started by its full path),
or replaced by a fake ``g++`` script placed first on PATH."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

#: a g++ that answers the toolchain check (and hls4ml's flag probes) but fails on every real compile
FAKE_GXX = """#!/bin/sh
for a in "$@"; do
  case "$a" in --version) echo "fake g++ 0.0"; exit 0;; -fsyntax-only) cat >/dev/null; exit 0;; esac
done
echo "firmware/myproject.cpp:1:1: error: fake-g++ refuses to compile this" >&2
exit 1
"""
#: a g++ that cannot compile anything (e.g. cc1plus missing)
BROKEN_GXX = """#!/bin/sh
echo "g++: fatal error: cannot execute 'cc1plus': No such file or directory" >&2
exit 1
"""


@pytest.fixture(scope="module")
def mlp_model(tmp_path_factory) -> Path:
    """The small MLP example model (saving it imports TensorFlow here, a few seconds)."""
    from trigger.firmware.examples import save_example

    return save_example("mlp", tmp_path_factory.mktemp("tc_models") / "mlp.h5")


def _bin(folder: Path, name: str, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(script)
    (folder / name).chmod(0o755)
    return folder


def synth(model: Path, out: Path, path: str, *extra: str) -> subprocess.CompletedProcess:
    """`trigger synth` in a fresh interpreter with PATH set to ``path``."""
    env = dict(os.environ, PATH=path)
    return subprocess.run([sys.executable, "-m", "trigger", "synth", str(model), "--out", str(out), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def _nothing_at(out: Path) -> None:
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temporary left


def test_synth_without_gxx_is_one_line(mlp_model, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "out"
    result = synth(mlp_model, out, str(empty))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("trigger: error: g++ is not on PATH")
    assert "apt-get install g++" in result.stderr and "build-essential" in result.stderr
    _nothing_at(out)
    assert not out.with_name("out.failed").exists()


def test_gxx_that_cannot_compile_is_refused_before_work(mlp_model, tmp_path):
    fake = _bin(tmp_path / "bin", "g++", BROKEN_GXX)
    out = tmp_path / "out"
    result = synth(mlp_model, out, f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "cannot compile a small C++ program" in result.stderr and "cc1plus" in result.stderr
    assert "apt-get install g++" in result.stderr
    _nothing_at(out)


@pytest.mark.slow  # converts the model (about 8 s)
def test_compile_error_keeps_the_project_and_its_log(mlp_model, tmp_path):
    fake = _bin(tmp_path / "bin", "g++", FAKE_GXX)
    out = tmp_path / "out"
    result = synth(mlp_model, out, f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert result.returncode == 2, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]  # the lines before it are the run's progress log
    assert "Traceback" not in result.stderr and "Failed to compile" not in result.stderr
    failed = tmp_path / "out.failed"
    build_log = failed / "csim_build.log"
    assert message.startswith("trigger: error: g++ failed to compile the generated C simulation: "
                              "firmware/myproject.cpp:1:1: error: fake-g++ refuses")
    assert str(build_log) in message
    assert "fake-g++ refuses to compile this" in build_log.read_text()
    assert (failed / "firmware" / "myproject.cpp").is_file()  # the code the log points at
    assert f"OutputDir: {failed}\n" in (failed / "hls4ml_config.yml").read_text()  # hls4ml rebuilds it there
    _nothing_at(out)


def test_require_compiler(monkeypatch, tmp_path):
    from trigger.errors import TriggerError
    from trigger.firmware.csim import require_compiler

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TriggerError, match="g[+][+] is not on PATH"):
        require_compiler()
    monkeypatch.setenv("PATH", str(_bin(tmp_path / "fake", "g++", FAKE_GXX)))
    assert require_compiler() == str(tmp_path / "fake" / "g++")


def test_first_error_line():
    from trigger.firmware.csim import first_error_line

    out = "Writing HLS project\nDone\nfirmware/a.cpp: In function 'f':\nfirmware/a.cpp:3:5: error: 'x' was not declared\n"
    assert first_error_line(out) == "firmware/a.cpp:3:5: error: 'x' was not declared"
    assert first_error_line("./build_lib.sh: line 27: g++: command not found").endswith("command not found")
    assert first_error_line("") == "no output"


def test_missing_vendor_tool_is_named_before_the_work(monkeypatch, tmp_path, caplog):
    from trigger.errors import ToolNotFoundError
    from trigger.firmware.vendor import require_tool, warn_missing_tool

    monkeypatch.setenv("PATH", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="trigger"):
        assert warn_missing_tool("Vitis") is False
    assert "vitis-run or vitis_hls" in caplog.text and "settings64.sh" in caplog.text
    with pytest.raises(ToolNotFoundError) as info:
        require_tool("Vivado")
    assert "`vivado_hls`" in str(info.value) and "settings64.sh" in str(info.value)
    assert "\n" not in str(info.value)
