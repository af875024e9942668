"""Import of the tree ensembles of ``ai.onnx.ml``: TreeEnsemble (opset 5) and the older
TreeEnsembleRegressor / TreeEnsembleClassifier (opsets 1, 3, 5), evaluated by one vectorised
walker. Trees are piecewise constant: no gradient flows through them. The post transforms and
label handling are those of the linear models in ``ml``.
"""

from __future__ import annotations

import numpy as np

from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.ops.ml import _POST, ML, _labels, post_transform
from bpcli.onnx.importer.table import NodeView, register, wrap

# -- tree ensembles -------------------------------------------------------------------------

_MODES = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4,
          "BRANCH_NEQ": 5, "BRANCH_MEMBER": 6, "LEAF": -1}  # fmt: skip


class Forest:
    """Trees on arrays. A branch's ``true_next``/``false_next`` is a node index, or ``~leaf``
    (negative) for a leaf; ``roots`` likewise. Votes are parallel (leaf, target, weight) arrays.
    """

    def __init__(self, roots, mode, feature, split, true_next, false_next, missing, members,
                 votes, n_targets: int):  # fmt: skip
        self.roots, self.mode, self.feature, self.split = roots, mode, feature, split
        self.true_next, self.false_next, self.missing = true_next, false_next, missing
        self.members = members  # [M, K] set members per node, NaN-padded (None without sets)
        self.leaf, self.target, self.weight = votes
        self.n_targets = n_targets

    def leaves(self, x: np.ndarray, node: NodeView) -> np.ndarray:
        """The leaf each sample reaches in each tree: [N, T]."""
        if self.feature.size and self.feature.max() >= x.shape[1]:
            raise node.fail(f"a node reads feature {self.feature.max()} of {x.shape[1]}")
        cur = np.tile(self.roots, (x.shape[0], 1))
        for _ in range(self.mode.size + 1):
            r, t = np.nonzero(cur >= 0)
            if not r.size:
                return ~cur
            at = cur[r, t]
            go = self._test(at, x[r, self.feature[at]])
            cur[r, t] = np.where(go, self.true_next[at], self.false_next[at])
        raise node.fail("the trees have a cycle")

    def _test(self, at: np.ndarray, v: np.ndarray) -> np.ndarray:
        m, s = self.mode[at], self.split[at]
        with np.errstate(invalid="ignore"):
            out = np.select([m == 0, m == 1, m == 2, m == 3, m == 4, m == 5],
                            [v <= s, v < s, v >= s, v > s, v == s, v != s], False)  # fmt: skip
        mem = m == 6
        if mem.any():
            out[mem] = (self.members[at[mem]] == v[mem, None]).any(axis=1)
        return out | (self.missing[at] & np.isnan(v))

    def scores(self, x: np.ndarray, how: str, node: NodeView):
        """Aggregated votes [N, K] (float64, 0 where none) and which targets got a vote."""
        reached = self.leaves(x, node)
        n, k = x.shape[0], self.n_targets
        n_leaves = int(max(self.leaf.max(initial=-1), reached.max(initial=-1))) + 1
        if how in ("SUM", "AVERAGE"):
            table, fill, combine = np.zeros((n_leaves, k)), 0.0, np.add
        else:
            fill = np.inf if how == "MIN" else -np.inf
            table, combine = np.full((n_leaves, k), fill), np.fmin if how == "MIN" else np.fmax
        combine.at(table, (self.leaf, self.target), self.weight)
        has = np.zeros((n_leaves, k), bool)
        has[self.leaf, self.target] = True
        acc, hit = np.full((n, k), fill), np.zeros((n, k), bool)
        for t in range(reached.shape[1]):
            acc = combine(acc, table[reached[:, t]])
            hit |= has[reached[:, t]]
        if how == "AVERAGE":
            acc = acc / max(reached.shape[1], 1)
        return np.where(hit, acc, 0.0), hit


def _members(modes: np.ndarray, values) -> np.ndarray | None:
    """Each BRANCH_MEMBER node's set (the NaN-separated runs of ``values``, in node order)."""
    at = np.nonzero(modes == 6)[0]
    if not at.size:
        return None
    v = np.asarray(values if values is not None else [], dtype=np.float64)
    cuts = np.nonzero(np.isnan(v))[0]
    if cuts.size != at.size:
        raise ValueError(f"{at.size} BRANCH_MEMBER nodes but {cuts.size} NaN-ended member sets")
    sets = np.split(v, cuts + 1)[: at.size]
    out = np.full((modes.size, max(len(s) for s in sets)), np.nan)
    for i, s in zip(at, sets, strict=True):
        out[i, : len(s) - 1] = s[:-1]
    return out


