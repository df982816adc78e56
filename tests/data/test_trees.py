"""Bracketed-tree parser and loader, and the random arithmetic expression trees."""

import numpy as np
import pytest

from diffprog.data import (
    Tree,
    TreeFormatError,
    evaluate_expression,
    infix_tokens,
    load_trees,
    parse_tree,
    parse_trees,
    random_expression,
)


def test_parse_sentiment_treebank_style():
    t = parse_tree("(3 (2 good) (3 (2 funny) (4 movie)))")
    assert t.label == "3" and not t.is_leaf
    assert t.children[0] == Tree("2", word="good")
    assert t.leaves() == ["good", "funny", "movie"]
    assert t.size() == 5 and t.depth() == 2
    assert str(t) == "(3 (2 good) (3 (2 funny) (4 movie)))"
    assert parse_tree(str(t)) == t  # round trip


def test_parse_penn_treebank_nary_mixed_and_multiline():
    text = "(S\n  (NP (DT the) (JJ big) (NN cat))\n  (VP sat) .)"
    t = parse_tree(text)
    assert [c.label for c in t.children] == ["NP", "VP", None]
    assert len(t.children[0].children) == 3  # ternary NP
    assert t.children[2] == Tree(None, word=".")  # bare token next to subtrees
    assert t.leaves() == ["the", "big", "cat", "sat", "."]
    # unlabelled root, as some treebank files write it
    assert parse_tree("((A a) (B b))").label is None


def test_parse_trees_and_load_file(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("(1 (0 bad) (1 fun))\n\n(0 (0 dull))\n(4 (3 x) (4 (4 y) (2 z)))\n")
    trees = load_trees(path)
    assert [t.label for t in trees] == ["1", "0", "4"]
    assert trees[1].leaves() == ["dull"]
    assert parse_trees("(1 a)(2 b)") == [Tree("1", word="a"), Tree("2", word="b")]


@pytest.mark.parametrize(
    "text,match",
    [
        ("(3 (2 good) (3 movie)", r"line 1, column 1: the '\(' opened here is never closed"),
        ("(3 (2 good)) (3 movie))", r"line 1, column 23: unbalanced '\)'"),
        ("(1 a)\n(2 b))", r"line 2, column 6: unbalanced '\)'"),
        ("(1 a)\n  word (2 b)", r"line 2, column 3: expected '\(' to start a tree, found 'word'"),
        ("(1 a)\n(2 (3 b) ())", r"line 2, column 10: empty node '\(\)'"),
        ("", r"expected exactly one tree, found 0"),
        ("(1 a) (2 b)", r"expected exactly one tree, found 2"),
    ],
)
def test_malformed_brackets_name_line_and_column(text, match):
    with pytest.raises(TreeFormatError, match=match):
        parse_tree(text)


def test_load_trees_error_names_the_file(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("(1 a)\n(2 (1 b)\n")
    with pytest.raises(TreeFormatError, match=r"bad\.txt: line 2, column 1"):
        load_trees(path)


def test_deep_tree_parses_without_recursion_limit():
    depth = 5000
    text = "(1 " * depth + "x" + ")" * depth
    t = parse_tree(text)
    assert t.leaves() == ["x"]
    node, d = t, 0
    while node.children:
        node, d = node.children[0], d + 1
    assert d == depth - 1


def test_random_expressions_are_labelled_with_their_value():
    rng = np.random.default_rng(0)
    trees = [random_expression(rng, max_depth=4, ops=("+", "-", "*")) for _ in range(200)]
    for t in trees:
        assert int(t.label) == evaluate_expression(t)
        # the fully parenthesised infix form evaluates (Python arithmetic) to the same value
        assert eval("".join(infix_tokens(t))) % 10 == int(t.label)
        assert 1 <= t.depth() <= 4
        # every inner node is (left, op, right) and labelled with its own value
        stack = [t]
        while stack:
            n = stack.pop()
            if n.children:
                assert n.children[1].word in "+-*" and n.children[1].label is None
                assert int(n.label) == evaluate_expression(n)
                stack += [n.children[0], n.children[2]]
    labels = np.array([int(t.label) for t in trees])
    assert len(np.unique(labels)) == 10  # all residues occur
    # bracketed form round-trips through the parser
    assert parse_tree(str(trees[0])) == trees[0]
    with pytest.raises(ValueError, match="not supported"):
        random_expression(rng, max_depth=2, ops=("/",))
    with pytest.raises(ValueError, match="max_depth must be >= 1"):
        random_expression(rng, max_depth=0)
