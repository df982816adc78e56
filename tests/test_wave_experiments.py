"""The wave experiments run at (below) quick size and their claims hold there."""

import pytest


def test_wave_green(tmp_path, run_quick):
    rec = run_quick("wave_green", tmp_path, dims="2", orders="2,8", distance_cells=10)
    h = rec["headline"]
    assert h["error_2d_order2"] < 0.1
    assert h["error_2d_order8"] < 0.1 * h["error_2d_order2"]
    # halving dt lowers the floor that the highest order sits on
    half = rec["metrics"]["half_dt"][0]
    assert half["relative_l2_error"] < h["error_2d_order8"]
    assert "green_traces.png" in rec["figures"]


@pytest.mark.slow  # the claim is covered by the unit tests; `make test-all` runs it
def test_adjoint_equivalence(tmp_path, run_quick):
    rec = run_quick("adjoint_equivalence", tmp_path, nt=240, nx=48, nz=32)
    h = rec["headline"]
    assert h["hand_adjoint_vs_jax_grad"] < 1e-8
    assert h["frequency_image_vs_jax_grad"] < 1e-8
    assert 1e-6 < h["textbook_omega2_vs_jax_grad"] < 0.5  # approximate, not exact
    assert "images_side_by_side.png" in rec["figures"]
