"""Every subcommand fed a corrupt, empty or wrong-kind file of each type it reads (model .h5, data
.h5, YAML config, project folder): exit 2, one line on stderr, no traceback, nothing written.

The inputs are the committed reference files (models/jet_mlp, models/ad_autoencoder) and small
broken files made here. Each case runs the CLI in a fresh interpreter, as a user would; most fail
before TensorFlow is imported, the whole sweep takes about a minute (hence ``slow``).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest

from tests.conftest import REPO, run_cli

MLP = REPO / "models" / "jet_mlp"
TEACHER, STUDENT, JETS = MLP / "teacher.h5", MLP / "model.h5", MLP / "check_sample.h5"
AD, AD_TEACHER = REPO / "models" / "ad_autoencoder" / "check_sample.h5", REPO / "models" / "ad_autoencoder" / "teacher.h5"
MODEL_CONFIG, AD_CONFIG = REPO / "configs" / "jet_mlp.yaml", REPO / "configs" / "ad_autoencoder.yaml"
SYNTH_CONFIG = REPO / "configs" / "synth" / "vitis_latency.yaml"


def error_line(res) -> str:
    """The one error line of a failed run; asserts exit 2, no traceback and nothing else on stderr
    but the stage's own ``[trigger]`` log lines."""
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("[trigger] ")]
    assert len(lines) == 1, res.stderr[-3000:]
    assert lines[0].startswith("trigger: error: "), lines[0]
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    """Neither the output nor a temporary of it (``.NAME.*.tmp``) exists."""
    assert not out.exists(), out
    if out.parent.exists():
        assert not list(out.parent.glob(f".{out.name}.*")), list(out.parent.iterdir())


