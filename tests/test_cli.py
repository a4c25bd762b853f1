"""The CLI as a user meets it: help texts, one-line errors with exit 2, nothing half-written."""

import pytest

from tests.conftest import REPO, run_cli

SUBCOMMANDS = ["data", "train", "compress", "synth", "report"]


def test_help_lists_the_five_subcommands():
    res = run_cli("--help")
    assert res.returncode == 0
    for name in SUBCOMMANDS:
        assert f"    {name} " in res.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_says_what_it_reads_and_writes(name):
    res = run_cli(name, "--help")
    assert res.returncode == 0, res.stderr
    text = res.stdout.lower()
    assert "reads" in text and "writes" in text


def test_misspelt_config_key_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "jet_mlp.yaml"
    bad.write_text((REPO / "configs" / "jet_mlp.yaml").read_text().replace("epochs:", "epohcs:"))
    res = run_cli("train", bad, "--out", tmp_path / "run")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "epohcs" in lines[0] and str(bad) in lines[0]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()


def test_missing_config_file_is_one_line_exit_2(tmp_path):
    res = run_cli("train", tmp_path / "absent.yaml")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "not found" in res.stderr


def test_usage_error_exit_2():
    res = run_cli("synth")
    assert res.returncode == 2
    assert "MODEL" in res.stderr.upper()


def test_version():
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("trigger ")
