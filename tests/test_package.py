"""``trigger`` installs like a package: every folder of code is a package, the shipped configs are
package data that ``trigger configs`` lists and copies and every command takes by name, and a wheel
installed in a fresh virtual environment runs from outside the repository (the slow test)."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import trigger
from tests.conftest import REPO
from trigger.cli import main
from trigger.config import (CONFIG_DIR, CompressConfig, ModelConfig, SynthConfig, copy_config, find_config,
                            load_config, shipped_configs)
from trigger.errors import TriggerError
from trigger.scan.config import ScanConfig

PACKAGE = Path(trigger.__file__).resolve().parent
SCHEMA_OF_GROUP = {"model": ModelConfig, "synth": SynthConfig, "compress": CompressConfig, "scan": ScanConfig}


# --- the package's shape ---------------------------------------------------------------------------

def test_every_folder_of_code_is_a_package():
    """``packages = find:`` only finds folders with an ``__init__.py`` (trigger/scan/ had none)."""
    folders = {path.parent for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts}
    assert sorted(str(f.relative_to(PACKAGE)) for f in folders if not (f / "__init__.py").is_file()) == []


def test_every_data_file_is_package_data():
    """A file under trigger/ that is not Python is shipped only if setup.cfg's package_data names it."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["trigger"].split("\n") if p.strip()]
    data = {p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"}
    shipped = {p for pattern in patterns for p in PACKAGE.glob(pattern)}
    assert sorted(str(p.relative_to(PACKAGE)) for p in data - shipped) == []


def test_configs_live_in_the_package_and_the_repository_links_to_them():
    assert CONFIG_DIR.parent == PACKAGE and (CONFIG_DIR / "jet_mlp.yaml").is_file()
    assert (REPO / "configs").resolve() == CONFIG_DIR.resolve()
    if shutil.which("git") and (REPO / ".git").exists():  # committed as a symbolic link, one copy of each file
        staged = subprocess.run(["git", "ls-files", "-s", "configs"], cwd=REPO, capture_output=True, text=True)
        assert staged.stdout.split()[:1] == ["120000"], staged.stdout


# --- a config given by name ------------------------------------------------------------------------

@pytest.mark.parametrize("config", [c for c in shipped_configs() if c.group in SCHEMA_OF_GROUP],
                         ids=lambda c: c.name)
def test_every_shipped_config_is_found_by_its_name(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the repository: configs/... is not a path here
    schema = SCHEMA_OF_GROUP[config.group]
    for given in (config.short, config.name, f"configs/{config.name}.yaml"):
        assert find_config(given, schema).resolve() == config.path.resolve(), given


def test_an_existing_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("jet_mlp").write_text("name: mine\n")
    assert find_config("jet_mlp", ModelConfig) == Path("jet_mlp")


def test_load_config_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("jet_mlp", ModelConfig).name == "jet_mlp"
    assert load_config("vitis_latency_pf64", SynthConfig).parallelization_factor == 64


@pytest.mark.parametrize("given, schema, expected", [
    ("vitis_latncy", SynthConfig, "did you mean vitis_latency"),
    ("jet_mlp", SynthConfig, "jet_mlp is a shipped model config, not a synth config"),
    ("nothing_like_it", CompressConfig, "the shipped compress configs are ad_score_student, qap_6bit_75"),
    ("absent/file.yaml", ModelConfig, "config absent/file.yaml not found"),
])
def test_an_unknown_name_is_one_line_with_the_close_matches(given, schema, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TriggerError) as err:
        load_config(given, schema)
    message = str(err.value)
    assert expected in message and "\n" not in message and "trigger configs list" in message


# --- trigger configs list / copy -------------------------------------------------------------------

def test_configs_list_shows_every_group_and_name(capsys):
    assert main(["configs", "list"]) == 0
    out = capsys.readouterr().out
    for header in ("model configs", "synth configs", "compress configs", "scan configs"):
        assert header in out
    for config in shipped_configs():
        assert config.description, config.name
        assert any(line.split()[:2] == [config.short, config.description.split()[0]]
                   for line in out.splitlines()), config.name


def test_configs_copy_writes_once_and_overwrites_only_with_force(tmp_path, capsys):
    out = tmp_path / "mine"
    assert main(["configs", "copy", "jet_mlp", str(out)]) == 0
    copied = out / "jet_mlp.yaml"
    assert copied.read_text() == (CONFIG_DIR / "jet_mlp.yaml").read_text()
    copied.write_text("edited\n")
    assert main(["configs", "copy", "scan/jet_mlp", str(out)]) == 2  # same file name: refused
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists; pass --force" in err
    assert copied.read_text() == "edited\n"
    assert main(["configs", "copy", "vitis_latency_pf64", str(out)]) == 0
    assert main(["configs", "copy", "scan/jet_mlp", str(out), "--force"]) == 0
    assert copied.read_text() == (CONFIG_DIR / "scan" / "jet_mlp.yaml").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["jet_mlp.yaml", "vitis_latency_pf64.yaml"]


def test_configs_copy_of_an_unknown_name_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert main(["configs", "copy", "jet_mpl", str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no shipped config named jet_mpl; did you mean jet_mlp" in err
    assert not (tmp_path / "mine").exists()
    with pytest.raises(TriggerError, match="no shipped config named"):
        copy_config("", tmp_path)


# --- the wheel, installed in a fresh virtual environment -------------------------------------------

def _build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the sources (an in-tree build would reuse a stale build/ folder)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(PACKAGE, src / "trigger", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "wheel"), str(src)], check=True, capture_output=True, text=True)
    return next((tmp_path / "wheel").glob("trigger-*.whl"))


def _venv_with(wheel: Path, venv: Path) -> dict[str, str]:
    """A venv holding the wheel, whose pinned dependencies are this interpreter's (a .pth path line:
    the site-packages' own .pth files, such as an editable install of the repository, are not run).
    Returns the environment to run it in: no PYTHONPATH, so the repository's ``trigger`` is not seen."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    # installed before the .pth exists, so pip sees an empty environment and never touches this one's
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", str(wheel)], check=True, capture_output=True, text=True, env=env)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, env=env).stdout.strip()
    Path(site, "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"trigger/scan/__init__.py", "trigger/scan/config.py", "trigger/configs/jet_mlp.yaml",
            "trigger/configs/synth/vitis_latency.yaml", "trigger/configs/scan/probes/jet_cnn_8f3x3_dense32.yaml",
            "trigger/firmware/estimate/calibration.yaml"} <= names
    env = _venv_with(wheel, tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(REPO / "models" / "jet_mlp" / "model.h5", work / "model.h5")

    def run(*args: str) -> str:
        res = subprocess.run(list(args), cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{args}: {res.stderr[-2000:]}"
        return res.stdout

    bin_dir = tmp_path / "venv" / "bin"
    where = run(str(bin_dir / "python"), "-c", "import trigger, trigger.config as c; print(trigger.__file__); print(c.CONFIG_DIR)")
    assert all(Path(line).resolve().is_relative_to((tmp_path / "venv").resolve()) for line in where.split("\n")[:2])
    trigger_cmd = str(bin_dir / "trigger")
    assert "COMMAND" in run(trigger_cmd, "--help") and "--data" in run(trigger_cmd, "scan", "--help")
    assert "vitis_latency_pf64" in run(trigger_cmd, "configs", "list")
    run(trigger_cmd, "configs", "copy", "jet_mlp", "mine")
    assert (work / "mine" / "jet_mlp.yaml").read_text() == (CONFIG_DIR / "jet_mlp.yaml").read_text()
    run(trigger_cmd, "synth", "model.h5", "--config", "vitis_latency_pf64", "--out", "prj")
    report = json.loads((work / "prj" / "report.json").read_text())
    assert report["csim"]["bit_exact_fraction"] == 1.0 and report["config"]["parallelization_factor"] == 64
