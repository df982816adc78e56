"""Trees: the Penn-Treebank bracketed format, and random arithmetic expression trees.

The bracketed format (Marcus et al. 1993), as the Stanford Sentiment Treebank uses it
(Socher et al. 2013), writes a node as ``(LABEL child child …)``; a child is a nested
node or a bare token. A node whose only child is a bare token is a *preterminal*: it
becomes a leaf :class:`Tree` carrying that token as its ``word``::

    (3 (2 good) (3 movie))            → Tree("3", [Tree("2", word="good"), Tree("3", word="movie")])
    (S (NP (DT the) (NN cat)) (VP sat))

A bare token next to other children becomes a label-less leaf (``Tree(None, word=tok)``),
so ``(7 (3 3) + (4 4))`` is a ternary node whose middle child is the word ``+``.

:func:`parse_tree` reads one tree, :func:`parse_trees` every tree in a text,
:func:`load_trees` a file; malformed input raises :class:`TreeFormatError` with the line
and column. :func:`random_expression` draws arithmetic expression trees (digits, ``+``,
``-``, ``*``, values modulo 10) in the same representation, for the ``tree_rnn`` experiment.

References:
  M. Marcus, B. Santorini, M. A. Marcinkiewicz, "Building a large annotated corpus of
  English: the Penn Treebank", Computational Linguistics 19 (1993).
  R. Socher et al., "Recursive deep models for semantic compositionality over a sentiment
  treebank", EMNLP 2013.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

__all__ = [
    "EXPRESSION_OPS",
    "Tree",
    "TreeFormatError",
    "evaluate_expression",
    "infix_tokens",
    "load_trees",
    "parse_tree",
    "parse_trees",
    "random_expression",
]


class TreeFormatError(ValueError):
    """Malformed bracketed tree text; the message gives the line and column (1-based)."""


@dataclasses.dataclass(frozen=True, eq=True)
class Tree:
    """A node of a tree: an optional label, an optional word, and ordered children.

    Attributes:
      label: the node's label (a sentiment class, a phrase category, an expression value),
        or ``None``.
      children: child trees, in order (empty for a leaf).
      word: the token at a leaf (``None`` for inner nodes).

    Examples:
      >>> t = parse_tree("(3 (2 good) (3 movie))")
      >>> t.label, [c.word for c in t.children], t.leaves()
      ('3', ['good', 'movie'], ['good', 'movie'])
      >>> str(t)
      '(3 (2 good) (3 movie))'
    """

    label: str | None
    children: tuple[Tree, ...] = ()
    word: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "children", tuple(self.children))
        if self.word is not None and self.children:
            raise ValueError(
                f"Tree({self.label!r}): a node has either a word (leaf) or children, not both"
            )

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def leaves(self) -> list[str]:
        """The words at the leaves, left to right (the sentence of a parse tree)."""
        out: list[str] = []
        stack = [self]
        while stack:
            node = stack.pop()
            if node.word is not None:
                out.append(node.word)
            stack.extend(reversed(node.children))
        return out

    def size(self) -> int:
        """Number of nodes."""
        return 1 + sum(c.size() for c in self.children)

    def depth(self) -> int:
        """Height of the tree: 0 for a single leaf."""
        return 1 + max(c.depth() for c in self.children) if self.children else 0

    def __str__(self) -> str:
        if self.is_leaf and self.label is None:
            return self.word or ""
        if self.is_leaf:
            return f"({self.label} {self.word})" if self.word is not None else f"({self.label})"
        inner = " ".join(str(c) for c in self.children)
        return f"({self.label} {inner})" if self.label is not None else f"({inner})"


_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def _position(text: str, offset: int, first_line: int) -> str:
    line = text.count("\n", 0, offset) + first_line
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {col}"


def _parse(text: str, pos: int, first_line: int, source: str) -> tuple[Tree, int]:
    """Parse one node starting at the '(' at or after ``pos``; return it and the next offset."""
    tokens = _TOKEN.finditer(text, pos)
    # explicit stack of (open-offset, label, children) frames: no recursion limit
    stack: list[tuple[int, str | None, list]] = []
    label_pending = False
    for m in tokens:
        tok, at = m.group(), m.start()
        if tok == "(":
            stack.append((at, None, []))
            label_pending = True
            continue
        if not stack:
            where = _position(text, at, first_line)
            if tok == ")":
                raise TreeFormatError(
                    f"{source}{where}: unbalanced ')': no '(' is open here; delete it or add "
                    "the missing '('"
                )
            raise TreeFormatError(f"{source}{where}: expected '(' to start a tree, found {tok!r}")
        if tok == ")":
            open_at, label, kids = stack.pop()
            label_pending = False
            if label is None and not kids:
                raise TreeFormatError(
                    f"{source}{_position(text, open_at, first_line)}: empty node '()'; every "
                    "node needs a label or children, e.g. (2 word)"
                )
            if len(kids) == 1 and isinstance(kids[0], str):
                node = Tree(label, word=kids[0])
            else:
                node = Tree(
                    label, tuple(Tree(None, word=k) if isinstance(k, str) else k for k in kids)
                )
            if not stack:
                return node, m.end()
            stack[-1][2].append(node)
            continue
        if label_pending:
            open_at, _, kids = stack[-1]
            stack[-1] = (open_at, tok, kids)
            label_pending = False
        else:
            stack[-1][2].append(tok)
    if stack:
        open_at = stack[-1][0]
        raise TreeFormatError(
            f"{source}{_position(text, open_at, first_line)}: the '(' opened here is never "
            f"closed ({len(stack)} ')' missing at the end of the input)"
        )
    raise TreeFormatError(
        f"{source}{_position(text, pos, first_line)}: no tree found (empty input)"
    )


def parse_tree(text: str, *, source: str = "") -> Tree:
    """Parse exactly one bracketed tree.

    Args:
      text: e.g. ``"(3 (2 good) (3 movie))"``; whitespace (including newlines) is free.
      source: a prefix for error messages, e.g. a file name.

    Returns:
      The :class:`Tree`.

    Raises:
      TreeFormatError: unbalanced or missing brackets, an empty node, text before or after
        the tree; the message names the line and column.

    Examples:
      >>> parse_tree("(S (NP (DT the) (NN cat)) (VP sat))").leaves()
      ['the', 'cat', 'sat']
      >>> parse_tree("(3 (2 good) (3 movie)")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      diffprog.data.trees.TreeFormatError: line 1, column 1: the '(' opened here is never ...
    """
    prefix = f"{source}: " if source else ""
    trees = parse_trees(text, source=source)
    if len(trees) != 1:
        raise TreeFormatError(
            f"{prefix}expected exactly one tree, found {len(trees)}; use parse_trees for many"
        )
    return trees[0]


def parse_trees(text: str, *, source: str = "", first_line: int = 1) -> list[Tree]:
    """Parse every bracketed tree in ``text`` (one per line, or any whitespace between)."""
    prefix = f"{source}: " if source else ""
    trees = []
    pos = 0
    while True:
        m = re.compile(r"\S").search(text, pos)
        if m is None:
            return trees
        if m.group() != "(":
            where = _position(text, m.start(), first_line)
            if m.group() == ")":
                raise TreeFormatError(
                    f"{prefix}{where}: unbalanced ')': no '(' is open here; delete it or add "
                    "the missing '('"
                )
            raise TreeFormatError(
                f"{prefix}{where}: expected '(' to start a tree, found "
                f"{_TOKEN.match(text, m.start()).group()!r}"
            )
        tree, pos = _parse(text, m.start(), first_line, prefix)
        trees.append(tree)


def load_trees(path: os.PathLike | str, *, encoding: str = "utf-8") -> list[Tree]:
    """Read a file of bracketed trees (e.g. the Stanford Sentiment Treebank's ``train.txt``).

    Raises:
      FileNotFoundError: no such file.
      TreeFormatError: malformed brackets; the message is ``path: line L, column C: …``.
    """
    with open(path, encoding=encoding) as fh:
        text = fh.read()
    return parse_trees(text, source=os.fspath(path))


# ----------------------------------------------------------------------------- expressions

EXPRESSION_OPS = ("+", "-", "*")


def evaluate_expression(tree: Tree, *, modulus: int = 10) -> int:
    """Value modulo ``modulus`` of an expression tree from :func:`random_expression`.

    Leaves are digits; an inner node is ``(left, op, right)`` with op in ``+ - *``.
    """
    if tree.is_leaf:
        return int(tree.word) % modulus
    left, op, right = tree.children
    a, b = evaluate_expression(left, modulus=modulus), evaluate_expression(right, modulus=modulus)
    if op.word == "+":
        return (a + b) % modulus
    if op.word == "-":
        return (a - b) % modulus
    if op.word == "*":
        return (a * b) % modulus
    raise ValueError(f"unknown operator {op.word!r}; expected one of {EXPRESSION_OPS}")


def infix_tokens(tree: Tree, *, brackets: bool = True) -> list[str]:
    """The words of a tree in order, each inner node wrapped in ``(`` … ``)``.

    This is the flattened form a sequence model reads: for an expression tree it is the
    fully parenthesised infix expression.

    Examples:
      >>> infix_tokens(parse_tree("(7 (3 3) + (4 4))"))
      ['(', '3', '+', '4', ')']
    """
    out: list[str] = []
    stack: list[Tree | str] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            out.append(node)
        elif node.is_leaf:
            if node.word is not None:
                out.append(node.word)
        else:
            parts: list[Tree | str] = list(node.children)
            if brackets:
                parts = ["(", *parts, ")"]
            stack.extend(reversed(parts))
    return out


def random_expression(
    rng: np.random.Generator,
    *,
    max_depth: int,
    ops: tuple[str, ...] = ("+", "-"),
    modulus: int = 10,
    leaf_prob: float = 0.25,
) -> Tree:
    """A random arithmetic expression tree, every node labelled with its value mod ``modulus``.

    A node at depth < ``max_depth`` becomes a leaf with probability ``leaf_prob`` (always
    at ``max_depth``; never at the root, so every expression has an operator). Leaves are
    digits ``0 … 9``; inner nodes have three children: left operand, the operator as a
    label-less word, right operand. ``str(tree)`` is the bracketed form, and
    ``tree.leaves()`` the flattened infix expression without brackets.

    Args:
      rng: a NumPy ``Generator`` (host-side data generation).
      max_depth: largest depth (≥ 1).
      ops: operators to draw from, a subset of ``("+", "-", "*")``.
      modulus: labels are values modulo this.
      leaf_prob: chance that a non-root node above ``max_depth`` is a leaf.

    Examples:
      >>> t = random_expression(np.random.default_rng(0), max_depth=2)
      >>> int(t.label) == evaluate_expression(t)
      True
    """
    if max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    bad = [op for op in ops if op not in EXPRESSION_OPS]
    if bad or not ops:
        raise ValueError(f"ops {bad or 'empty'} not supported; choose from {EXPRESSION_OPS}")

    def draw(depth: int) -> Tree:
        if depth == max_depth or (depth > 0 and rng.random() < leaf_prob):
            d = int(rng.integers(0, 10))
            return Tree(str(d % modulus), word=str(d))
        left, right = draw(depth + 1), draw(depth + 1)
        op = str(ops[int(rng.integers(0, len(ops)))])
        node = Tree(None, (left, Tree(None, word=op), right))
        return dataclasses.replace(node, label=str(evaluate_expression(node, modulus=modulus)))

    return draw(0)
