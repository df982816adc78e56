"""The encoding experiments run at smoke size and their claims hold there."""

from pathlib import Path

import numpy as np
import pytest

from diffprog import experiment as ex

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def test_encoding_gradients_slope_is_one(tmp_path, run_quick):
    rec = run_quick(
        "encoding_gradients",
        tmp_path,
        dim=16,
        nerf_bands=6,
        gaussian_features=12,
        points=12,
        networks=1,
        hidden="16",
    )
    h, m = rec["headline"], rec["metrics"]["encodings"]
    assert h["slope_within_tolerance"]
    for name in ("transformer", "nerf", "gaussian"):
        # the encoding's Jacobian norm is exactly ω: slope 1 (required: within 2 %)
        assert abs(m[name]["encoding_slope"] - 1) < 0.02
        assert m[name]["max_relative_error_vs_omega"] < 1e-10
        # the per-band split of a random network's input gradient is exact, and grows ~ω
        assert m[name]["chain_rule_split_max_error"] < 1e-9
        assert 0.7 < m[name]["network_slope"] < 1.3
    assert (tmp_path / "encoding_gradients" / "jacobian_vs_frequency.png").exists()


def test_spectral_bias_low_frequencies_first(tmp_path, run_quick):
    rec = run_quick(
        "spectral_bias", tmp_path, frequencies="1,4", points=32, steps=400, hidden="32,32"
    )
    plain = rec["metrics"]["none"]["learned_at_step"]
    ff = rec["metrics"]["fourier σ=16"]["learned_at_step"]
    # the plain ReLU MLP learns k=1 first (k=4 later, or not within the budget)
    assert plain[0] is not None and (plain[1] is None or plain[1] > plain[0])
    # Fourier features learn both, and both before the plain MLP's first
    assert None not in ff and max(ff) < plain[0]
    assert rec["figures"] == ["residual_spectrum.png"]


def test_fourier_features_table_resume_and_image_paths(tmp_path, run_quick):
    from skimage import io

    from diffprog.data import load_sample_image

    img = (load_sample_image("astronaut", size=40) * 255).astype(np.uint8)
    path = tmp_path / "mine.png"
    io.imsave(path, img)
    settings = dict(
        images=str(path),
        mappings="gaussian",
        size=24,
        steps=20,
        evals=1,
        width=16,
        num_frequencies=16,
        gaussian_sigmas="2,4",
        seeds=2,
    )
    rec = run_quick("fourier_features", tmp_path, **settings)
    table = rec["metrics"]["table"]
    assert [r["mapping"] for r in table] == ["gaussian"]
    for r in table:
        assert r["runs"] == 2  # 1 image × 2 seeds at the chosen σ
        assert set(r) >= {"psnr_mine", "paper_psnr", "test_psnr"}
        assert np.isfinite(r["test_psnr_mean"]) and r["test_psnr_std"] >= 0
    assert len(rec["metrics"]["sweep"]) == 2  # gaussian σ=2, σ=4
    best = rec["metrics"]["best_sigma"]["gaussian"]
    sweep = {r["sigma"]: r["test_psnr_mean"] for r in rec["metrics"]["sweep"]}
    assert sweep[best] == max(sweep[2.0], sweep[4.0])
    # held-out pixels: 3/4 of 24² for every run
    assert {r["n_test"] for r in rec["metrics"]["runs"]} == {24 * 24 * 3 // 4}
    assert {"reconstructions.png", "sigma_sweep.png"} <= set(rec["figures"])
    # a rerun trains nothing and reproduces the table
    again = run_quick("fourier_features", tmp_path, **settings)
    assert again["metrics"]["runs_reused_from_disk"] == len(rec["metrics"]["runs"])
    assert again["metrics"]["table"] == table


def test_fourier_features_rejects_unknown_images():
    module = ex.load("fourier_features", EXPERIMENTS)
    with pytest.raises(ex.ExperimentError, match="neither a scikit-image sample"):
        ex.make_config(module, quick=True, overrides={"images": "no_such_image"})
