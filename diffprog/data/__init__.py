"""Loaders for standard data formats and built-in default data sets.

Everything here is host-side NumPy: loaders return a :class:`Dataset` of NumPy arrays
with a ``source`` string saying where the data came from; the training loop moves
arrays to the device and draws minibatches itself.

- Images (NHWC, scaled to [0, 1], int32 labels): :func:`load_digits` (ships with
  scikit-learn), :func:`load_mnist` (MNIST-layout IDX files in a directory).
- The IDX format: :func:`read_idx`, :func:`write_idx`, :class:`IDXFormatError`.
- Tabular regression: :func:`load_diabetes`, :func:`make_house_prices`
  (with :func:`house_price_formula`), :func:`standardize`.
- Splits: :func:`train_test_split` (deterministic for an integer seed, optionally
  stratified).
- Natural images: :func:`load_sample_image` (scikit-image's bundled samples),
  :func:`load_image` (any image file by path).
- Toy problems: :func:`xor`.
"""

from .dataset import Dataset
from .idx import IDXFormatError, read_idx, write_idx
from .images import load_digits, load_mnist
from .natural import SAMPLE_IMAGES, load_image, load_sample_image
from .splits import train_test_split
from .tabular import (
    HOUSE_PRICE_FEATURES,
    house_price_formula,
    load_diabetes,
    make_house_prices,
    standardize,
)
from .toy import xor

__all__ = [
    "HOUSE_PRICE_FEATURES",
    "SAMPLE_IMAGES",
    "Dataset",
    "IDXFormatError",
    "house_price_formula",
    "load_diabetes",
    "load_digits",
    "load_image",
    "load_mnist",
    "load_sample_image",
    "make_house_prices",
    "read_idx",
    "standardize",
    "train_test_split",
    "write_idx",
    "xor",
]
