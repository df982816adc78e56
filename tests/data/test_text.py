"""Tokenizer, vocabulary with OOV and padding, IMDB / sentence-polarity / VADER loaders."""

import io
import tarfile

import numpy as np
import pytest

from diffprog.data import (
    OOVError,
    Vocabulary,
    find_vader_data,
    load_imdb,
    load_movie_review_snippets,
    load_sentence_polarity,
    make_synthetic_reviews,
    tokenize,
)


def test_tokenize():
    assert tokenize("It's GREAT!<br /><br />Not bad... isn't it? 10/10") == [
        "it's",
        "great",
        "!",
        "not",
        "bad",
        "isn't",
        "it",
        "?",
        "10",
        "10",
    ]
    assert tokenize("Café ''Conan''") == ["cafe", "conan"]
    assert tokenize("Hello World", lowercase=False) == ["Hello", "World"]


def test_vocabulary_build_encode_pad_mask_and_oov():
    texts = [["good", "movie"], ["bad", "movie"], ["good", "plot", "rare"]]
    vocab = Vocabulary.build(texts, min_count=2)
    assert vocab.tokens == ("<pad>", "<unk>", "good", "movie")
    assert vocab["rare"] == vocab.unk_id == 1 and "rare" not in vocab
    ids, mask = vocab.encode_batch(texts, max_len=4)
    assert ids.dtype == np.int32 and ids.shape == (3, 4)
    assert ids.tolist() == [[2, 3, 0, 0], [1, 3, 0, 0], [2, 1, 1, 0]]
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]
    assert np.all(ids[~mask] == vocab.pad_id)
    # truncation keeps the start or the end
    short, m = vocab.encode_batch(texts, max_len=2, truncate="start")
    assert short[2].tolist() == [1, 1] and m.all()
    assert vocab.decode([2, 3, 0]) == ["good", "movie", "<pad>"]
    # ties are broken alphabetically, and max_size counts the specials
    assert Vocabulary.build([["b", "a"]], max_size=3).tokens == ("<pad>", "<unk>", "a")


def test_vocabulary_oov_error_names_token_and_position():
    vocab = Vocabulary.build([["good", "movie"]])
    with pytest.raises(OOVError, match=r"token 'plot' at position 1 is not in the vocabulary"):
        vocab.encode(["good", "plot"], oov="error")
    with pytest.raises(OOVError, match=r"text 1: token 'bad' at position 0"):
        vocab.encode_batch([["good"], ["bad"]], oov="error")
    with pytest.raises(KeyError):  # OOVError is a KeyError
        vocab.index("nope")
    assert vocab.index("movie") == vocab["movie"]
    with pytest.raises(TypeError, match="apply tokenize"):
        Vocabulary.build(["a string, not tokens"])
    with pytest.raises(ValueError, match="oov must be"):
        vocab.encode(["good"], oov="ignore")


def test_load_imdb_layout(tmp_path):
    root = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for sub, texts in (("pos", ["Great fun.", "Loved it!<br />"]), ("neg", ["Awful."])):
            (root / split / sub).mkdir(parents=True)
            for i, t in enumerate(texts):
                (root / split / sub / f"{i}_{7 if sub == 'pos' else 2}.txt").write_text(t)
    ds = load_imdb(root, split="test")
    assert ds.y.tolist() == [0, 1, 1] and ds.x[0] == "Awful." and ds.x.dtype == object
    assert len(load_imdb(root, max_per_class=1)) == 2
    with pytest.raises(FileNotFoundError, match=r"aclImdb layout"):
        load_imdb(tmp_path, split="train")
    with pytest.raises(ValueError, match="split"):
        load_imdb(root, split="dev")


def test_load_sentence_polarity(tmp_path):
    d = tmp_path / "rt-polaritydata"
    d.mkdir()
    (d / "rt-polarity.pos").write_bytes(
        "a charming caf\xe9 film\n\nwarm and funny\n".encode("latin-1")
    )
    (d / "rt-polarity.neg").write_bytes(b"tedious\n")
    ds = load_sentence_polarity(d)
    assert ds.y.tolist() == [0, 1, 1] and ds.x[1] == "a charming caf\xe9 film"
    assert load_sentence_polarity(d / "rt-polarity.neg").y.tolist() == [0, 1, 1]
    (d / "rt-polarity.neg").unlink()
    with pytest.raises(FileNotFoundError):
        load_sentence_polarity(d)


def _vader_sdist(path):
    """A miniature of the vaderSentiment sdist: a tarball nesting hutto_ICWSM_2014.tar.gz."""
    lines = "1\t2.5\tA wonderful film.\n2\t-1.2\tDull and slow.\n3\t0.0\tIt exists.\n"
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        data = lines.encode()
        info = tarfile.TarInfo("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with tarfile.open(path, "w:gz") as tar:
        blob = inner.getvalue()
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    return lines


def test_movie_review_snippets_from_sdist_and_text(tmp_path, monkeypatch):
    lines = _vader_sdist(tmp_path / "vaderSentiment-3.3.2.tar.gz")
    monkeypatch.setenv("DIFFPROG_DATA", str(tmp_path))
    assert find_vader_data() == tmp_path / "vaderSentiment-3.3.2.tar.gz"
    ds = load_movie_review_snippets()
    assert ds.x.tolist() == ["A wonderful film.", "Dull and slow."] and ds.y.tolist() == [1, 0]
    txt = tmp_path / "movieReviewSnippets_GroundTruth.txt"
    txt.write_text(lines)
    assert load_movie_review_snippets(txt).y.tolist() == [1, 0]
    assert len(load_movie_review_snippets(txt, neutral_band=2.0)) == 1
    txt.write_text("1\tnot-a-number\ttext\n")
    with pytest.raises(ValueError, match=r"GroundTruth\.txt:1: expected 'id<TAB>rating<TAB>"):
        load_movie_review_snippets(txt)


def test_synthetic_reviews_labels_follow_negation():
    ds = make_synthetic_reviews(300, seed=2)
    assert len(ds) == 300 and 0.3 < ds.y.mean() < 0.7
    for text, label in zip(ds.x, ds.y):
        words, score = text.split(), 0
        for i, w in enumerate(words):
            sign = 1 if w in ("good", "great", "fun", "moving", "clever", "charming") else 0
            sign = sign or (1 if w in ("superb", "funny", "smart") else 0)
            sign = sign or (-1 if w in ("bad", "dull", "boring", "awful", "tedious") else 0)
            sign = sign or (-1 if w in ("flat", "weak", "clumsy", "stale") else 0)
            score += -sign if i and words[i - 1] == "not" else sign
        assert int(score > 0) == label
    with pytest.raises(ValueError, match="negation"):
        make_synthetic_reviews(10, negation=1.5)


def test_movie_review_snippets_missing_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFPROG_DATA", str(tmp_path))
    monkeypatch.setattr("sys.prefix", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"pip download --no-deps --no-binary :all:"):
        load_movie_review_snippets()


def test_real_movie_review_snippets_if_present():
    if find_vader_data() is None:
        pytest.skip("vaderSentiment 3.3.2 source distribution not fetched")
    ds = load_movie_review_snippets()
    assert len(ds) == 10568 and np.bincount(ds.y).tolist() == [5326, 5242]
