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
- DNA (:mod:`~diffprog.data.sequences`): :func:`load_splice` (UCI splice junctions),
  :func:`make_splice_synthetic`, :func:`one_hot_dna` (IUPAC ambiguity codes), FASTA and
  labelled-sequence files.
- Text (:mod:`~diffprog.data.text`): :func:`tokenize`, :class:`Vocabulary`, :func:`load_imdb`,
  :func:`load_sentence_polarity`, :func:`load_movie_review_snippets` (built-in default).
- Trees (:mod:`~diffprog.data.trees`): :func:`parse_tree` / :func:`load_trees` (bracketed
  Penn-Treebank style), :func:`random_expression` (arithmetic expression trees).
"""

from .dataset import Dataset
from .idx import IDXFormatError, read_idx, write_idx
from .images import load_digits, load_mnist
from .natural import SAMPLE_IMAGES, load_image, load_sample_image
from .sequences import (
    IUPAC_CODES,
    NUCLEOTIDES,
    SPLICE_CLASSES,
    SequenceFormatError,
    find_keel_splice,
    load_sequence_dataset,
    load_splice,
    make_splice_synthetic,
    one_hot_dna,
    read_fasta,
    read_labelled_sequences,
)
from .splits import train_test_split
from .tabular import (
    HOUSE_PRICE_FEATURES,
    house_price_formula,
    load_diabetes,
    make_house_prices,
    standardize,
)
from .text import (
    OOVError,
    Vocabulary,
    find_vader_data,
    load_imdb,
    load_movie_review_snippets,
    load_sentence_polarity,
    make_synthetic_reviews,
    tokenize,
)
from .toy import xor
from .trees import (
    EXPRESSION_OPS,
    Tree,
    TreeFormatError,
    evaluate_expression,
    infix_tokens,
    load_trees,
    parse_tree,
    parse_trees,
    random_expression,
)

__all__ = [
    "EXPRESSION_OPS",
    "HOUSE_PRICE_FEATURES",
    "IUPAC_CODES",
    "NUCLEOTIDES",
    "SAMPLE_IMAGES",
    "SPLICE_CLASSES",
    "Dataset",
    "IDXFormatError",
    "OOVError",
    "SequenceFormatError",
    "Tree",
    "TreeFormatError",
    "Vocabulary",
    "evaluate_expression",
    "find_keel_splice",
    "find_vader_data",
    "house_price_formula",
    "infix_tokens",
    "load_diabetes",
    "load_digits",
    "load_image",
    "load_imdb",
    "load_mnist",
    "load_movie_review_snippets",
    "load_sample_image",
    "load_sentence_polarity",
    "load_sequence_dataset",
    "load_splice",
    "load_trees",
    "make_house_prices",
    "make_splice_synthetic",
    "make_synthetic_reviews",
    "one_hot_dna",
    "parse_tree",
    "parse_trees",
    "random_expression",
    "read_fasta",
    "read_idx",
    "read_labelled_sequences",
    "standardize",
    "tokenize",
    "train_test_split",
    "write_idx",
    "xor",
]
