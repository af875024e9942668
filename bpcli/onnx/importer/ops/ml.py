"""Import of the classic-ML domain ``ai.onnx.ml`` (the ops sklearn-onnx and onnxmltools emit):
ArrayFeatureExtractor, Binarizer, LabelEncoder (opsets 1, 2, 4), CategoryMapper, Imputer,
OneHotEncoder, FeatureVectorizer, Scaler, Normalizer, LinearRegressor, LinearClassifier; the
tree ensembles are in ``trees``.

Scaler, Normalizer, Imputer, ArrayFeatureExtractor, FeatureVectorizer and the linear models
compose engine ops, so gradients reach their float inputs (coefficients are attributes, hence
constants). Trees, Binarizer, LabelEncoder, CategoryMapper and OneHotEncoder are piecewise
constant or discrete: no gradient.

Where the spec is silent, onnxruntime's behaviour is followed: post transforms as in its
``ml_common.h`` (PROBIT is Winitzki's erfinv approximation, as there and in onnx's reference),
a binary LinearClassifier (one coefficient row) scores
``[1 - s, s]``, a tree regressor adds its base value only to targets some leaf voted for. The
two-class TreeEnsembleClassifier is taken in the one-score encoding sklearn-onnx writes (every
vote for class 0); onnxruntime's other two-class conventions do not give the spec's "top
class" and are refused. Where the spec speaks, it wins over onnxruntime (noted at each place).
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.ops.text import strings
from bpcli.onnx.importer.table import NodeView, register, wrap

ML = "ai.onnx.ml"
_POST = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")  # TreeEnsemble's enum order


def _is_str(t) -> bool:
    return np.asarray(t.data).dtype.kind in "OU"


def _as_float32(x):
    """The input as float32, still on the gradient path when it is a float."""
    if x.dtype == np.float32:
        return x
    if grad(x) and x.dtype.kind == "f":
        return F.astype(x, np.float32)
    return wrap(np.asarray(x.data, dtype=np.float32))


def _rows(x, node: NodeView):
    """A [C] or [N, C] input as [N, C] (the linear models and Normalizer take no more)."""
    if x.ndim == 1:
        return F.reshape(x, (1, x.shape[0])) if grad(x) else wrap(x.data.reshape(1, -1))
    if x.ndim != 2:
        raise node.fail(f"the input must have shape [C] or [N, C], got {list(x.shape)}")
    return x


# -- element maps ---------------------------------------------------------------------------


@register("ArrayFeatureExtractor", domain=ML)
def array_feature_extractor(ctx, node, inputs):
    x, idx = inputs
    i = np.asarray(idx.data, dtype=np.int64).reshape(-1)
    n = x.shape[-1]
    if i.size and (i.min() < 0 or i.max() >= n):
        raise node.fail(f"indices {i.tolist()} out of range for a last axis of {n}")
    shape = (1, i.size) if x.ndim == 1 else (*x.shape[:-1], i.size)
    if not grad(x):
        a = np.take(np.asarray(x.data), i, axis=-1)
        return wrap((a.astype(object) if a.dtype.kind == "U" else a).reshape(shape))
    return F.reshape(F.index_select(x, x.ndim - 1, i), shape)


@register("Binarizer", domain=ML)
def binarizer(ctx, node, inputs):
    """y = 1 where x > threshold else 0 (NaN gives 0, as onnx's reference)."""
    x = inputs[0]
    if grad(x):
        ctx.module._note_nograd(node)
    t = node.attr("threshold", 0.0)
    return wrap((np.asarray(x.data) > t).astype(x.dtype))


@register("Imputer", domain=ML)
def imputer(ctx, node, inputs):
    """y = imputed where x == replaced (NaN matches NaN) else x."""
    x = inputs[0]
    floats = x.dtype.kind == "f"
    imp = node.attr("imputed_value_floats" if floats else "imputed_value_int64s") or []
    rep = node.attr("replaced_value_float", 0.0) if floats else node.attr("replaced_value_int64", 0)
    if len(imp) not in (1, x.shape[-1] if x.ndim else 1):
        raise node.fail(f"{len(imp)} imputed values for {x.shape[-1]} features (need 1 or F)")
    mask = np.isnan(x.data) if floats and np.isnan(rep) else x.data == rep
    fill = np.asarray(imp, dtype=x.dtype)
    if not grad(x):
        return wrap(np.where(mask, fill, x.data))
    return F.where(wrap(mask), wrap(np.broadcast_to(fill, x.shape).copy()), x)


@register("OneHotEncoder", domain=ML)
def one_hot_encoder(ctx, node, inputs):
    x = inputs[0]
    if _is_str(x):
        cats, vals = node.attr("cats_strings") or [], strings(x, node)
    else:
        cats, vals = node.attr("cats_int64s") or [], np.asarray(x.data).astype(np.int64)
    if not cats:
        raise node.fail(f"cats_{'strings' if _is_str(x) else 'int64s'} is required for this input")
    table = {c: k for k, c in enumerate(cats)}
    pos = np.array([table.get(v, -1) for v in vals.reshape(-1).tolist()], dtype=np.int64)
    if not node.attr("zeros", 1) and (pos < 0).any():
        bad = vals.reshape(-1)[np.argmax(pos < 0)]
        raise node.fail(f"category {bad!r} is not among the categories (and zeros=0)")
    y = (pos[:, None] == np.arange(len(cats))).astype(np.float32)
    return wrap(y.reshape(*x.shape, len(cats)))


# -- LabelEncoder ---------------------------------------------------------------------------


def _label_map(node: NodeView, x_is_str: bool):
    """(keys, values, default, output dtype) of a LabelEncoder node."""
    a = node.attr
    if node.opset < 2:
        classes = a("classes_strings") or []
        if x_is_str:
            return classes, list(range(len(classes))), a("default_int64", -1), np.int64
        return list(range(len(classes))), classes, a("default_string", "_Unused"), object
    keys = next((a(k) for k in ("keys_strings", "keys_int64s", "keys_floats", "keys_tensor")
                 if a(k) is not None), None)  # fmt: skip
    if keys is None:
        raise node.fail("LabelEncoder needs one keys_* attribute")
    for name, dflt, dt in (("strings", "_Unused", object), ("int64s", -1, np.int64),
                           ("floats", -0.0, np.float32)):  # fmt: skip
        if a(f"values_{name}") is not None:
            return keys, a(f"values_{name}"), a(f"default_{name[:-1]}", dflt), dt
    vals = a("values_tensor")
    if vals is None:
        raise node.fail("LabelEncoder needs one values_* attribute")
    dt = np.dtype(object) if vals.dtype.kind in "OU" else vals.dtype
    d = a("default_tensor")
    if d is None:
        d = "_Unused" if dt.kind == "O" else (-0.0 if dt.kind == "f" else -1)
    else:
        d = np.asarray(d).reshape(-1)[0]
    return keys, vals, d, dt


@register("LabelEncoder", domain=ML)
def label_encoder(ctx, node, inputs):
    """y = values[i] where x == keys[i] (a NaN key matches NaN), else the default.

    NOTE: onnxruntime keeps the first of repeated keys at opset 4 too, and matches no NaN
    before opset 4; bpcli follows the spec (the last wins; NaN keys match, "bit-wise").
    """
    x = inputs[0]
    keys, vals, default, dt = _label_map(node, _is_str(x))
    # opset 4 says the last of repeated keys wins; before it, the first (as onnxruntime has it)
    return _lookup(x, keys, vals, default, dt, node, last_wins=node.opset >= 4)


@register("CategoryMapper", domain=ML)
def category_mapper(ctx, node, inputs):
    """Strings to int64 (cats_strings[i] -> cats_int64s[i]) or back, by the input's type."""
    x, a = inputs[0], node.attr
    ss, ii = a("cats_strings") or [], a("cats_int64s") or []
    # a repeated category maps to its last partner (as onnxruntime's map insertion does)
    if _is_str(x):
        return _lookup(x, ss, ii, a("default_int64", -1), np.int64, node, last_wins=True)
    return _lookup(x, ii, ss, a("default_string", "_Unused"), object, node, last_wins=True)


def _lookup(x, keys, vals, default, dt, node: NodeView, last_wins: bool):
    flat = (strings(x, node) if _is_str(x) else np.asarray(x.data)).reshape(-1)
    keys, vals = np.asarray(keys).reshape(-1).tolist(), np.asarray(vals).reshape(-1).tolist()
    if len(keys) != len(vals):
        raise node.fail(f"{len(keys)} keys but {len(vals)} values")
    pairs = list(zip(keys, vals, strict=True))
    table = dict(pairs if last_wins else pairs[::-1])
    nan_val = next((v for k, v in pairs if k != k), default)
    out = np.empty(flat.size, dtype=dt)
    if flat.size:
        # look each distinct value up once
        uniq, inv = np.unique(flat, return_inverse=True)
        mapped = [table.get(u, default) if u == u else nan_val for u in uniq.tolist()]
        out[:] = np.asarray(mapped, dtype=dt)[inv.reshape(-1)]
    return wrap(out.reshape(x.shape))


@register("FeatureVectorizer", domain=ML)
def feature_vectorizer(ctx, node, inputs):
    """y = the inputs side by side as float32 [N, sum(inputdimensions)], each flattened to
    [N, C] and cut or zero-padded to its inputdimensions entry."""
    dims = node.attr("inputdimensions") or []
    if len(dims) != len(inputs):
        raise node.fail(f"inputdimensions has {len(dims)} entries for {len(inputs)} inputs")
    parts = []
    for x, d in zip(inputs, dims, strict=True):
        x = _as_float32(x)
        n = 1 if x.ndim <= 1 else x.shape[0]
        x = F.reshape(x, (n, x.numel() // max(n, 1)))
        if x.shape[1] > d:
            x = F.getitem(x, (slice(None), slice(0, d)))
        elif x.shape[1] < d:
            x = F.concat([x, wrap(np.zeros((n, d - x.shape[1]), np.float32))], 1)
        parts.append(x)
    if len({p.shape[0] for p in parts}) > 1:
        raise node.fail(f"the inputs' batch sizes differ: {[p.shape[0] for p in parts]}")
    return F.concat(parts, 1)


# -- linear models, Scaler, Normalizer ------------------------------------------------------


def _probit(p: np.ndarray) -> np.ndarray:
    """sqrt(2) erfinv(2p - 1) by Winitzki's approximation (a = 0.147), as onnxruntime."""
    x = 2 * p - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        ln = np.log((1 - x) * (1 + x))
        v = 2 / (np.pi * 0.147) + 0.5 * ln
        return np.sign(x) * np.sqrt(np.sqrt(v * v - ln / 0.147) - v) * np.sqrt(2)


def post_transform(name: str, s, ctx, node: NodeView):
    """ml_common's score transforms on [N, K] scores, through engine ops (PROBIT on arrays)."""
    if name == "NONE":
        return s
    if name == "LOGISTIC":
        return F.sigmoid(s)
    if name == "SOFTMAX":
        return F.softmax(s, -1)
    if name == "SOFTMAX_ZERO":
        # zero scores stay (about) zero and the rest share the mass; all zero gives 0.5 each
        top = wrap(s.data.max(axis=-1, keepdims=True))
        e = F.where(wrap(np.abs(s.data) > 1e-7), F.exp(F.sub(s, top)), F.mul(s, F.exp(F.neg(top))))
        tot = F.sum(e, -1, True)
        empty = tot.data == 0
        y = F.div(e, F.add(tot, wrap(empty.astype(s.dtype))))
        return F.where(wrap(np.broadcast_to(empty, s.shape)), wrap(np.array(0.5, s.dtype)), y)
    if name == "PROBIT":
        if grad(s):
            ctx.module._note_nograd(node)
        return wrap(_probit(np.asarray(s.data, np.float64)).astype(s.dtype))
    raise node.fail(f"post_transform {name!r} is not one of {', '.join(_POST)}")


def _linear(x, node: NodeView, n_out: int):
    """x [N, F] times the coefficients ([n_out, F], row-major) plus the intercepts."""
    coef = np.asarray(node.attr("coefficients") or [], dtype=np.float32)
    f = x.shape[1]
    if coef.size != n_out * f:
        raise node.fail(f"{coef.size} coefficients for {n_out} outputs of {f} features")
    b = np.asarray(node.attr("intercepts") or np.zeros(n_out), dtype=np.float32)
    if b.size != n_out:
        raise node.fail(f"{b.size} intercepts for {n_out} outputs")
    return F.add(F.matmul(x, wrap(coef.reshape(n_out, f).T.copy())), wrap(b))


@register("LinearRegressor", domain=ML)
def linear_regressor(ctx, node, inputs):
    x = _rows(_as_float32(inputs[0]), node)
    y = _linear(x, node, node.attr("targets", 1))
    # NOTE: with one target onnxruntime applies only PROBIT; the spec's transform is applied
    return post_transform(node.attr("post_transform", "NONE"), y, ctx, node)


@register("LinearClassifier", domain=ML)
def linear_classifier(ctx, node, inputs):
    x = _rows(_as_float32(inputs[0]), node)
    labels = node.attr("classlabels_strings") or node.attr("classlabels_ints")
    if not labels:
        raise node.fail("classlabels_strings or classlabels_ints is required")
    f = x.shape[1]
    rows = len(node.attr("coefficients") or []) // max(f, 1)
    post = node.attr("post_transform", "NONE")
    s = _linear(x, node, rows)
    if rows == 1 and len(labels) == 2:  # one score for the second class
        if post == "PROBIT":
            raise node.fail("post_transform PROBIT with one coefficient row (binary) has no "
                            "defined pair of scores")  # fmt: skip
        z = F.sigmoid(s) if post == "LOGISTIC" else s
        z = F.concat([F.sub(wrap(np.ones((1, 1), np.float32)), z), z], 1)
        pick = (s.data[:, 0] > 0).astype(np.int64)
    elif rows == len(labels):
        z, pick = post_transform(post, s, ctx, node), np.argmax(s.data, axis=1)
    else:
        raise node.fail(f"{rows} coefficient rows for {len(labels)} class labels")
    return wrap(_labels(labels, pick)), z


def _labels(labels, pick: np.ndarray) -> np.ndarray:
    kind = object if isinstance(labels[0], str) else np.int64
    return np.asarray(labels, dtype=kind)[pick] if pick.size else np.empty(0, kind)


@register("Scaler", domain=ML)
def scaler(ctx, node, inputs):
    """y = (x - offset) * scale, both of length 1 or C (the last axis)."""
    x = _as_float32(inputs[0])
    c = x.shape[-1] if x.ndim else 1
    parts = []
    for name, dflt in (("offset", 0.0), ("scale", 1.0)):
        v = np.asarray(node.attr(name) or [dflt], dtype=np.float32)
        if v.size not in (1, c):
            raise node.fail(f"{name} has {v.size} values for {c} features (need 1 or C)")
        parts.append(wrap(v))
    return F.mul(F.sub(x, parts[0]), parts[1])


@register("Normalizer", domain=ML)
def normalizer(ctx, node, inputs):
    """y = x / max(x), x / sum|x| or x / sqrt(sum x^2) per row; a zero divisor leaves x."""
    x = _rows(_as_float32(inputs[0]), node)
    norm = node.attr("norm", "MAX")
    if norm == "MAX":
        d = F.amax(x, 1, True)
    elif norm == "L1":
        d = F.sum(F.abs(x), 1, True)
    elif norm == "L2":
        d = F.sum(F.mul(x, x), 1, True)
    else:
        raise node.fail(f"norm {norm!r} is not MAX, L1 or L2")
    # a zero divisor becomes 1 (y = x there), which also keeps sqrt's gradient finite
    d = F.add(d, wrap((d.data == 0).astype(np.float32)))
    y = F.div(x, F.sqrt(d) if norm == "L2" else d)
    return y if inputs[0].ndim == 2 else F.reshape(y, (x.shape[1],))
