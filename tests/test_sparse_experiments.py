"""The sparse-recovery experiments run below quick size and their claims hold there."""

import pytest


def test_lasso(tmp_path, run_quick):
    rec = run_quick("lasso", tmp_path, iterations=200, reference_iterations=3000)
    h, m = rec["headline"], rec["metrics"]
    for name in ("sparse_250x500", "diabetes"):
        assert abs(h[f"{name}_gap_vs_sklearn"]) < 1e-10
        assert h[f"{name}_same_support"]
        assert h[f"{name}_fista_iters_to_1e-8"] <= h[f"{name}_ista_iters_to_1e-8"]
        assert m[name]["exact_zeros"]["FISTA"] > 0
        assert m[name]["exact_zeros"]["subgradient descent"] == 0
    assert rec["figures"] == ["objective_gap.png"]


def test_lista(tmp_path, run_quick):
    rec = run_quick(
        "lista",
        tmp_path,
        layers=2,
        max_steps=50,
        patience=50,
        val_size=128,
        test_size=128,
        methods="ista,fista,alista,lista_cp",
    )
    h = rec["headline"]
    # two trained layers beat two iterations of the classical algorithms
    assert h["alista_noiseless_nmse_db"] < h["fista_noiseless_nmse_db"] - 1.0
    assert h["lista_cp_noiseless_nmse_db"] < h["ista_noiseless_nmse_db"] - 1.0
    rows = rec["tables"]["test NMSE (dB) per layer"]
    assert {r["method"] for r in rows} == {"ISTA", "FISTA", "ALISTA", "LISTA-CP"}
    assert all("layer 2" in r for r in rows)


@pytest.mark.slow  # the claim is covered by the unit tests; `make test-all` runs it
def test_sparse_denoising(tmp_path, run_quick):
    rec = run_quick("sparse_denoising", tmp_path, steps=20, fista_iterations=10, layers=3)
    h = rec["headline"]
    assert h["net_psnr_db"] > h["observation_psnr_db"]
    assert h["fista_same_iterations_psnr_db"] > h["observation_psnr_db"]
    assert rec["figures"] == ["psnr_per_layer.png"]