def _forest_v5(node: NodeView) -> Forest:
    a = node.attr
    modes = np.asarray(a("nodes_modes"), dtype=np.int64).reshape(-1)
    tl, fl = np.asarray(a("nodes_trueleafs"), bool), np.asarray(a("nodes_falseleafs"), bool)
    ti, fi = np.asarray(a("nodes_truenodeids")), np.asarray(a("nodes_falsenodeids"))
    roots = np.asarray(a("tree_roots"), dtype=np.int64)
    # a tree that is one leaf: both branches name the same leaf
    lone = tl[roots] & fl[roots] & (ti[roots] == fi[roots])
    roots = np.where(lone, ~ti[roots], roots)
    targets = np.asarray(a("leaf_targetids"), dtype=np.int64)
    weights = np.asarray(a("leaf_weights"), dtype=np.float64).reshape(-1)
    miss = a("nodes_missing_value_tracks_true") or [0] * modes.size
    return Forest(roots, modes, np.asarray(a("nodes_featureids"), dtype=np.int64),
                  np.asarray(a("nodes_splits"), dtype=np.float64).reshape(-1),
                  np.where(tl, ~ti, ti), np.where(fl, ~fi, fi), np.asarray(miss, bool),
                  _members(modes, a("membership_values")),
                  (np.arange(targets.size), targets, weights),
                  a("n_targets") or int(targets.max(initial=-1)) + 1)  # fmt: skip


def _tensor_or(node: NodeView, name: str):
    v = node.attr(f"{name}_as_tensor")
    return node.attr(name) if v is None else np.asarray(v).reshape(-1).tolist()


def _forest_v1(node: NodeView, prefix: str, n_targets: int) -> Forest:
    """TreeEnsembleRegressor/Classifier's (tree id, node id) form; ``prefix`` is ``target``
    or ``class`` (the vote attributes)."""
    a = node.attr
    trees, ids = a("nodes_treeids") or [], a("nodes_nodeids") or []
    pos = {(t, n): i for i, (t, n) in enumerate(zip(trees, ids, strict=True))}
    try:
        modes = np.array([_MODES[m] for m in a("nodes_modes") or []], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"unknown node mode {e.args[0]!r}") from None
    if (modes == 6).any():
        raise ValueError("BRANCH_MEMBER exists only in TreeEnsemble (ai.onnx.ml 5)")

    def child(i: int, kid: int) -> int:
        j = pos.get((trees[i], kid))
        if j is None:
            raise ValueError(f"tree {trees[i]} has no node {kid}")
        return ~j if modes[j] < 0 else j

    branch = np.nonzero(modes >= 0)[0]
    tn, fn = np.zeros(modes.size, np.int64), np.zeros(modes.size, np.int64)
    for i in branch:
        tn[i], fn[i] = child(i, a("nodes_truenodeids")[i]), child(i, a("nodes_falsenodeids")[i])
    kids = {~c if c < 0 else c for c in (*tn[branch], *fn[branch])}
    roots = [i for i in range(modes.size) if i not in kids]
    if len(roots) != len(set(trees)):
        raise ValueError(f"{len(set(trees))} trees but {len(roots)} nodes no branch leads to")
    roots = np.array([~i if modes[i] < 0 else i for i in roots], dtype=np.int64)
    vt, vn = a(f"{prefix}_treeids") or [], a(f"{prefix}_nodeids") or []
    leaf = np.array([pos.get((t, n), -1) for t, n in zip(vt, vn, strict=True)], dtype=np.int64)
    if (leaf < 0).any():
        raise ValueError("a vote names a node that does not exist")
    miss = a("nodes_missing_value_tracks_true") or [0] * modes.size
    return Forest(roots, modes, np.asarray(a("nodes_featureids"), dtype=np.int64),
                  np.asarray(_tensor_or(node, "nodes_values") or [0.0] * modes.size, np.float64),
                  tn, fn, np.asarray(miss, bool), None,
                  (leaf, np.asarray(a(f"{prefix}_ids"), dtype=np.int64),
                   np.asarray(_tensor_or(node, f"{prefix}_weights"), dtype=np.float64)),
                  n_targets)  # fmt: skip


def _tree_input(x, ctx, node: NodeView) -> np.ndarray:
    if grad(x):
        ctx.module._note_nograd(node)  # piecewise constant in x: no gradient
    a = np.asarray(x.data, dtype=np.float64)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise node.fail(f"the input must have shape [N, F], got {list(x.shape)}")
    return a


def _build_v5(node: NodeView) -> Forest:
    if node.attr("aggregate_function", 1) not in range(4):
        raise ValueError(f"aggregate_function {node.attr('aggregate_function')} is not 0..3")
    if node.attr("post_transform", 0) not in range(5):
        raise ValueError(f"post_transform {node.attr('post_transform')} is not 0..4")
    return _forest_v5(node)


def _build_regressor(node: NodeView) -> Forest:
    how, post = node.attr("aggregate_function", "SUM"), node.attr("post_transform", "NONE")
    if how not in ("SUM", "AVERAGE", "MIN", "MAX") or post not in _POST:
        raise ValueError(f"aggregate_function {how!r} or post_transform {post!r} is unknown")
    k = node.attr("n_targets") or max(node.attr("target_ids") or [0]) + 1
    return _forest_v1(node, "target", k)


