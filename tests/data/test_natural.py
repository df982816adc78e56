import numpy as np
import pytest

from diffprog.data import SAMPLE_IMAGES, load_image, load_sample_image


@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_sample_images_in_unit_range(name):
    img = load_sample_image(name, size=32, gray=True)
    assert img.shape == (32, 32) and img.dtype == np.float32
    assert 0.0 <= img.min() < img.max() <= 1.0


def test_colour_kept_and_unknown_name():
    assert load_sample_image("chelsea", size=(16, 16)).shape == (16, 16, 3)
    with pytest.raises(ValueError, match="unknown sample image"):
        load_sample_image("nope")
    assert "camera" in SAMPLE_IMAGES


def test_load_image_png_and_npy(tmp_path):
    from skimage import io

    img = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).astype(np.uint8)
    io.imsave(tmp_path / "a.png", img, check_contrast=False)
    np.save(tmp_path / "b.npy", img.astype(np.float64) / 255)
    a = load_image(tmp_path / "a.png", dtype=np.float64)
    b = load_image(tmp_path / "b.npy", dtype=np.float64)
    np.testing.assert_allclose(a, img / 255.0)
    np.testing.assert_allclose(b, img / 255.0)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")
