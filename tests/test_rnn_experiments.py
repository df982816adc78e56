"""The recurrent-network experiments run at (below) quick size and their claims hold."""

import math

import pytest


def test_truncated_bptt_fails_below_the_delay_and_learns_above(tmp_path, run_quick):
    rec = run_quick("truncated_bptt", tmp_path, windows="4,8", iterations=60)
    h = rec["headline"]
    assert h["delay_L"] == 4
    assert h["max_accuracy_k_le_L"] < 0.5  # k <= L: near chance (1/4)
    assert h["min_accuracy_k_gt_L"] > 0.9  # k > L: learns the recall
    assert "accuracy_vs_window.png" in rec["figures"]


@pytest.mark.slow  # the claim is covered by the unit tests; `make test-all` runs it
def test_gradient_flow_curves(tmp_path, run_quick):
    rec = run_quick("gradient_flow", tmp_path, hidden=16, length=40, batch=4, train_steps=30)
    h = rec["headline"]
    assert h["linear_max_rel_error_vs_rho_lag"] < 1e-10  # the exact ρ^lag law
    assert h["tanh_smallest_rho_growth"] < 0.6  # vanishing
    assert h["tanh_largest_rho_growth"] > 1.0  # exploding
    assert not math.isfinite(h["sgd_final_loss"])  # plain SGD diverges at ρ = 1.1
    clipped = rec["metrics"]["training"]["sgd + clip_by_global_norm"]
    assert clipped["diverged_at_step"] is None
    assert h["clipped_sgd_final_loss"] < 0.25 * clipped["initial_loss"]  # and it trains
    growth = {r["network"]: r for r in rec["metrics"]["growth"]}
    assert growth["LSTM forget bias 3"]["growth_per_step_c"] > growth["tanh ρ=1"]["growth_per_step"]
    assert "gradient_flow.png" in rec["figures"]
