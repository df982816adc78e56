"""Natural images: scikit-image's bundled samples (no download) and image files by path.

Images come back as float NumPy arrays in [0, 1], ``(H, W)`` for grey and ``(H, W, 3)``
for colour, centre-cropped to a square and resized when ``size`` is given.
"""

from __future__ import annotations

import os

import numpy as np

from .dataset import check_float_dtype

__all__ = ["SAMPLE_IMAGES", "load_image", "load_sample_image"]

#: scikit-image sample images that ship inside its wheel (name: description).
SAMPLE_IMAGES = {
    "camera": "cameraman, grey, 512×512",
    "astronaut": "astronaut Eileen Collins, colour, 512×512",
    "coffee": "a cup of coffee, colour, 400×600",
    "chelsea": "Chelsea the cat, colour, 300×451",
    "moon": "surface of the moon, grey, 512×512",
    "coins": "Greek coins, grey, 303×384",
    "brick": "brick wall texture, grey, 512×512",
    "grass": "grass texture, grey, 512×512",
    "gravel": "gravel texture, grey, 512×512",
    "rocket": "rocket launch, colour, 427×640",
}


def _finish(img: np.ndarray, size, gray: bool, dtype) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.float64)
    elif np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float64) / float(np.iinfo(img.dtype).max)
    else:
        img = img.astype(np.float64)
    if img.ndim == 3 and img.shape[-1] == 4:  # drop alpha
        img = img[..., :3]
    if img.ndim not in (2, 3):
        raise ValueError(f"expected a 2-D grey or (H, W, 3) colour image, got shape {img.shape}")
    if gray and img.ndim == 3:
        img = img @ np.array([0.2125, 0.7154, 0.0721])  # ITU-R BT.709 luma, as skimage
    if size is not None:
        from skimage.transform import resize

        h, w = img.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = img[top : top + s, left : left + s]
        shape = (size, size) if isinstance(size, int) else tuple(size)
        img = resize(img, shape + img.shape[2:], anti_aliasing=True, order=1)
    return np.clip(img, 0.0, 1.0).astype(dtype)


def load_sample_image(name: str = "camera", *, size=None, gray: bool = False, dtype=np.float32):
    """One of scikit-image's bundled sample images, as floats in [0, 1].

    Args:
        name: a key of :data:`SAMPLE_IMAGES` (e.g. ``"camera"``, ``"astronaut"``).
        size: ``None`` keeps the original; an int ``s`` (or ``(h, w)``) centre-crops to a
            square and resizes with anti-aliasing.
        gray: convert colour images to grey (BT.709 luma).
        dtype: floating dtype of the result.

    Returns:
        ``(H, W)`` or ``(H, W, 3)`` array in [0, 1].

    Examples:
        >>> load_sample_image("camera", size=64).shape
        (64, 64)
    """
    dt = check_float_dtype(dtype, where="load_sample_image")
    if name not in SAMPLE_IMAGES:
        raise ValueError(
            f"unknown sample image {name!r}; choose one of {sorted(SAMPLE_IMAGES)} "
            "or load a file with load_image(path)"
        )
    from skimage import data

    return _finish(getattr(data, name)(), size, gray, dt)


def load_image(path, *, size=None, gray: bool = False, dtype=np.float32):
    """An image file (PNG, JPEG, TIFF, … anything ``skimage.io.imread`` reads), or a ``.npy``.

    Same conventions as :func:`load_sample_image`.
    """
    dt = check_float_dtype(dtype, where="load_image")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"image file not found: {path}")
    if path.endswith(".npy"):
        img = np.load(path)
    else:
        from skimage import io

        img = io.imread(path)
    return _finish(img, size, gray, dt)
