"""The CLI as a user meets it: help texts, one-line errors with exit 2, nothing half-written."""

import pytest

from tests.conftest import REPO, run_cli

SUBCOMMANDS = ["data", "train", "compress", "synth", "calibrate", "report", "scan", "rtl", "configs"]


def test_help_lists_every_subcommand():
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


def test_unknown_part_is_one_line_before_any_work(tmp_path):
    """An FPGA part without known totals is refused before conversion, naming the known parts and
    how to add one (a config's part_resources; test_config.py checks that path)."""
    from tests.test_bad_inputs import assert_nothing_written, error_line

    out = tmp_path / "project"
    line = error_line(run_cli("synth", REPO / "models" / "jet_mlp" / "model.h5", "--part", "notapart",
                              "--out", out))
    assert "unknown FPGA part 'notapart'" in line and "xcvu13p" in line and "part_resources" in line
    assert_nothing_written(out)


@pytest.fixture
def own_log(monkeypatch):
    """main() points the trigger logger at the test's captured stderr: give it back afterwards."""
    from trigger.runtime import log

    monkeypatch.setattr(log, "handlers", list(log.handlers))
    monkeypatch.setattr(log, "propagate", log.propagate)
    monkeypatch.setattr(log, "level", log.level)


def test_unexpected_exception_is_one_line_and_v_shows_the_traceback(tmp_path, capsys, monkeypatch, own_log):
    """An exception no check foresaw: one line that says it is unexpected, names the input and asks
    for -v and a report; -v prints the traceback above it. Exit 2 either way."""
    from trigger import cli

    def broken(args):
        raise ValueError("Input contains NaN.\nsecond line")

    monkeypatch.setattr(cli, "_cmd_report", broken)
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("trigger: error: unexpected ValueError in `trigger report` on " + str(tmp_path))
    assert "Input contains NaN. second line" in err[0] and "-v" in err[0] and "report it" in err[0]
    assert cli.main(["-v", "report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("trigger: error: unexpected ValueError")


def test_a_full_disk_outside_an_output_is_named_not_called_a_bug(tmp_path, capsys, monkeypatch, own_log):
    """A write that fails for lack of space where no output's atomic_path catches it (a scratch
    folder in /tmp): one line naming the place and the free space, not the 'unexpected' line."""
    import errno

    from trigger import cli

    def full_scratch(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "scratch"))

    monkeypatch.setattr(cli, "_cmd_report", full_scratch)
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"trigger: error: `trigger report` could not write {tmp_path / 'scratch'}: "
                             "no space left on device (") and "free there" in err[0], err[0]
    assert "unexpected" not in err[0]
