# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv if missing and
# installs the pinned stack (setup.cfg is the one place where versions are pinned).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: install test test-fast demo data reference clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[data,test,da,rtl]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# The quick subset: everything not marked slow (no event generation, training or HLS compile).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The main job on a built-in default: the jet MLP end to end on a small generated sample.
demo: $(STAMP)
	$(BIN)/python -m trigger.demo

# Full-size training sets for the reference models (never run in CI).
data: $(STAMP)
	$(BIN)/trigger data jets --n-per-class 20000 --workers 2 --out data/jets.h5
	$(BIN)/trigger data ad --n-background 200000 --n-signal 10000 --workers 2 --out data/ad.h5

# Reference models (models/<name>/, firmware_projects/<name>/report.md, docs/RESULTS.md table)
# from the shipped configs on the full data; run `make data` first. Never run in CI.
reference: $(STAMP)
	$(BIN)/python -m trigger.reference

clean:
	rm -rf demo_output .pytest_cache
