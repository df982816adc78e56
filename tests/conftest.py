"""Shared test settings: float64 everywhere (gradient tests need it), no progress bars."""

import os
from pathlib import Path

os.environ.setdefault("DIFFPROG_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
# Tests are dominated by XLA compilation of small programs: skip LLVM's optimisation passes
# (about 20 % faster in total; results are unchanged, HLO-level passes still run).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

# Many small programs compile again in the other xdist worker and in the subprocesses the
# tests start (notebook kernels, multi-device runs): they share compiled executables through
# JAX's persistent compilation cache, kept in an ignored folder of the repository (its keys
# include the program, the compile options and the JAX version, so stale entries are never
# used; `make clean` removes it). Measured from an empty cache: the default test run took
# 540 s instead of 612 s on 2 cores, about 70 MB of cache. (A size cap,
# JAX_COMPILATION_CACHE_MAX_SIZE, made the run twice as slow: its bookkeeping locks every
# access.) Set JAX_COMPILATION_CACHE_DIR to use another folder.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "jax-tests")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import itertools

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def getkey():
    """A fresh ``jax.random.key`` on every call, deterministic per test."""
    counter = itertools.count()
    base = jax.random.key(1234)
    return lambda: jax.random.fold_in(base, next(counter))


EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


@pytest.fixture
def run_quick():
    """Run an experiment of ``experiments/`` at quick size (plus ``--set`` overrides)."""
    from diffprog import experiment as ex

    def run(name, out, **overrides):
        return ex.run_experiment(
            name,
            quick=True,
            out=out,
            overrides={k: str(v) for k, v in overrides.items()},
            directory=EXPERIMENTS,
        )

    return run
