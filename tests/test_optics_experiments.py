"""The optics experiments run below quick size and their claims hold there."""

from pathlib import Path

import pytest

from diffprog import experiment as ex

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def test_cgh_adam_beats_gerchberg_saxton(tmp_path, run_quick):
    rec = run_quick("cgh", tmp_path, size=32, iterations=50, seeds=1, methods="gs,adam")
    h = rec["headline"]
    assert h["adam_final_psnr_db"] > h["gs_final_psnr_db"] + 2.0
    assert {"psnr_curves.png", "reconstructions.png"} <= set(rec["figures"])
    rows = rec["metrics"]["robustness_psnr_db"]
    assert all(r["16-level SLM"] < r["nominal"] + 0.5 for r in rows)


def test_holography_inversion_removes_the_twin_image(tmp_path, run_quick):
    rec = run_quick(
        "holography", tmp_path, size=48, iterations=80, noise_levels="0.0", distances="0.002",
        base_noise=0.0,
    )  # fmt: skip
    row = rec["metrics"]["rows"][0]
    # back-propagation keeps the twin image; the constrained inversion does not
    assert row["backprop_error"] > 0.15
    assert row["inversion_error"] < 0.5 * row["backprop_error"]
    assert "reconstruction_amplitude.png" in rec["figures"]


def test_phase_retrieval_gradient_descent_succeeds(tmp_path, run_quick):
    rec = run_quick(
        "phase_retrieval", tmp_path, size=24, objects=2, iterations=120, checkpoints=2,
        algorithms="er,adam",
    )  # fmt: skip
    res = rec["metrics"]["results"]
    assert res["3 distances/adam"]["final_success_rate"] == 1.0
    assert res["3 distances/adam"]["median_final_error"] < 0.05
    for key in res:
        assert 0.0 <= res[key]["final_success_rate"] <= 1.0


@pytest.mark.parametrize("name", ["cgh", "holography", "phase_retrieval"])
def test_bad_config_is_a_clear_error(name):
    module = ex.load(name, EXPERIMENTS)
    with pytest.raises(ex.ExperimentError, match="must be positive"):
        ex.make_config(module, quick=True, overrides={"size": "0"})
