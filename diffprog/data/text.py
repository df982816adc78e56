"""Text for sentiment classification: tokenizer, vocabulary, and loaders for review data sets.

- :func:`tokenize`: lower-cased words (keeping inner apostrophes: ``don't``), numbers and
  the punctuation ``! ?``; HTML line breaks (``<br />`` in IMDB reviews) are removed.
- :class:`Vocabulary`: token ↔ id with reserved ids ``0 = <pad>`` and ``1 = <unk>``;
  :meth:`Vocabulary.encode_batch` returns padded ids and a mask. Out-of-vocabulary tokens
  map to ``<unk>`` or, with ``oov="error"``, raise :class:`OOVError` naming the token and
  its position.
- Loaders, each returning a :class:`Dataset` with ``x`` an object array of texts and ``y``
  int32 labels (0 negative, 1 positive):

  * :func:`load_imdb`: the Large Movie Review Dataset layout
    ``aclImdb/{train,test}/{pos,neg}/*.txt`` (Maas et al. 2011).
  * :func:`load_sentence_polarity`: the sentence-polarity files ``*.pos`` / ``*.neg``,
    one sentence per line (``rt-polarity.pos``; Pang & Lee 2005).
  * :func:`make_synthetic_reviews`: generated reviews with negation (an offline stand-in).
  * :func:`load_movie_review_snippets`: the built-in default. The vaderSentiment source
    distribution (``pip download --no-deps --no-binary :all: vaderSentiment==3.3.2``)
    contains ``movieReviewSnippets_GroundTruth.txt``: 10 605 sentences from Pang & Lee's
    movie reviews, each with the mean of human valence ratings on [−4, 4] (Hutto &
    Gilbert 2014). A sentence is positive when its mean rating is > 0, negative when < 0.

References:
  A. L. Maas et al., "Learning word vectors for sentiment analysis", ACL 2011.
  B. Pang, L. Lee, "Seeing stars: exploiting class relationships for sentiment
  categorization with respect to rating scales", ACL 2005.
  C. J. Hutto, E. Gilbert, "VADER: a parsimonious rule-based model for sentiment analysis
  of social media text", ICWSM 2014.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import re
import sys
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .dataset import Dataset

__all__ = [
    "PAD",
    "UNK",
    "OOVError",
    "Vocabulary",
    "find_vader_data",
    "load_imdb",
    "load_movie_review_snippets",
    "load_sentence_polarity",
    "make_synthetic_reviews",
    "tokenize",
]

PAD, UNK = "<pad>", "<unk>"

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[!?]")


def tokenize(text: str, *, lowercase: bool = True) -> list[str]:
    """Split text into word tokens.

    Words are runs of letters and digits with inner apostrophes kept (``don't``,
    ``film's``); ``!`` and ``?`` are tokens of their own; other punctuation is dropped;
    HTML ``<br />`` becomes a space. Non-ASCII letters are folded to ASCII where they have
    an ASCII base letter (``café`` → ``cafe``).

    Examples:
      >>> tokenize("A great film!<br /><br />Don't miss it, it's 10/10.")
      ['a', 'great', 'film', '!', "don't", 'miss', 'it', "it's", '10', '10']
    """
    import unicodedata

    text = _BR.sub(" ", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = text.replace("''", '"').replace("`", "'")
    if lowercase:
        return _WORD.findall(text.lower())
    return re.findall(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*|[!?]", text)


class OOVError(KeyError):
    """A token is not in the vocabulary and out-of-vocabulary mapping is disabled."""

    def __str__(self) -> str:  # KeyError would show the message with quotes
        return str(self.args[0])


@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
    """An immutable token ↔ id table; id 0 is ``<pad>`` and id 1 is ``<unk>``.

    Build one from tokenized training texts with :meth:`build` (never from test texts: the
    test set's unseen words are exactly what ``<unk>`` is for).

    Attributes:
      tokens: the tokens in id order, starting with ``<pad>``, ``<unk>``.

    Examples:
      >>> vocab = Vocabulary.build([["good", "movie"], ["bad", "movie"]])
      >>> len(vocab), vocab["movie"], vocab["unseen"]
      (5, 2, 1)
      >>> ids, mask = vocab.encode_batch([["good", "movie"], ["bad"]], max_len=3)
      >>> ids.tolist(), mask.tolist()
      ([[4, 2, 0], [3, 0, 0]], [[True, True, False], [True, False, False]])
      >>> vocab.encode(["good", "plot"], oov="error")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      diffprog.data.text.OOVError: token 'plot' at position 1 is not in the vocabulary ...
    """

    tokens: tuple[str, ...]

    def __post_init__(self):
        toks = tuple(self.tokens)
        if toks[:2] != (PAD, UNK):
            raise ValueError(
                f"Vocabulary.tokens must start with {PAD!r}, {UNK!r}; got {toks[:2]}; build "
                "vocabularies with Vocabulary.build"
            )
        if len(set(toks)) != len(toks):
            dup = next(t for t, c in collections.Counter(toks).items() if c > 1)
            raise ValueError(f"Vocabulary.tokens lists {dup!r} twice")
        object.__setattr__(self, "tokens", toks)
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(toks)})

    @classmethod
    def build(
        cls,
        texts: Iterable[Sequence[str]],
        *,
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Vocabulary of the tokens occurring at least ``min_count`` times.

        Tokens are ordered by decreasing count, ties alphabetically (deterministic);
        ``max_size`` caps the total size including ``<pad>`` and ``<unk>``.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < 2:
            raise ValueError(f"max_size must be >= 2 (room for {PAD} and {UNK}), got {max_size}")
        counts: collections.Counter[str] = collections.Counter()
        for toks in texts:
            if isinstance(toks, str):
                raise TypeError(
                    "Vocabulary.build takes tokenized texts (lists of tokens), got a string; "
                    "apply tokenize() to each text first"
                )
            counts.update(toks)
        counts.pop(PAD, None)
        counts.pop(UNK, None)
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            ranked = ranked[: max_size - 2]
        return cls((PAD, UNK, *ranked))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def __getitem__(self, token: str) -> int:
        """Id of ``token``; ``<unk>``'s id (1) for a token not in the vocabulary."""
        return self._index.get(token, 1)

    def index(self, token: str) -> int:
        """Id of ``token``, raising :class:`OOVError` when it is not in the vocabulary."""
        return self.encode([token], oov="error")[0]

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def encode(self, tokens: Sequence[str], *, oov: str = "unk") -> list[int]:
        """Ids of ``tokens``; unknown ones map to ``<unk>`` (``oov="unk"``) or raise."""
        if oov not in ("unk", "error"):
            raise ValueError(f"oov must be 'unk' or 'error', got {oov!r}")
        out = []
        for pos, tok in enumerate(tokens):
            i = self._index.get(tok)
            if i is None:
                if oov == "error":
                    raise OOVError(
                        f"token {tok!r} at position {pos} is not in the vocabulary "
                        f"({len(self)} tokens); use oov='unk' to map unknown tokens to "
                        f"{UNK!r} (id 1)"
                    )
                i = 1
            out.append(i)
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``, stopping at nothing (padding decodes to ``<pad>``)."""
        return [self.tokens[int(i)] for i in ids]

    def encode_batch(
        self,
        texts: Sequence[Sequence[str]],
        *,
        max_len: int | None = None,
        oov: str = "unk",
        truncate: str = "end",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Padded id matrix and mask for tokenized texts.

        Args:
          texts: tokenized texts.
          max_len: columns of the result; default the longest text. Longer texts are cut.
          oov: ``"unk"`` or ``"error"`` (see :meth:`encode`).
          truncate: ``"end"`` keeps the first ``max_len`` tokens, ``"start"`` the last.

        Returns:
          ``(ids, mask)``: int32 (n, max_len) padded with ``<pad>`` (0) on the right, and
          bool (n, max_len), True at real tokens.
        """
        if truncate not in ("end", "start"):
            raise ValueError(f"truncate must be 'end' or 'start', got {truncate!r}")
        if max_len is None:
            max_len = max((len(t) for t in texts), default=0)
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        ids = np.zeros((len(texts), max_len), np.int32)
        mask = np.zeros((len(texts), max_len), bool)
        for row, toks in enumerate(texts):
            if isinstance(toks, str):
                raise TypeError(
                    "encode_batch takes tokenized texts (lists of tokens), got a string; "
                    "apply tokenize() first"
                )
            try:
                enc = self.encode(toks, oov=oov)
            except OOVError as err:
                raise OOVError(f"text {row}: {err}") from None
            enc = enc[:max_len] if truncate == "end" else enc[-max_len:]
            ids[row, : len(enc)] = enc
            mask[row, : len(enc)] = True
        return ids, mask


def _texts_dataset(texts, labels, name, source) -> Dataset:
    x = np.empty(len(texts), dtype=object)
    x[:] = texts
    return Dataset(x=x, y=np.asarray(labels, np.int32), name=name, source=source)


# ----------------------------------------------------------------------------- loaders


def load_imdb(
    root: os.PathLike | str, *, split: str = "train", max_per_class: int | None = None
) -> Dataset:
    """Reviews from the IMDB Large Movie Review Dataset layout.

    Args:
      root: the ``aclImdb`` folder, holding ``train/pos``, ``train/neg``, ``test/pos``,
        ``test/neg`` with one review per ``*.txt`` file (``unsup`` is ignored).
      split: ``"train"`` or ``"test"``.
      max_per_class: read at most this many files per class (sorted by file name).

    Returns:
      Dataset ``imdb-<split>``: ``x`` object array of review texts, ``y`` 0 (neg) / 1 (pos),
      negatives first.

    Raises:
      FileNotFoundError: ``root/split/pos`` or ``root/split/neg`` is missing (the message
        shows the expected layout).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    texts, labels = [], []
    for label, sub in ((0, "neg"), (1, "pos")):
        folder = Path(root) / split / sub
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} not found: load_imdb expects the aclImdb layout "
                "<root>/{train,test}/{pos,neg}/*.txt; pass the aclImdb folder as root"
            )
        files = sorted(folder.glob("*.txt"))[:max_per_class]
        if not files:
            raise FileNotFoundError(f"{folder} holds no *.txt reviews")
        for f in files:
            texts.append(f.read_text(encoding="utf-8", errors="replace"))
            labels.append(label)
    return _texts_dataset(
        texts, labels, f"imdb-{split}", f"IMDB Large Movie Review Dataset ({split}) from aclImdb"
    )


def load_sentence_polarity(path: os.PathLike | str, *, encoding: str = "latin-1") -> Dataset:
    """Sentences from a sentence-polarity pair of files (one sentence per line).

    Args:
      path: a folder holding exactly one ``*.pos`` and one ``*.neg`` file (e.g.
        ``rt-polaritydata/``), or the path of either file (its sibling with the other
        suffix is read too).
      encoding: the released ``rt-polarity`` files are Latin-1.

    Returns:
      Dataset ``sentence-polarity``: ``x`` object array of sentences, ``y`` 0 (neg) / 1 (pos),
      negatives first; blank lines are skipped.
    """
    p = Path(path)
    if p.is_dir():
        pos, neg = sorted(p.glob("*.pos")), sorted(p.glob("*.neg"))
        if len(pos) != 1 or len(neg) != 1:
            raise FileNotFoundError(
                f"{p}: expected exactly one *.pos and one *.neg file, found {len(pos)} and "
                f"{len(neg)}; pass one of the files instead"
            )
        pos, neg = pos[0], neg[0]
    elif p.suffix in (".pos", ".neg"):
        pos, neg = p.with_suffix(".pos"), p.with_suffix(".neg")
    else:
        raise ValueError(f"{p}: give a folder or a file ending in .pos or .neg")
    texts, labels = [], []
    for label, f in ((0, neg), (1, pos)):
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found (sentence polarity needs both .pos and .neg)")
        with open(f, encoding=encoding) as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
        texts += lines
        labels += [label] * len(lines)
    return _texts_dataset(
        texts, labels, "sentence-polarity", f"sentence polarity files {pos.name}, {neg.name}"
    )


_VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
_VADER_INNER = "hutto_ICWSM_2014.tar.gz"
_VADER_FILE = "movieReviewSnippets_GroundTruth.txt"


def _data_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("DIFFPROG_DATA"):
        dirs.append(Path(os.environ["DIFFPROG_DATA"]))
    dirs.append(Path(sys.prefix) / "share" / "diffprog")
    dirs.append(Path.home() / ".cache" / "diffprog")
    return dirs


def find_vader_data() -> Path | None:
    """Where the VADER movie-review snippets are: the first match in the data folders.

    Looks for ``vaderSentiment-3.3.2.tar.gz``, ``hutto_ICWSM_2014.tar.gz`` or
    ``movieReviewSnippets_GroundTruth.txt`` in ``$DIFFPROG_DATA``, then
    ``<sys.prefix>/share/diffprog`` (where ``make`` puts the source distribution, inside
    the virtual environment), then ``~/.cache/diffprog``. Returns ``None`` when absent.
    """
    for d in _data_dirs():
        for name in (_VADER_FILE, _VADER_INNER, _VADER_SDIST):
            if (d / name).is_file():
                return d / name
    return None


def _read_vader_bytes(path: Path) -> bytes:
    name = path.name
    if name.endswith(".txt"):
        return path.read_bytes()
    with tarfile.open(path, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        if _VADER_FILE in members:
            return tar.extractfile(members[_VADER_FILE]).read()
        if _VADER_INNER in members:
            inner = tar.extractfile(members[_VADER_INNER]).read()
            with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as tar2:
                for m in tar2.getmembers():
                    if Path(m.name).name == _VADER_FILE:
                        return tar2.extractfile(m).read()
    raise FileNotFoundError(f"{path}: holds no {_VADER_FILE}")


def load_movie_review_snippets(
    path: os.PathLike | str | None = None, *, neutral_band: float = 0.0
) -> Dataset:
    """The built-in default: 10 605 movie-review sentences with human valence ratings.

    Each line of ``movieReviewSnippets_GroundTruth.txt`` is ``id<TAB>mean rating<TAB>text``.
    The label is 1 when the mean rating is > ``neutral_band``, 0 when < −``neutral_band``;
    sentences in between (37 rated exactly 0 at the default band) are dropped.

    Args:
      path: the vaderSentiment 3.3.2 source distribution, the inner
        ``hutto_ICWSM_2014.tar.gz``, or the extracted text file; default
        :func:`find_vader_data`.
      neutral_band: ratings within this distance of zero are dropped.

    Returns:
      Dataset ``movie-review-snippets`` (``x`` texts, ``y`` 0/1), in file order.

    Raises:
      FileNotFoundError: nothing found; the message gives the ``pip download`` command.
      ValueError: a malformed line (with its number).
    """
    if path is None:
        path = find_vader_data()
        if path is None:
            where = ", ".join(str(d) for d in _data_dirs())
            raise FileNotFoundError(
                "the movie-review snippets were not found (looked in: "
                f"{where}). Fetch the vaderSentiment source distribution that contains them: "
                "`python -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 "
                "-d \"$(python -c 'import sys; print(sys.prefix)')/share/diffprog\"`, or set "
                "DIFFPROG_DATA to a folder holding it"
            )
    path = Path(path)
    raw = _read_vader_bytes(path).decode("utf-8", errors="replace")
    texts, labels = [], []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            rating = float(parts[1])
            text = parts[2].strip()
        except (IndexError, ValueError):
            raise ValueError(
                f"{path.name}:{lineno}: expected 'id<TAB>rating<TAB>sentence', got {line[:60]!r}"
            ) from None
        if rating > neutral_band:
            labels.append(1)
        elif rating < -neutral_band:
            labels.append(0)
        else:
            continue
        texts.append(text)
    return _texts_dataset(
        texts,
        labels,
        "movie-review-snippets",
        "movie-review sentences (Pang & Lee 2005) with mean human valence ratings, from the "
        "vaderSentiment 3.3.2 source distribution (Hutto & Gilbert 2014, "
        f"{_VADER_FILE}); label = rating > 0",
    )


_POSITIVE = ("good", "great", "fun", "moving", "clever", "charming", "superb", "funny", "smart")
_NEGATIVE = ("bad", "dull", "boring", "awful", "tedious", "flat", "weak", "clumsy", "stale")
_NOUNS = ("film", "movie", "plot", "cast", "script", "story", "ending", "score", "direction")
_FILLER = ("the", "this", "a", "really", "quite", "and", "but", "is", "was", "overall", "its")


def make_synthetic_reviews(n: int = 4000, *, seed: int = 0, negation: float = 0.3) -> Dataset:
    """Generated short reviews whose label needs word order: ``not`` flips the next adjective.

    Each review has two to four clauses ``[filler] NOUN is [not] ADJECTIVE``; an adjective
    counts +1 (positive list) or −1 (negative list), negated with probability
    ``negation``; the label is 1 when the sum is positive (ties are redrawn). A bag of
    words sees ``not`` but not what it negates, so an order-aware model can beat it.

    Returns:
      Dataset ``synthetic-reviews``: ``x`` texts (object array), ``y`` 0/1.

    Examples:
      >>> ds = make_synthetic_reviews(3, seed=1)
      >>> len(ds), sorted(set(ds.y.tolist())) <= [0, 1]
      (3, True)
    """
    if n < 1 or not 0 <= negation <= 1:
        raise ValueError(f"need n >= 1 and 0 <= negation <= 1, got n={n}, negation={negation}")
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    while len(texts) < n:
        words, score = [], 0
        for _ in range(int(rng.integers(2, 5))):
            positive = rng.random() < 0.5
            negated = rng.random() < negation
            adjective = rng.choice(_POSITIVE if positive else _NEGATIVE)
            words += [str(rng.choice(_FILLER)), str(rng.choice(_NOUNS)), "is"]
            words += (["not"] if negated else []) + [str(adjective)]
            score += (1 if positive else -1) * (-1 if negated else 1)
        if score == 0:
            continue
        texts.append(" ".join(words))
        labels.append(int(score > 0))
    return _texts_dataset(
        texts, labels, "synthetic-reviews", f"generated reviews with negation (n={n}, seed={seed})"
    )
