"""Import of the ``ai.onnx.ml`` ops on map values: ZipMap, DictVectorizer and CastMap (all
opset 1, the only version onnx defines).

A map value is a Python ``dict`` (keys ``str`` or ``int``, values numpy scalars of the map's
value type) and a sequence of maps a ``list`` of them, as onnxruntime's Python API gives and
takes them; an input map may also hold Python numbers or 0-d Tensors. ZipMap ends every
classifier skl2onnx converts with its default options (``output_probability`` is a list of
``{label: probability}``); DictVectorizer is sklearn's ``DictVectorizer`` at the head of a
pipeline. None carries a gradient: map values are plain numbers (the summary says so when a
gradient stops at one of these nodes).

Where the spec is silent, onnxruntime's behaviour is followed: ZipMap takes ``[N, C]`` or
``[C]`` (one map) and returns each map with its keys in ascending order (a ``std::map``; a
repeated label keeps its last column); DictVectorizer's output has the map's value type
(Python numbers count as float32, as onnxruntime's binding reads them), keys outside the
vocabulary are ignored (as sklearn's ``DictVectorizer.transform`` does) and a vocabulary entry
given twice is filled twice; CastMap parses strings as C's ``stof``/``stoll`` (the longest
leading number; out of range is an error), truncates floats toward zero for TO_INT64, writes
floats as ``"%f"`` and pads a SPARSE string output with ``"0.f"``. Where the spec speaks it
wins: a SPARSE key outside ``[0, max_map)`` is an error (onnxruntime drops keys past the end).
NaN or infinity cast to int64 is an error (undefined in C++).
"""

from __future__ import annotations

import re

import numpy as np

from bpcli.engine.tensor import Tensor
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.table import NodeView, register, wrap

ML = "ai.onnx.ml"


def _one_of(v: NodeView, a: str, b: str) -> str | None:
    """A load-time check that exactly one of the list attributes ``a`` and ``b`` is given (an
    empty list counts as absent, as in onnxruntime)."""
    if bool(v.attr(a)) == bool(v.attr(b)):
        return f"exactly one of {a} and {b} must be given"
    return None


def _map(ctx, x, ints: bool, node: NodeView) -> dict:
    """The input map with checked keys (``int`` or ``str``) and scalar values (a 0-d Tensor
    gives its data: the gradient stops here, as map values are plain numbers)."""
    if not isinstance(x, dict):
        got = "a sequence" if isinstance(x, list) else "no value" if x is None else "a tensor"
        raise node.fail(f"the input must be a map (a Python dict), got {got}")
    out = {}
    for k, v in x.items():
        if isinstance(v, Tensor):
            if grad(v):
                ctx.module._note_nograd(node)
            v = v.data
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v[()]
        if not isinstance(v, str | int | float | np.number):
            raise node.fail(f"map values must be strings or numbers, got {type(v).__name__}")
        out[_key(k, ints, node)] = v
    return out


def _key(k, ints: bool, node: NodeView):
    if ints and isinstance(k, int | np.integer) and not isinstance(k, bool):
        return int(k)
    if not ints and isinstance(k, str):
        return str(k)
    want = "int64" if ints else "string"
    raise node.fail(f"the map has a {type(k).__name__} key {k!r}; {want} keys are expected")


def _value_dtype(values: list, node: NodeView) -> np.dtype:
    """The map's value type: numpy scalars say it; Python numbers are float32, as onnxruntime's
    Python binding reads them (it feeds float-valued maps only); an empty map is taken as float."""
    n_str = sum(isinstance(v, str) for v in values)
    if n_str:
        if n_str < len(values):
            raise node.fail("the map's values mix strings and numbers")
        return np.dtype(object)
    kinds = [v.dtype if isinstance(v, np.generic) else np.dtype(np.float32) for v in values]
    return np.result_type(*kinds) if kinds else np.dtype(np.float32)


# -- ZipMap ---------------------------------------------------------------------------------


@register("ZipMap", domain=ML, check=lambda v: _one_of(v, "classlabels_strings",
                                                         "classlabels_int64s"))  # fmt: skip
def zip_map(ctx, node: NodeView, inputs):
    """Z[n] = {label[c]: X[n, c]}: one map per row of X, a [C] X giving one map."""
    x = inputs[0]
    if grad(x):
        ctx.module._note_nograd(node)
    labels = node.attr("classlabels_strings") or [int(k) for k in node.attr("classlabels_int64s")]
    if x.ndim not in (1, 2):
        raise node.fail(f"X must have shape [C] or [N, C], got {list(x.shape)}")
    if x.shape[-1] != len(labels):
        raise node.fail(f"X has {x.shape[-1]} columns for {len(labels)} class labels")
    if x.dtype.kind != "f":
        raise node.fail(f"X must be a float tensor, got {x.dtype}")
    rows = np.asarray(x.data).reshape(-1, len(labels))
    order = sorted(range(len(labels)), key=lambda c: labels[c])
    # a label given twice keeps its last column, as a std::map assigned column by column
    last = {labels[c]: c for c in range(len(labels))}
    order = [c for c in order if last[labels[c]] == c]
    return [{labels[c]: row[c] for c in order} for row in rows]


