"""diffprog.wave.io: raw binary, .npy and SEG-Y round trips on small files, clear errors."""

import numpy as np
import pytest

from diffprog.wave.io import (
    WaveIOError,
    read_gathers_segy,
    read_model_segy,
    read_npy,
    read_raw,
    write_gathers_segy,
    write_model_segy,
    write_npy,
    write_raw,
)


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    return (1500 + 3000 * rng.random((7, 11))).astype(np.float32)


@pytest.mark.parametrize("endian", ["little", "big"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_raw_round_trip(tmp_path, model, endian, order):
    path = write_raw(tmp_path / "v.bin", model, endian=endian, order=order)
    assert path.stat().st_size == model.size * 4
    back = read_raw(path, model.shape, endian=endian, order=order)
    np.testing.assert_array_equal(back, model)
    assert back.dtype == np.float32 and back.dtype.isnative


def test_raw_layout_matches_numpy_conventions(tmp_path, model):
    # x-major little-endian float32, as the Marmousi-2 file is stored
    model.T.astype("<f4").tofile(tmp_path / "xmajor.bin")
    expected = np.fromfile(tmp_path / "xmajor.bin", "<f4").reshape(11, 7).T
    np.testing.assert_array_equal(read_raw(tmp_path / "xmajor.bin", (7, 11), order="F"), expected)
    model.astype(">f4").tofile(tmp_path / "big.bin")
    np.testing.assert_array_equal(read_raw(tmp_path / "big.bin", (7, 11), endian="big"), model)
    # reading big-endian data as little-endian gives different numbers: endianness matters
    assert not np.allclose(read_raw(tmp_path / "big.bin", (7, 11)), model)


def test_raw_wrong_size_is_a_clear_error(tmp_path, model):
    write_raw(tmp_path / "v.bin", model)
    with pytest.raises(WaveIOError, match=r"308 bytes \(77 values.*shape \(7, 12\)"):
        read_raw(tmp_path / "v.bin", (7, 12))
    with pytest.raises(ValueError, match="order"):
        read_raw(tmp_path / "v.bin", (7, 11), order="X")
    with pytest.raises(FileNotFoundError, match="no file"):
        read_raw(tmp_path / "missing.bin", (7, 11))


def test_npy_round_trip_and_shape_check(tmp_path, model):
    write_npy(tmp_path / "v.npy", model)
    np.testing.assert_array_equal(read_npy(tmp_path / "v.npy", shape=(7, 11)), model)
    with pytest.raises(WaveIOError, match=r"shape \(7, 11\), expected \(11, 7\)"):
        read_npy(tmp_path / "v.npy", shape=(11, 7))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(WaveIOError, match="not a NumPy"):
        read_npy(tmp_path / "junk.npy")


def test_segy_model_round_trip(tmp_path, model):
    write_model_segy(tmp_path / "v.sgy", model, dx=12.5)
    v, dx = read_model_segy(tmp_path / "v.sgy")
    np.testing.assert_array_equal(v, model)
    assert dx == 12.5
    import segyio

    with segyio.open(tmp_path / "v.sgy", ignore_geometry=True) as f:  # one trace per column
        assert f.tracecount == 11
        np.testing.assert_array_equal(f.trace[3], model[:, 3])


def test_segy_gathers_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((3, 5, 40)).astype(np.float32)
    src = np.array([[[2.0, 4.0]], [[2.0, 10.0]], [[2.0, 16.5]]])
    rec = np.stack([np.stack([np.full(5, 1.0), np.arange(5) * 3.0 + s], -1) for s in range(3)])
    write_gathers_segy(tmp_path / "g.segy", data, 0.002, src, rec, dx=10.0)
    g = read_gathers_segy(tmp_path / "g.segy", dx=10.0)
    np.testing.assert_array_equal(g.data, data)
    assert g.dt == pytest.approx(0.002)
    np.testing.assert_allclose(g.source_locations, src)
    np.testing.assert_allclose(g.receiver_locations, rec)


def test_segy_errors(tmp_path, model):
    data = np.zeros((2, 3, 10), np.float32)
    src = np.zeros((2, 1, 2))
    with pytest.raises(WaveIOError, match=r"receiver_locations must be \[shot, receiver, 2\]"):
        write_gathers_segy(tmp_path / "g.sgy", data, 0.001, src, np.zeros((2, 4, 2)), dx=1.0)
    with pytest.raises(WaveIOError, match="16-bit sample-interval"):
        write_gathers_segy(tmp_path / "g.sgy", data, 0.1, src, np.zeros((2, 3, 2)), dx=1.0)
    with pytest.raises(WaveIOError, match=r"must be \(nz, nx\)"):
        write_model_segy(tmp_path / "v.sgy", model[0], dx=1.0)
    (tmp_path / "bad.sgy").write_bytes(b"\0" * 100)
    with pytest.raises(WaveIOError, match="not a readable SEG-Y"):
        read_model_segy(tmp_path / "bad.sgy")
    assert not list(tmp_path.glob("*.tmp"))  # failed writes leave nothing behind
