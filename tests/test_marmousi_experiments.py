"""The seismic experiments run below quick size on the synthetic model, and their claims hold."""

import pytest

from diffprog.wave.io import write_npy
from diffprog.wave.models import layered_faulted_model

pytestmark = pytest.mark.filterwarnings("ignore:only .* grid points per wavelength")


def test_rtm_marmousi(tmp_path, run_quick):
    rec = run_quick("rtm_marmousi", tmp_path, shots=3)
    scores = rec["metrics"]["scores"]
    assert set(scores) == {
        "cross-correlation",
        "cross-correlation + Laplacian",
        "normalised",
        "normalised + Laplacian",
    }
    # every image correlates positively with the true reflectivity, and normalising by the
    # source illumination improves the image, with or without the Laplacian filter
    assert min(scores.values()) > 0, scores
    assert scores["normalised"] > scores["cross-correlation"], scores
    assert scores["normalised + Laplacian"] > scores["cross-correlation + Laplacian"], scores
    assert {"rtm_images.png", "data_and_illumination.png"} <= set(rec["figures"])
    assert "synthetic layered-and-faulted" in rec["data_source"]


@pytest.mark.slow  # the claim is covered by the unit tests; `make test-all` runs it
def test_fwi_marmousi_reduces_model_error_and_reads_model_files(tmp_path, run_quick):
    # the model comes from a file, as a full-size run on Marmousi would
    v = layered_faulted_model((28, 70), 25.0, water_depth=150.0)
    write_npy(tmp_path / "model.npy", v)
    rec = run_quick(
        "fwi_marmousi",
        tmp_path,
        model_path=tmp_path / "model.npy",
        dx=25.0,
        iterations="2,2",
        shots=2,
    )
    h = rec["headline"]
    assert h["model_error_final"] < 0.9 * h["model_error_initial"], h
    for band in rec["metrics"]["bands"]:
        assert band["misfit_end"] < band["misfit_start"], band
    assert rec["metrics"]["model_shape"] == [28, 70] and rec["metrics"]["water_rows"] == 6
    assert "model.npy" in rec["data_source"]
    assert {"fwi_models.png", "fwi_profile.png"} <= set(rec["figures"])
    ckpts = list((tmp_path / "fwi_marmousi" / "checkpoints").glob("fwi-*/fwi.ckpt"))
    assert len(ckpts) == 1  # the run checkpointed (resuming is tested in tests/wave)
