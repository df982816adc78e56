"""diffprog.wave.models: the synthetic default model, smoothing, decimation, loading by path."""

import numpy as np
import pytest

from diffprog.wave.io import WaveIOError, write_model_segy, write_npy, write_raw
from diffprog.wave.models import decimate_model, layered_faulted_model, load_model, smooth_model


def test_layered_faulted_model_structure():
    v = layered_faulted_model((80, 200), 20.0, water_depth=200.0, n_layers=6, seed=3)
    assert v.shape == (80, 200) and v.dtype == np.float32
    np.testing.assert_array_equal(v[:10], 1500.0)  # water layer: 200 m = 10 cells
    assert v[10:].min() >= 1800 * 0.94
    # velocity increases with depth on average, and there are n_layers + 1 distinct values
    assert v[-1].mean() > v[40].mean() > v[12].mean()
    assert np.unique(v).size == 7
    # the fault: some row changes layer along x in the hanging wall (lateral jump)
    jumps = np.abs(np.diff(v[:, 120:], axis=1)).max()
    assert jumps > 100
    # deterministic in the seed, different across seeds, dtype follows the argument
    np.testing.assert_array_equal(v, layered_faulted_model((80, 200), 20.0, n_layers=6, seed=3))
    assert not np.array_equal(v, layered_faulted_model((80, 200), 20.0, n_layers=6, seed=4))
    assert layered_faulted_model((10, 10), 5.0, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="fault_dip"):
        layered_faulted_model(fault_dip=0)


def test_smooth_model_keeps_water_and_smooths():
    v = layered_faulted_model((60, 120), 20.0, water_depth=200.0)
    s = smooth_model(v, 5.0, keep_top=10)
    assert s.dtype == v.dtype and s.shape == v.shape
    np.testing.assert_array_equal(s[:10], v[:10])
    # smoother: the largest jump between neighbours falls a lot; a constant stays exact
    jump = lambda a: np.abs(np.diff(a[10:], axis=0)).max()
    assert jump(s) < 0.3 * jump(v)
    const = np.full((20, 30), 2500.0)
    np.testing.assert_allclose(smooth_model(const, 3.0), const, rtol=1e-12)
    np.testing.assert_array_equal(smooth_model(v, 0.0), v)
    with pytest.raises(ValueError, match="positive everywhere"):
        smooth_model(-v, 2.0)


def test_decimate_model():
    v = np.arange(401 * 160, dtype=np.float32).reshape(401, 160)
    d = decimate_model(v, 2)
    assert d.shape == (201, 80)
    np.testing.assert_array_equal(d, v[::2, ::2])
    with pytest.raises(ValueError, match="positive integer"):
        decimate_model(v, 1.5)


def test_load_model_every_format(tmp_path):
    v = layered_faulted_model((30, 50), 10.0)
    write_npy(tmp_path / "v.npy", v)
    write_model_segy(tmp_path / "v.sgy", v, dx=10.0)
    write_raw(tmp_path / "v_km.bin", v.T / 1000.0, dtype="<f4")  # x-major, km/s
    np.testing.assert_array_equal(load_model(tmp_path / "v.npy"), v)
    np.testing.assert_array_equal(load_model(tmp_path / "v.sgy", shape=(30, 50)), v)
    loaded = load_model(tmp_path / "v_km.bin", shape=(30, 50), order="F", units="km/s")
    np.testing.assert_allclose(loaded, v, rtol=1e-6)


def test_load_model_clear_errors(tmp_path):
    v = layered_faulted_model((30, 50), 10.0)
    write_raw(tmp_path / "v.bin", v)
    with pytest.raises(WaveIOError, match=r"needs shape=\(nz, nx\)"):
        load_model(tmp_path / "v.bin")
    with pytest.raises(WaveIOError, match="needs 7200 bytes"):
        load_model(tmp_path / "v.bin", shape=(30, 60))
    write_npy(tmp_path / "km.npy", v / 1000.0)
    with pytest.raises(ValueError, match="look like km/s; pass units='km/s'"):
        load_model(tmp_path / "km.npy")
    write_npy(tmp_path / "neg.npy", -v)
    with pytest.raises(ValueError, match="finite and positive"):
        load_model(tmp_path / "neg.npy")
    write_npy(tmp_path / "cube.npy", np.ones((2, 3, 4)))
    with pytest.raises(WaveIOError, match="must be 2-D"):
        load_model(tmp_path / "cube.npy")
    with pytest.raises(ValueError, match="units"):
        load_model(tmp_path / "v.npy", units="mph")
