# The README's commands: `make demo`, `make test`, `make test-fast`, `make lint`, `make clean-demo`.
# Each creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint venv clean-demo

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/isda-bench launch sweeps/smoke.yaml --cluster local
	$(VENV)/bin/isda-bench report sweeps/smoke.yaml

# Everything, the real SLURM cluster's tests included (they skip without one, or fail when CI=true).
test: $(STAMP)
	$(PY) -m pytest -q

# The tests not marked slow (tests/conftest.py says which are): every package, in a few minutes.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check bench tests
	$(PY) -m mypy

# What `make demo` trained (its results; $ISDA_BENCH_RESULTS if set, as the command line reads it).
# reports/smoke/ stays: it is committed, and the next `make demo` rewrites it.
clean-demo:
	rm -rf "$${ISDA_BENCH_RESULTS:-results}/smoke"
