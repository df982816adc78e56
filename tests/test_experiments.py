"""Every foundation experiment runs at (below) quick size and its claims hold there."""

from pathlib import Path

import pytest

from diffprog import experiment as ex

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def test_xor(tmp_path, run_quick):
    rec = run_quick("xor", tmp_path)
    assert rec["headline"]["mlp_best_accuracy"] == 1.0
    assert rec["metrics"]["mlp"]["fraction_solved"] >= 0.5
    assert rec["headline"]["linear_best_accuracy"] <= 0.75


def test_regression(tmp_path, run_quick):
    rec = run_quick("regression", tmp_path, steps=300)
    m = rec["metrics"]
    # nonlinear synthetic prices: the MLP must beat the least-squares line clearly
    assert m["house_prices"]["mlp_test_rmse"] < 0.8 * m["house_prices"]["least_squares_test_rmse"]
    # near-linear diabetes data: the MLP must at least be close to least squares
    assert m["diabetes"]["mlp_test_rmse"] < 1.1 * m["diabetes"]["least_squares_test_rmse"]
    assert m["diabetes"]["mlp_test_rmse"] < m["diabetes"]["predict_mean_test_rmse"]


def test_digits(tmp_path, run_quick):
    rec = run_quick("digits", tmp_path, steps=200, evals=2)
    assert rec["headline"]["cnn_test_accuracy"] > 0.9
    assert rec["headline"]["mlp_test_accuracy"] > 0.9
    cm = rec["metrics"]["cnn"]["confusion_matrix"]
    assert sum(map(sum, cm)) == rec["metrics"]["n_test"]
    assert {"learning_curves.png", "confusion.png"} <= set(rec["figures"])


def test_gradcheck(tmp_path, run_quick):
    # one activation (tests/nn check every activation's hand-written backprop)
    rec = run_quick("gradcheck", tmp_path, activations="tanh")
    h = rec["headline"]
    assert h["max_manual_vs_jax_grad"] < 1e-10
    assert h["max_jax_grad_vs_fd"] < 1e-6
    assert h["min_taylor_rate"] > 1.9
    assert h["max_taylor_rate_wrong"] < 1.2
    rnn = next(r for r in rec["metrics"]["table"] if r["case"].startswith("rnn"))
    assert rnn["checkpointed_vs_plain_scan"] < 1e-12


@pytest.mark.parametrize("name", sorted(ex.discover(EXPERIMENTS)))
def test_every_experiment_has_quick_size_and_description(name):
    module = ex.load(name, EXPERIMENTS)
    assert isinstance(module.QUICK, dict) and module.DESCRIPTION
    cfg = ex.make_config(module, quick=True)
    assert cfg.quick and issubclass(module.Config, ex.ExperimentConfig)


def test_train_config_reads_the_experiment_config(tmp_path):
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cfg(ex.ExperimentConfig):
        steps: int = 100
        batch_size: int = 16
        evals: int = 4

    cfg = Cfg(out_dir=str(tmp_path / "demo"))
    tc = ex.train_config(cfg, "mlp", batch_size=8)
    assert (tc.steps, tc.batch_size, tc.log_every, tc.eval_every) == (100, 8, 25, 25)
    assert tc.checkpoint_every == 20 and tc.desc == "demo/mlp"
    assert tc.checkpoint_dir == ex.checkpoint_dir(cfg, "mlp")