def _build_classifier(node: NodeView) -> Forest:
    labels = node.attr("classlabels_strings") or node.attr("classlabels_int64s")
    post = node.attr("post_transform", "NONE")
    if not labels or post not in _POST:
        raise ValueError(f"no class labels, or post_transform {post!r} is unknown")
    f = _forest_v1(node, "class", len(labels))
    if len(labels) == 2:
        # sklearn-onnx's one-score encoding only; onnxruntime's other two-class conventions
        # (votes for class 1, two base values) do not give the spec's top class
        if (f.target.size and f.target.max() > 0) or len(_tensor_or(node, "base_values") or []) > 1:
            raise ValueError("two classes take votes for class 0 only and at most one base value")
        if post == "PROBIT":
            raise ValueError("post_transform PROBIT with two classes gives one score, not two")
    return f


def _tree_check(build):
    def check(node: NodeView) -> str | None:
        try:
            node.state["forest"] = build(node)
        except (ValueError, IndexError, TypeError) as e:
            return f"malformed or unsupported trees: {e}"
        return None

    return check


def _forest(node: NodeView, build) -> Forest:
    if "forest" not in node.state and (why := _tree_check(build)(node)):
        raise node.fail(why)
    return node.state["forest"]


def _regress(scores: np.ndarray, hit: np.ndarray, base, post: str, ctx, node: NodeView):
    if base is not None and len(base):
        scores = np.where(hit, scores + np.asarray(base, np.float64), 0.0)
    # NOTE: with one target onnxruntime applies only PROBIT; the spec's transform is applied
    return post_transform(post, wrap(scores), ctx, node).data


@register("TreeEnsemble", domain=ML, since=5, check=_tree_check(_build_v5))
def tree_ensemble(ctx, node, inputs):
    x = inputs[0]
    f = _forest(node, _build_v5)
    how = ("AVERAGE", "SUM", "MIN", "MAX")[node.attr("aggregate_function", 1)]
    s, hit = f.scores(_tree_input(x, ctx, node), how, node)
    # NOTE: the spec's post_transform codes are followed (1 SOFTMAX, 2 LOGISTIC); onnxruntime
    # 1.2x reads 1 as LOGISTIC and 2 as SOFTMAX
    y = _regress(s, hit, None, _POST[node.attr("post_transform", 0)], ctx, node)
    return wrap(y.astype(x.dtype))


@register("TreeEnsembleRegressor", domain=ML, check=_tree_check(_build_regressor))
def tree_ensemble_regressor(ctx, node, inputs):
    f, a = _forest(node, _build_regressor), node.attr
    s, hit = f.scores(_tree_input(inputs[0], ctx, node), a("aggregate_function", "SUM"), node)
    y = _regress(s, hit, _tensor_or(node, "base_values"), a("post_transform", "NONE"), ctx, node)
    return wrap(y.astype(np.float32))


@register("TreeEnsembleClassifier", domain=ML, check=_tree_check(_build_classifier))
def tree_ensemble_classifier(ctx, node, inputs):
    f, a = _forest(node, _build_classifier), node.attr
    labels = a("classlabels_strings") or a("classlabels_int64s")
    s, hit = f.scores(_tree_input(inputs[0], ctx, node), "SUM", node)
    base = np.asarray(_tensor_or(node, "base_values") or [], np.float64)
    post = a("post_transform", "NONE")
    if len(labels) == 2:
        return _binary_trees(f, s, hit, base, labels, post)
    if base.size:
        s, hit = s + base, np.ones_like(hit)
    pick = np.argmax(np.where(hit, s, -np.inf), axis=1)  # among the classes with a score
    z = post_transform(post, wrap(s.astype(np.float32)), ctx, node)
    return wrap(_labels(labels, pick)), z


def _binary_trees(f: Forest, s, hit, base, labels, post: str):
    """sklearn-onnx's two classes: one score s (votes for class 0), labels[s > 0.5] and scores
    [1 - s, s] when every weight is >= 0, else labels[s > 0] and [-s, s]; LOGISTIC scores
    [sigmoid(-s), sigmoid(s)]. A sample no vote reached scores s = 0, base value or not."""
    s = np.where(hit[:, :1], s[:, :1] + (base[0] if base.size else 0.0), 0.0)
    positive = bool((f.weight >= 0).all())
    pick = (s[:, 0] > (0.5 if positive else 0.0)).astype(np.int64)
    if post == "LOGISTIC":
        z = np.concatenate([1 / (1 + np.exp(s)), 1 / (1 + np.exp(-s))], axis=1)
    else:
        z = np.concatenate([1 - s if positive else -s, s], axis=1)
    return wrap(_labels(labels, pick)), wrap(z.astype(np.float32))