def _project(root: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = root / name
    folder.mkdir()
    for file, content in files.items():
        (folder / file).write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    """Broken inputs by name; the good ones are the committed reference files."""
    root = tmp_path_factory.mktemp("bad")
    files = {"corrupt.h5": b"\x00\x01garbage\xff\xfe, not HDF5", "empty.h5": b"",
             "truncated.h5": TEACHER.read_bytes()[:3000], "binary.yaml": b"\x89HDF\r\n\x1a\n\x00\xff\xfe",
             "list.yaml": b"- epochs\n- 3\n", "empty.yaml": b""}
    paths = {name: root / name for name in files}
    for name, content in files.items():
        paths[name].write_bytes(content)
    paths["folder"] = root / "folder"
    paths["folder"].mkdir()
    inf = root / "inf.h5"  # a generated file with one inf input
    inf.write_bytes(JETS.read_bytes())
    with h5py.File(inf, "a") as f:
        f["hlf"][0, 3] = float("inf")
    paths["inf.h5"] = inf
    nan_teacher = root / "nan_teacher.h5"  # a loadable teacher whose weights are NaN
    nan_teacher.write_bytes(TEACHER.read_bytes())
    with h5py.File(nan_teacher, "a") as f:
        kernels = []
        f["model_weights"].visititems(lambda name, obj: kernels.append(obj) if name.endswith("kernel:0") else None)
        kernels[-1][...] = float("nan")  # the output layer: a ReLU would turn NaN into 0
    paths["nan_teacher.h5"] = nan_teacher
    paths["project_empty"] = _project(root, "project_empty", {})
    paths["project_corrupt"] = _project(root, "project_corrupt", {"report.json": b'{"csim": '})
    paths["project_list"] = _project(root, "project_list", {"report.json": b"[1, 2]"})
    paths["project_metrics"] = _project(root, "project_metrics", {"report.json": (MLP / "metrics.json").read_bytes()})
    paths["project_binary"] = _project(root, "project_binary", {"report.md": b"\xff\xfe\x00\x00binary"})
    return paths


def _resolve(args: tuple, bad: dict[str, Path]) -> list[str]:
    return [str(bad[a[1:]]) if isinstance(a, str) and a.startswith("@") else str(a) for a in args]


# (id, arguments before --out; "@name" is a broken input of the fixture)
TRAIN = [
    ("config-binary", ("train", TEACHER)),                   # a model where the config belongs
    ("config-empty", ("train", "@empty.yaml")),
    ("config-list", ("train", "@list.yaml")),
    ("config-folder", ("train", "@folder")),
    ("config-wrong-kind", ("train", SYNTH_CONFIG)),
    ("data-corrupt", ("train", MODEL_CONFIG, "--data", "@corrupt.h5")),
    ("data-empty", ("train", MODEL_CONFIG, "--data", "@empty.h5")),
    ("data-is-a-model", ("train", MODEL_CONFIG, "--data", TEACHER)),
    ("data-ad-for-jets", ("train", MODEL_CONFIG, "--data", AD)),
    ("data-jets-for-ad", ("train", AD_CONFIG, "--data", JETS)),
    ("data-with-inf", ("train", MODEL_CONFIG, "--data", "@inf.h5")),
]
COMPRESS = [
    ("model-corrupt", ("compress", "@corrupt.h5", "--data", JETS)),
    ("model-empty", ("compress", "@empty.h5", "--data", JETS)),
    ("model-truncated", ("compress", "@truncated.h5", "--data", JETS)),
    ("model-is-data", ("compress", JETS, "--data", JETS)),
    ("model-folder", ("compress", "@folder", "--data", JETS)),
    ("data-corrupt", ("compress", TEACHER, "--data", "@corrupt.h5")),
    ("data-is-a-model", ("compress", TEACHER, "--data", TEACHER)),
    ("data-ad-for-jets", ("compress", TEACHER, "--data", AD)),
    ("data-jets-for-ad", ("compress", AD_TEACHER, "--data", JETS)),
    ("config-list", ("compress", TEACHER, "--data", JETS, "--config", "@list.yaml")),
    ("config-wrong-kind", ("compress", TEACHER, "--data", JETS, "--config", MODEL_CONFIG)),
]
SYNTH = [
    ("model-corrupt", ("synth", "@corrupt.h5")),
    ("model-empty", ("synth", "@empty.h5")),
    ("model-truncated", ("synth", "@truncated.h5")),
    ("model-is-data", ("synth", JETS)),
    ("data-corrupt", ("synth", STUDENT, "--data", "@corrupt.h5")),
    ("data-empty", ("synth", STUDENT, "--data", "@empty.h5")),
    ("data-ad-for-jets", ("synth", STUDENT, "--data", AD)),
    ("teacher-truncated", ("synth", STUDENT, "--teacher", "@truncated.h5")),
    ("teacher-nan", ("synth", STUDENT, "--data", JETS, "--teacher", "@nan_teacher.h5")),
    ("config-binary", ("synth", STUDENT, "--config", "@binary.yaml")),
    ("config-wrong-kind", ("synth", STUDENT, "--config", MODEL_CONFIG)),
]
OUT_NAME = {"train": "run", "compress": "student.h5", "synth": "project"}


@pytest.mark.slow
@pytest.mark.parametrize("case", TRAIN + COMPRESS + SYNTH, ids=lambda c: f"{c[1][0]}-{c[0]}")
def test_bad_file_is_one_line_and_writes_nothing(case, bad, tmp_path):
    _, args = case
    out = tmp_path / "out" / OUT_NAME[args[0]]
    res = run_cli(*_resolve(args, bad), "--out", out, timeout=300)
    line = error_line(res)
    assert "unexpected" not in line, line  # a deliberate check, not the last-resort handler
    assert_nothing_written(out)


@pytest.mark.parametrize("name", ["project_empty", "project_corrupt", "project_list", "project_metrics",
                                  "project_binary", "corrupt.h5"])
def test_report_of_a_bad_project_folder_is_one_line(name, bad):
    line = error_line(run_cli("report", bad[name], timeout=120))
    assert "unexpected" not in line and str(bad[name]) in line, line


@pytest.mark.parametrize("out", ["folder", "below-a-file"])
def test_data_never_replaces_a_folder_or_writes_below_a_file(out, bad):
    target = bad["folder"] if out == "folder" else bad["corrupt.h5"] / "jets.h5"
    res = run_cli("data", "jets", "--n-per-class", "2", "--out", target, "--force", timeout=120)
    assert "unexpected" not in error_line(res)
    assert bad["folder"].is_dir() and bad["corrupt.h5"].is_file()