# -- DictVectorizer -------------------------------------------------------------------------


@register("DictVectorizer", domain=ML, check=lambda v: _one_of(v, "string_vocabulary",
                                                                 "int64_vocabulary"))  # fmt: skip
def dict_vectorizer(ctx, node: NodeView, inputs):
    """Y[0, i] = X[vocabulary[i]], 0 (or "") where the map lacks that key: shape [1, V]."""
    vocab = node.attr("string_vocabulary") or [int(k) for k in node.attr("int64_vocabulary")]
    ints = not node.attr("string_vocabulary")
    m = _map(ctx, inputs[0], ints, node)
    dtype = _value_dtype(list(m.values()), node)
    pad = "" if dtype.kind == "O" else 0
    out = np.empty((1, len(vocab)), dtype=dtype)
    out[0, :] = [m.get(k, pad) for k in vocab]
    return wrap(out)


# -- CastMap --------------------------------------------------------------------------------

_CAST = {"TO_FLOAT": np.float32, "TO_INT64": np.int64, "TO_STRING": object}
_FORMS = ("DENSE", "SPARSE")
# the longest leading number C's strtof / strtoll read (after leading white space)
_FLOAT = re.compile(r"\s*([+-]?)(?:(0x(?:[\da-f]+\.?[\da-f]*|\.[\da-f]+)(?:p[+-]?\d+)?)"
                    r"|((?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan))",
                    re.IGNORECASE | re.ASCII)  # fmt: skip
_INT = re.compile(r"\s*([+-]?\d+)", re.ASCII)


def _cast_map_check(v: NodeView) -> str | None:
    if v.attr("cast_to", "TO_FLOAT") not in _CAST:
        return f"cast_to {v.attr('cast_to')!r} is not one of {', '.join(_CAST)}"
    if v.attr("map_form", "DENSE") not in _FORMS:
        return f"map_form {v.attr('map_form')!r} is not DENSE or SPARSE"
    if v.attr("map_form") == "SPARSE" and v.attr("max_map", 1) < 0:
        return f"max_map {v.attr('max_map')} is negative"
    return None


def _parse_float(s: str, node: NodeView) -> np.float32:
    hit = _FLOAT.match(s)
    if hit is None:
        raise node.fail(f"cannot read {s!r} as a float")
    sign, hexa, dec = hit.groups()
    d = float.fromhex(sign + hexa) if hexa else float(sign + dec)
    with np.errstate(over="ignore"):
        f = np.float32(d)
    # stof refuses what float32 cannot hold: overflow to inf, underflow to 0
    if (np.isinf(f) and np.isfinite(d)) or (f == 0 and d != 0):
        raise node.fail(f"{s!r} is out of the float range")
    return f


def _parse_int(s: str, node: NodeView) -> int:
    hit = _INT.match(s)
    if hit is None:
        raise node.fail(f"cannot read {s!r} as an int64")
    v = int(hit.group(1))
    if not -(2**63) <= v < 2**63:
        raise node.fail(f"{s!r} is out of the int64 range")
    return v


def _cast(v, to, node: NodeView):
    """One map value as ``to`` by onnxruntime's rules (the map holds strings or floats)."""
    if isinstance(v, str):
        if to is object:
            return str(v)
        return _parse_int(v, node) if to is np.int64 else _parse_float(v, node)
    f = np.float32(v)
    if to is np.float32:
        return f
    if to is object:
        return f"{float(f):f}"  # std::to_string(float)
    if not np.isfinite(f) or not -(2.0**63) <= f < 2.0**63:
        raise node.fail(f"cannot cast {float(f)} to int64")
    return int(f)  # truncates toward zero, as static_cast


@register("CastMap", domain=ML, check=_cast_map_check)
def cast_map(ctx, node: NodeView, inputs):
    """Y = the map's values in ascending key order, cast: [1, len(X)] (DENSE), or [1, max_map]
    with Y[0, k] = X[k] and 0 ("0.f" for strings) where X has no key k (SPARSE)."""
    m = _map(ctx, inputs[0], True, node)
    to = _CAST[node.attr("cast_to", "TO_FLOAT")]
    keys = sorted(m)
    values = [_cast(m[k], to, node) for k in keys]
    if node.attr("map_form", "DENSE") == "DENSE":
        out = np.empty((1, len(values)), dtype=to)
        out[0, :] = values
        return wrap(out)
    size = node.attr("max_map", 1)
    bad = [k for k in keys if not 0 <= k < size]
    if bad:
        raise node.fail(f"SPARSE keys must lie in [0, max_map={size}), got {bad[:5]}")
    out = np.full((1, size), "0.f" if to is object else 0, dtype=to)
    out[0, keys] = values
    return wrap(out)
