"""Tree-structured recursive networks (Tree-RNN, Tree-LSTM) over forests, without recursion.

A recursive network computes a state for every node of a tree from the node's own input
and its children's states, bottom-up, with the *same* parameters at every node
(Pollack 1990; Socher et al. 2011, 2013; Tai et al. 2015). Written as Python recursion
it cannot be jitted for trees of varying shape; here a whole **forest** (any number of
trees, binary or n-ary) is stored as arrays and processed **level by level**:

- every node gets a height (leaves 0, a parent one more than its highest child);
- ``levels[l]`` lists the nodes of height ``l`` (padded with ``-1``);
- one :func:`jax.lax.scan` step per level gathers the children's states by index,
  applies the cell to all nodes of that level at once, and scatters the new states
  into the state table.

All children of a level-``l`` node have height < ``l``, so their states are final when
it is computed. Differentiating the scan with :func:`jax.grad` is backpropagation
through structure (Goller & Küchler 1996): the root loss flows back through every
gather to the shared parameters at every node.

Host-side construction (NumPy): :func:`make_forest` (from trees with ``children``
attributes, e.g. :class:`diffprog.data.trees.Tree`), :func:`forest_from_arrays` (from a
child-index table; validates dangling indices, shared children and cycles),
:func:`pad_forest` and :func:`stack_forests` (equal shapes for a minibatch axis that
:func:`jax.vmap` maps over).

References:
  J. Pollack, "Recursive distributed representations", Artificial Intelligence 46 (1990).
  C. Goller, A. Küchler, "Learning task-dependent distributed representations by
  backpropagation through structure", ICNN 1996.
  R. Socher et al., "Recursive deep models for semantic compositionality over a sentiment
  treebank", EMNLP 2013.
  K. S. Tai, R. Socher, C. D. Manning, "Improved semantic representations from
  tree-structured long short-term memory networks", ACL 2015.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffprog.nn._core import activation as _activation

Array = jax.Array

__all__ = [
    "Forest",
    "ForestError",
    "TreeRNN",
    "TreeState",
    "forest_from_arrays",
    "forest_nodes",
    "make_forest",
    "pad_forest",
    "stack_forests",
]

CELLS = ("rnn", "lstm")
COMPOSITIONS = ("ordered", "sum")


class ForestError(ValueError):
    """A child-index table does not describe a forest (dangling index, shared child, cycle)."""


class Forest(NamedTuple):
    """A forest of trees as arrays (a pytree: slice, stack, ``vmap`` and ``jit`` freely).

    Nodes are numbered ``0 … n_nodes-1``; padding nodes (from :func:`pad_forest`) have no
    token, no children, and appear in no level.

    Attributes:
      children: int32 (n_nodes, max_arity): child node ids in order, ``-1`` for none.
      tokens: int32 (n_nodes,): the node's input id (embedding row), ``-1`` for no input.
      levels: int32 (n_levels, width): nodes of height 0, 1, …, ``-1`` padded.
      roots: int32 (n_trees,): the root node of each tree.
    """

    children: Any
    tokens: Any
    levels: Any
    roots: Any


class TreeState(NamedTuple):
    """States of every node: ``h`` (n_nodes, hidden) and the LSTM memory ``c`` (zeros for rnn)."""

    h: Array
    c: Array


# ----------------------------------------------------------------------------- building


def forest_from_arrays(children, tokens, *, roots=None) -> Forest:
    """Validate a child-index table and compute the level schedule.

    Args:
      children: integer array (n_nodes, max_arity); entry ``[j, k]`` is node ``j``'s
        ``k``-th child or ``-1``. Children must be listed first (no gaps are required, but
        ``-1`` entries are skipped).
      tokens: integer array (n_nodes,): input ids, ``-1`` for nodes without input.
      roots: the root of each tree; default: every node that is nobody's child, in order.

    Returns:
      A :class:`Forest` of NumPy int32 arrays.

    Raises:
      ForestError: a child index outside ``[-1, n_nodes)`` (dangling), a node listed as a
        child twice (shared subtree), a node that is its own ancestor (cycle), or a given
        root that has a parent.

    Examples:
      >>> f = forest_from_arrays([[-1, -1], [-1, -1], [0, 1]], [5, 6, -1])
      >>> f.levels.tolist(), f.roots.tolist()
      ([[0, 1], [2, -1]], [2])
    """
    ch = np.asarray(children)
    tok = np.asarray(tokens)
    if ch.ndim != 2 or (ch.size and not np.issubdtype(ch.dtype, np.integer)):
        raise ForestError(
            f"children must be an integer array of shape (n_nodes, max_arity), got "
            f"{ch.dtype}{ch.shape}"
        )
    n = ch.shape[0]
    if tok.shape != (n,) or (tok.size and not np.issubdtype(tok.dtype, np.integer)):
        raise ForestError(
            f"tokens must be an integer array of shape ({n},) (one id per node, -1 for none), "
            f"got {tok.dtype}{tok.shape}"
        )
    ch = ch.astype(np.int64)
    bad = np.argwhere((ch < -1) | (ch >= n))
    if bad.size:
        j, k = bad[0]
        raise ForestError(
            f"dangling child index: node {j} slot {k} points to {ch[j, k]}, but node ids run "
            f"from 0 to {n - 1} (use -1 for 'no child')"
        )
    parent = np.full(n, -1, np.int64)
    for j, k in np.argwhere(ch >= 0):
        c = ch[j, k]
        if c == j:
            raise ForestError(f"cycle: node {j} lists itself as its child (slot {k})")
        if parent[c] >= 0:
            raise ForestError(
                f"node {c} has two parents ({parent[c]} and {j}); trees must not share "
                "subtrees: copy the subtree instead"
            )
        parent[c] = j
    # Kahn's algorithm bottom-up: a node is ready once all its children have heights.
    n_children = (ch >= 0).sum(1)
    pending = n_children.copy()
    height = np.full(n, -1, np.int64)
    frontier = list(np.flatnonzero(pending == 0))
    for j in frontier:
        height[j] = 0
    while frontier:
        nxt = []
        for j in frontier:
            p = parent[j]
            if p >= 0:
                height[p] = max(height[p], height[j] + 1)
                pending[p] -= 1
                if pending[p] == 0:
                    nxt.append(p)
        frontier = nxt
    if (height < 0).any():
        stuck = np.flatnonzero(height < 0)
        # follow child links inside the unresolved set until a node repeats: that is a cycle
        path, j = [], int(stuck[0])
        while j not in path:
            path.append(j)
            j = next(int(c) for c in ch[j] if c >= 0 and height[c] < 0)
        cycle = [*path[path.index(j) :], j]
        raise ForestError(
            "cycle in the child links: " + " -> ".join(map(str, cycle)) + "; a tree's child "
            "links must lead from the root down to leaves without returning"
        )
    if roots is None:
        roots_arr = np.flatnonzero(parent < 0)
    else:
        roots_arr = np.asarray(roots, np.int64).reshape(-1)
        for r in roots_arr:
            if not 0 <= r < n:
                raise ForestError(f"root {r} is not a node id (0 … {n - 1})")
            if parent[r] >= 0:
                raise ForestError(f"root {r} has a parent ({parent[r]}); pick the top node")
    n_levels = int(height.max()) + 1 if n else 0
    counts = np.bincount(height, minlength=n_levels) if n else np.zeros(0, np.int64)
    width = int(counts.max()) if n else 0
    levels = np.full((n_levels, width), -1, np.int64)
    fill = np.zeros(n_levels, np.int64)
    for j in range(n):
        levels[height[j], fill[height[j]]] = j
        fill[height[j]] += 1
    return Forest(
        ch.astype(np.int32),
        tok.astype(np.int32),
        levels.astype(np.int32),
        roots_arr.astype(np.int32),
    )


def forest_nodes(trees: Sequence[Any]) -> list[Any]:
    """The nodes of ``trees`` in the order :func:`make_forest` numbers them (post-order).

    Use it to build per-node arrays (e.g. every node's sentiment label) that line up with
    the forest: ``np.array([int(t.label) for t in forest_nodes(trees)])``.

    Raises:
      ForestError: a node is reached twice (a cycle in the ``children`` links, or a
        subtree shared by two parents or two trees).
    """
    out: list[Any] = []
    seen: set[int] = set()
    for t_index, tree in enumerate(trees):
        stack = [(tree, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                out.append(node)
                continue
            if id(node) in seen:
                raise ForestError(
                    f"tree {t_index}: node {getattr(node, 'label', node)!r} is reached twice, "
                    "through a cycle in the children links or a subtree shared by two "
                    "parents; trees must be acyclic and must not share subtrees (copy it)"
                )
            seen.add(id(node))
            stack.append((node, True))
            for child in reversed(tuple(node.children)):
                stack.append((child, False))
    return out


def _default_token(node: Any) -> Any:
    return getattr(node, "word", None)


def make_forest(
    trees: Sequence[Any],
    vocab: Mapping[str, int] | Callable[[str], int],
    *,
    token: Callable[[Any], str | None] = _default_token,
    max_arity: int | None = None,
) -> Forest:
    """Number the nodes of ``trees`` (post-order) and build a :class:`Forest`.

    Args:
      trees: tree objects with a ``children`` sequence (e.g. :class:`diffprog.data.Tree`).
      vocab: maps a node's token string to its input id: a mapping, or a callable such as
        ``Vocabulary.index``. An unknown token raises ``KeyError`` naming it.
      token: the token string of a node, or ``None`` for no input; default the node's
        ``word`` attribute (the word at a leaf of a parse tree, ``None`` inside).
      max_arity: width of the child table; default the largest number of children.

    Returns:
      A :class:`Forest` whose ``roots`` are the trees in order.

    Examples:
      >>> from diffprog.data import parse_tree
      >>> t = parse_tree("(1 (0 not) (1 (1 very) (1 good)))")
      >>> f = make_forest([t], {"not": 0, "very": 1, "good": 2})
      >>> f.tokens.tolist(), f.roots.tolist(), f.levels.shape
      ([0, 1, 2, -1, -1], [4], (3, 3))
    """
    nodes = forest_nodes(trees)
    index = {id(node): i for i, node in enumerate(nodes)}
    arity = max((len(node.children) for node in nodes), default=0)
    if max_arity is None:
        max_arity = max(arity, 1)
    if arity > max_arity:
        raise ForestError(f"a node has {arity} children but max_arity={max_arity}; raise max_arity")
    children = np.full((len(nodes), max_arity), -1, np.int64)
    tokens = np.full(len(nodes), -1, np.int64)
    lookup = vocab if callable(vocab) else vocab.__getitem__
    for i, node in enumerate(nodes):
        for k, child in enumerate(node.children):
            children[i, k] = index[id(child)]
        tok = token(node)
        if tok is not None:
            try:
                tokens[i] = lookup(tok)
            except KeyError:
                raise KeyError(
                    f"token {tok!r} (node {i}) is not in the vocabulary; add it or map unknown "
                    "tokens to an out-of-vocabulary id"
                ) from None
    roots = [index[id(t)] for t in trees]
    return forest_from_arrays(children, tokens, roots=roots)


def pad_forest(forest: Forest, *, n_nodes: int, n_levels: int, width: int) -> Forest:
    """Pad a forest to fixed shapes (extra nodes are inert: no token, no children, no level)."""
    ch, tok, lev, roots = (np.asarray(a) for a in forest)
    n, k = ch.shape
    lv, w = lev.shape
    if n > n_nodes or lv > n_levels or w > width:
        raise ForestError(
            f"cannot pad a forest with {n} nodes, {lv} levels of width {w} down to "
            f"n_nodes={n_nodes}, n_levels={n_levels}, width={width}; pass sizes at least as "
            "large (stack_forests picks them for you)"
        )
    ch2 = np.full((n_nodes, k), -1, np.int32)
    ch2[:n] = ch
    tok2 = np.full(n_nodes, -1, np.int32)
    tok2[:n] = tok
    lev2 = np.full((n_levels, width), -1, np.int32)
    lev2[:lv, :w] = lev
    return Forest(ch2, tok2, lev2, roots.astype(np.int32))


def stack_forests(forests: Sequence[Forest]) -> Forest:
    """Pad forests to common shapes and stack them on a new leading (batch) axis.

    Every forest must have the same number of trees (typically one). The result is a
    :class:`Forest` of NumPy arrays with a leading axis of length ``len(forests)``: feed it
    to ``jax.vmap(model.apply, in_axes=(None, 0))``, or to :func:`diffprog.train.fit` as
    part of the data pytree (minibatches slice the leading axis).
    """
    if not forests:
        raise ForestError("stack_forests needs at least one forest")
    n_trees = {len(np.asarray(f.roots)) for f in forests}
    if len(n_trees) != 1:
        raise ForestError(
            f"stack_forests needs forests with the same number of trees, got {sorted(n_trees)}"
        )
    arity = {np.asarray(f.children).shape[1] for f in forests}
    k = max(arity)
    if len(arity) > 1:
        forests = [
            f._replace(
                children=np.pad(
                    np.asarray(f.children),
                    ((0, 0), (0, k - np.asarray(f.children).shape[1])),
                    constant_values=-1,
                )
            )
            for f in forests
        ]
    n = max(np.asarray(f.children).shape[0] for f in forests)
    lv = max(np.asarray(f.levels).shape[0] for f in forests)
    w = max(np.asarray(f.levels).shape[1] for f in forests)
    padded = [pad_forest(f, n_nodes=n, n_levels=lv, width=w) for f in forests]
    return Forest(*(np.stack(parts) for parts in zip(*padded, strict=True)))


# ----------------------------------------------------------------------------- the model


@dataclasses.dataclass(frozen=True)
class TreeRNN:
    """A recursive network over a forest: one shared cell applied bottom-up at every node.

    With ``x_j`` the embedding of node ``j``'s token (zero when it has none) and
    ``h_{j1} … h_{jK}`` its children's states (zero for absent children):

    ``cell="rnn"`` (Socher et al. 2011)::

        ordered:  h_j = φ(W x_j + Σ_k U_k h_{jk} + b)       (N-ary: one U_k per child slot)
        sum:      h_j = φ(W x_j + U Σ_k h_{jk} + b)          (any arity, order-free)

    ``cell="lstm"`` (Tai et al. 2015; gates i, o, u and one forget gate per child)::

        ordered:  g_j = W_g x_j + Σ_l U_g^l h_{jl} + b_g        for g in i, o, u
                  f_{jk} = σ(W_f x_j + Σ_l U_f^{kl} h_{jl} + b_f)
        sum:      g_j = W_g x_j + U_g Σ_l h_{jl} + b_g;  f_{jk} = σ(W_f x_j + U_f h_{jk} + b_f)
        c_j = σ(i_j) ⊙ tanh(u_j) + Σ_k f_{jk} ⊙ c_{jk},   h_j = σ(o_j) ⊙ tanh(c_j)

    Parameters are a plain dict: ``embed`` (vocab_size, embed_dim), ``W`` (embed_dim, G·H),
    ``b`` (G·H,) with G = 1 (rnn) or 4 (lstm: i, o, u, f), ``U`` ((K,) H, H) for rnn or
    ((K,) H, 3H) for lstm, and for lstm ``U_f`` ((K, K,) H, H); the leading K axes exist
    for ``composition="ordered"`` only.

    Attributes:
      vocab_size: number of token ids (rows of the embedding).
      embed_dim: width of a token embedding.
      hidden: width H of a node state.
      cell: ``"rnn"`` or ``"lstm"``.
      composition: ``"ordered"`` (N-ary, child position matters; needs ``max_arity``) or
        ``"sum"`` (child-sum, any number of children).
      max_arity: most children a node may have with ``composition="ordered"``.
      activation: φ for the rnn cell (default tanh).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> f = forest_from_arrays([[-1, -1], [-1, -1], [0, 1]], [0, 1, -1])
      >>> net = TreeRNN(vocab_size=2, embed_dim=3, hidden=4)
      >>> params = net.init(jax.random.key(0))
      >>> state = net.apply(params, f)
      >>> state.h.shape, net.roots(state, f).shape
      ((3, 4), (1, 4))

    References:
      R. Socher, C. Lin, A. Ng, C. Manning, "Parsing natural scenes and natural language
      with recursive neural networks", ICML 2011.
      K. S. Tai, R. Socher, C. D. Manning, "Improved semantic representations from
      tree-structured long short-term memory networks", ACL 2015.
    """

    vocab_size: int
    embed_dim: int
    hidden: int
    cell: str = "rnn"
    composition: str = "ordered"
    max_arity: int = 2
    activation: str = "tanh"

    def __post_init__(self):
        for name in ("vocab_size", "embed_dim", "hidden", "max_arity"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TreeRNN.{name} must be >= 1, got {getattr(self, name)}")
        if self.cell not in CELLS:
            raise ValueError(f"unknown TreeRNN cell {self.cell!r}; choose one of {CELLS}")
        if self.composition not in COMPOSITIONS:
            raise ValueError(
                f"unknown TreeRNN composition {self.composition!r}; choose one of {COMPOSITIONS}"
            )
        _activation(self.activation)

    @property
    def _gates(self) -> int:
        return 4 if self.cell == "lstm" else 1

    def init(self, key: Array, *, dtype: Any = jnp.float32) -> dict[str, Array]:
        """N(0, 1) embeddings, Glorot-normal input weights, scaled-normal recurrent weights.

        The recurrent weights have standard deviation 1/√(H·K) (K children in the ordered
        composition) so a node's pre-activation stays O(1) however many children it has;
        the lstm forget-gate bias starts at 1 (Gers et al. 2000).
        """
        H, E, G = self.hidden, self.embed_dim, self._gates
        k_emb, k_w, k_u, k_f = jax.random.split(key, 4)
        K = self.max_arity if self.composition == "ordered" else 1
        lead = (self.max_arity,) if self.composition == "ordered" else ()
        rec = 3 * H if self.cell == "lstm" else H
        params = {
            "embed": jax.random.normal(k_emb, (self.vocab_size, E), dtype),
            "W": math.sqrt(2.0 / (E + G * H)) * jax.random.normal(k_w, (E, G * H), dtype),
            "b": jnp.zeros((G * H,), dtype),
            "U": jax.random.normal(k_u, (*lead, H, rec), dtype) / math.sqrt(H * K),
        }
        if self.cell == "lstm":
            params["b"] = params["b"].at[3 * H :].set(1.0)
            params["U_f"] = jax.random.normal(k_f, (*lead, *lead, H, H), dtype) / math.sqrt(H * K)
        return params

    def _embed(self, params: dict[str, Array], tokens: Array) -> Array:
        x = params["embed"][jnp.clip(tokens, 0, self.vocab_size - 1)]
        return jnp.where((tokens >= 0)[..., None], x, jnp.zeros((), x.dtype))

    def node_update(
        self, params: dict[str, Array], xw: Array, child_h: Array, child_c: Array
    ) -> tuple[Array, Array]:
        """New (h, c) of nodes from input terms ``xw = W x + b`` (…, G·H) and children (…, K, H)."""
        H = self.hidden
        K = child_h.shape[-2]
        if self.composition == "ordered":
            if K > self.max_arity:
                raise ValueError(
                    f"forest has nodes with up to {K} child slots but TreeRNN.max_arity="
                    f"{self.max_arity}; raise max_arity or use composition='sum'"
                )
            rec = jnp.einsum("...kh,khg->...g", child_h, params["U"][:K])
        else:
            rec = jnp.sum(child_h, axis=-2) @ params["U"]
        if self.cell == "rnn":
            h = _activation(self.activation)(xw + rec)
            return h, jnp.zeros_like(h)
        iou = xw[..., : 3 * H] + rec
        i, o, u = iou[..., :H], iou[..., H : 2 * H], iou[..., 2 * H :]
        if self.composition == "ordered":
            f_pre = jnp.einsum("...lh,klhg->...kg", child_h, params["U_f"][:K, :K])
        else:
            f_pre = child_h @ params["U_f"]
        f = jax.nn.sigmoid(xw[..., None, 3 * H :] + f_pre)
        c = jax.nn.sigmoid(i) * jnp.tanh(u) + jnp.sum(f * child_c, axis=-2)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, c

    def apply(self, params: dict[str, Array], forest: Forest) -> TreeState:
        """States of every node of one forest (use ``jax.vmap`` over stacked forests).

        Args:
          params: from :meth:`init`.
          forest: a :class:`Forest` (NumPy or JAX arrays, no leading batch axis).

        Returns:
          :class:`TreeState` with ``h`` and ``c`` of shape (n_nodes, hidden); padding
          nodes have zero states. ``roots(state, forest)`` picks the tree roots.
        """
        children = jnp.asarray(forest.children)
        tokens = jnp.asarray(forest.tokens)
        levels = jnp.asarray(forest.levels)
        if children.ndim != 2 or tokens.ndim != 1 or levels.ndim != 2:
            raise ValueError(
                f"TreeRNN.apply takes one forest (children 2-D, tokens 1-D, levels 2-D), got "
                f"shapes {children.shape}, {tokens.shape}, {levels.shape}; for a stacked "
                "batch use jax.vmap(model.apply, in_axes=(None, 0))"
            )
        n = children.shape[0]
        xw = self._embed(params, tokens) @ params["W"] + params["b"]
        dtype = xw.dtype
        # row n is the permanent zero state of an absent child; writes to row n+1 are dropped
        h0 = jnp.zeros((n + 1, self.hidden), dtype)

        def level(carry, nodes):
            hs, cs = carry
            valid = nodes >= 0
            safe = jnp.where(valid, nodes, 0)
            kids = children[safe]
            kids = jnp.where((kids >= 0) & valid[:, None], kids, n)
            h, c = self.node_update(params, xw[safe], hs[kids], cs[kids])
            dst = jnp.where(valid, nodes, n + 1)
            hs = hs.at[dst].set(h, mode="drop")
            cs = cs.at[dst].set(c, mode="drop")
            return (hs, cs), None

        (hs, cs), _ = lax.scan(level, (h0, h0), levels)
        return TreeState(hs[:n], cs[:n])

    @staticmethod
    def roots(state: TreeState, forest: Forest) -> Array:
        """The root states (n_trees, hidden) (works under ``vmap`` as well)."""
        return state.h[jnp.asarray(forest.roots)]
