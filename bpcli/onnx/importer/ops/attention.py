"""Import of the transformer ops of opset 23 on: Attention (opsets 23, 24, 25),
RMSNormalization (23) and RotaryEmbedding (23).

Attention's masks (a boolean attn_mask, the causal frontier, the sliding window, the padding
given by nonpad_kv_seqlen) carry no gradient: they are built on numpy into one additive bias
of 0 and -inf. The scores, the soft cap, the softmax and the products with V are engine ops,
so gradients reach Q, K, V, past_key/past_value and a float attn_mask.

NOTE: with ``qk_matmul_output_mode=0`` and a soft cap, the qk_matmul_output is the raw
product Q K^T (the spec, the function body and onnxruntime agree; onnx's reference
implementation returns the capped scores there).
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer import minifloat
from bpcli.onnx.importer.table import NodeView, norm_axis, register, wrap

# TensorProto codes of the float types the engine computes in (softmax_precision, stash_type)
_PRECISIONS = {1: np.float32, 11: np.float64}
_NAMES = {1: "float", 10: "float16", 11: "double", 16: "bfloat16"}


def _opt(inputs, i):
    return inputs[i] if len(inputs) > i else None


def _widen(inputs):
    """float16/bfloat16 inputs widened to float32: the engine computes in float32/float64."""
    narrow = minifloat.is_narrow_float
    return [F.astype(t, np.float32) if t is not None and narrow(t.dtype) else t for t in inputs]


def _like(t, dtype):
    """``t`` rounded back to the dtype of a narrow float input."""
    return F.astype(t, dtype) if minifloat.is_narrow_float(dtype) else t


def _precision(node: NodeView, attr: str, code):
    if code not in _PRECISIONS:
        name = _NAMES.get(code, "unknown")
        raise node.fail(f"{attr}={code} ({name}) is not supported: the engine computes in "
                        "float (1) or double (11)")  # fmt: skip
    return np.dtype(_PRECISIONS[code])


# -- Attention -------------------------------------------------------------------------------


def _split_heads(node, x, n, what):
    """(B, L, n * D) -> (B, n, L, D)."""
    b, length, hidden = x.shape
    if hidden % n:
        raise node.fail(f"{what} hidden size {hidden} is not a multiple of {n} heads")
    return F.permute(F.reshape(x, (b, length, n, hidden // n)), 0, 2, 1, 3)


def _to_4d(node: NodeView, q, k, v):
    """Q, K, V as (batch, heads, length, head_size), and whether they came in 3-D."""
    hq, hkv = node.attr("q_num_heads"), node.attr("kv_num_heads")
    if q.ndim == k.ndim == v.ndim == 4:
        if (hq is not None and hq != q.shape[1]) or (hkv is not None and hkv != k.shape[1]):
            raise node.fail(f"q_num_heads={hq}, kv_num_heads={hkv} disagree with the 4-D "
                            f"Q {q.shape} and K {k.shape}")  # fmt: skip
        return q, k, v, False
    if not q.ndim == k.ndim == v.ndim == 3:
        raise node.fail(f"Q, K, V must be all 3-D or all 4-D, got {q.shape}, {k.shape}, {v.shape}")
    if not hq or not hkv:
        raise node.fail("3-D Q, K, V need the attributes q_num_heads and kv_num_heads")
    q = _split_heads(node, q, hq, "Q")
    return q, _split_heads(node, k, hkv, "K"), _split_heads(node, v, hkv, "V"), True


def _with_past(node, k, v, past_k, past_v):
    if past_k is None and past_v is None:
        return k, v
    if past_k is None or past_v is None:
        raise node.fail("past_key and past_value must be given together")
    return F.concat([past_k, k], axis=2), F.concat([past_v, v], axis=2)


def _repeat_heads(node, x, hq):
    """K or V with each of its heads repeated for the group of query heads that reads it."""
    h = x.shape[1]
    if h == hq:
        return x
    if hq % h:
        raise node.fail(f"{hq} query heads are not a multiple of {h} key/value heads")
    return F.repeat_interleave(x, hq // h, dim=1)  # query head i reads kv head i // (hq / h)


def _scores(node, q, k):
    """(Q K^T scale, the same after the soft cap)."""
    scale = node.attr("scale")
    scale = 1.0 / np.sqrt(q.shape[3]) if scale is None else scale
    # NOTE: the spec scales Q and K by sqrt(scale) each (against overflow), not the product.
    root = wrap(np.asarray(np.sqrt(scale), dtype=q.dtype))
    k = _repeat_heads(node, F.mul(k, root), q.shape[1])
    raw = F.matmul(F.mul(q, root), F.permute(k, 0, 1, 3, 2))
    cap = node.attr("softcap", 0.0)
    if not cap:
        return raw, raw
    return raw, F.mul(F.tanh(F.div(raw, cap)), cap)


def _allowed(node, q_len, total, offset, nonpad):
    """Keys each query may see by the causal frontier, the window and the padding: bool of
    shape (q, total), or (B, 1, q, total) when the offset or the padding is per batch."""
    pos = np.arange(q_len)[:, None] + offset  # absolute position of each query
    behind = pos - np.arange(total)  # how far key j lies behind the query
    ok = np.ones(behind.shape, dtype=bool)
    if node.attr("is_causal", 0):
        ok &= behind >= 0
    left, right = node.attr("left_window_size", -1), node.attr("right_window_size", -1)
    if left >= 0:
        ok &= behind <= left
    if right >= 0:
        ok &= -behind <= right
    if nonpad is not None:
        ok = ok & (np.arange(total) < nonpad[:, None, None])
    return ok[:, None] if ok.ndim == 3 else ok


def _offset(node, q_len, batch, past_k, nonpad):
    """Count of the valid keys before the query block (bottom-right causal alignment), and
    the per-batch count of valid keys (None without nonpad_kv_seqlen)."""
    if nonpad is None:
        return (0 if past_k is None else past_k.shape[2]), None
    if past_k is not None:
        raise node.fail("nonpad_kv_seqlen cannot be combined with past_key/past_value")
    n = np.asarray(nonpad.data).astype(np.int64).reshape(-1)
    if n.shape != (batch,):
        raise node.fail(f"nonpad_kv_seqlen must have shape ({batch},), got {nonpad.shape}")
    return (n - q_len)[:, None, None], n


def _pad_mask(node, mask, total):
    """attn_mask padded to ``total`` keys (masked out), as bool or as an additive float."""
    if mask.ndim == 0 or mask.ndim > 4:
        raise node.fail(f"attn_mask must have 1 to 4 dims, got shape {mask.shape}")
    short = total - mask.shape[-1]
    if short < 0:
        raise node.fail(f"attn_mask has {mask.shape[-1]} keys, more than the {total} of K")
    if mask.dtype == np.bool_:
        pad = [(0, 0)] * (mask.ndim - 1) + [(0, short)]
        return np.pad(mask.data, pad, constant_values=False)
    return F.pad(mask, (0, short), value=-np.inf) if short else mask


def _bias(node, mask, dtype, q_len, total, offset, nonpad):
    """The additive bias of every mask, and the rows it masks fully (None if there are none)."""
    ok = _allowed(node, q_len, total, offset, nonpad)
    if mask is not None and mask.dtype != np.bool_:
        mask = F.astype(mask, dtype)  # integer masks add too
    if mask is not None:
        mask = _pad_mask(node, mask, total)
        if isinstance(mask, np.ndarray):  # a boolean mask intersects the allowed set
            ok, mask = ok & mask, None
    bias = wrap(np.where(ok, 0.0, -np.inf).astype(dtype))
    if mask is not None:
        bias = F.add(mask, bias)
    full = np.isneginf(bias.data.max(axis=-1, keepdims=True))
    return bias, (full if full.any() else None)


def _softmax(node, scores, full, dtype):
    """softmax over the keys in softmax_precision; fully masked rows give 0, not NaN."""
    code = node.attr("softmax_precision")
    work = dtype if code is None else _precision(node, "softmax_precision", code)
    zero = wrap(np.zeros((), dtype=dtype))
    if full is not None:
        # NOTE: an all -inf row would give NaN in the forward and in the gradient.
        scores = F.where(wrap(full), zero, scores)
    p = F.astype(F.softmax(F.astype(scores, work), axis=-1), dtype)
    return p if full is None else F.where(wrap(full), zero, p)


def _check_attrs(node):
    mode = node.attr("qk_matmul_output_mode", 0)
    if mode not in (0, 1, 2, 3):
        raise node.fail(f"qk_matmul_output_mode={mode} is not one of 0, 1, 2, 3")
    for name in ("left_window_size", "right_window_size"):
        if node.attr(name, -1) < -1:
            raise node.fail(f"{name}={node.attr(name)} must be -1 or >= 0")
    return mode


@register("Attention", since=23)
def attention(ctx, node: NodeView, inputs):
    """Y = softmax(softcap(Q K^T scale) + bias) V, with present_key/value and the QK output."""
    mode = _check_attrs(node)
    dq, dk, dv = (t.dtype for t in inputs[:3])
    inputs = _widen(inputs)
    q, k, v, flat = _to_4d(node, *inputs[:3])
    mask, past_k, past_v, nonpad = (_opt(inputs, i) for i in range(3, 7))
    k, v = _with_past(node, k, v, past_k, past_v)
    if v.shape[1] != k.shape[1]:
        raise node.fail(f"K has {k.shape[1]} heads but V has {v.shape[1]}")
    raw, capped = _scores(node, q, k)
    b, hq, q_len = q.shape[:3]
    offset, nonpad = _offset(node, q_len, b, past_k, nonpad)
    bias, full = _bias(node, mask, q.dtype, q_len, k.shape[2], offset, nonpad)
    biased = F.add(capped, bias)
    probs = _softmax(node, biased, full, q.dtype)
    y = F.astype(F.matmul(F.astype(probs, v.dtype), _repeat_heads(node, v, hq)), q.dtype)
    if flat:
        y = F.reshape(F.permute(y, 0, 2, 1, 3), (b, q_len, hq * y.shape[3]))
    qk = (raw, capped, biased, probs)[mode]
    return _like(y, dq), _like(k, dk), _like(v, dv), _like(qk, dq)


# -- RMSNormalization ------------------------------------------------------------------------


@register("RMSNormalization", since=23)
def rms_norm(ctx, node: NodeView, inputs):
    """y = x / sqrt(mean(x^2 over axis..-1) + epsilon) * scale, stage one in stash_type."""
    dx, dscale = inputs[0].dtype, inputs[1].dtype
    x, scale = _widen(inputs[:2])
    axis = norm_axis(node.attr("axis", -1), x.ndim, node)
    stash = _precision(node, "stash_type", node.attr("stash_type", 1))
    xs = F.astype(x, stash)
    ms = F.mean(F.mul(xs, xs), tuple(range(axis, x.ndim)), True)
    y = F.astype(F.mul(xs, F.rsqrt(F.add(ms, node.attr("epsilon", 1e-5)))), dx)
    # NOTE: the engine never upcasts silently; Y takes the scale's type (V in the spec).
    return _like(F.mul(F.astype(y, scale.dtype), scale), dscale)


# -- RotaryEmbedding -------------------------------------------------------------------------


def _rope_layout(node, x):
    """x as (batch, seq, heads, head_size)."""
    if x.ndim == 4:
        return F.permute(x, 0, 2, 1, 3)
    if x.ndim != 3:
        raise node.fail(f"input must be 3-D or 4-D, got shape {x.shape}")
    n = node.attr("num_heads")
    if not n or x.shape[2] % n:
        raise node.fail(f"a 3-D input needs num_heads dividing its hidden size {x.shape[2]}, "
                        f"got num_heads={n}")  # fmt: skip
    return F.reshape(x, (*x.shape[:2], n, x.shape[2] // n))


def _rope_cache(node, cache, pos, b, s, half, what):
    """cos or sin as (batch, seq, 1, half): gathered at position_ids, or given per token."""
    if pos is not None:
        if cache.ndim != 2:
            raise node.fail(f"with position_ids, {what} must be 2-D, got {cache.shape}")
        cache = F.index_select(cache, 0, np.asarray(pos.data).astype(np.int64))
    if cache.shape != (b, s, half):
        raise node.fail(f"{what} gives shape {cache.shape}, expected {(b, s, half)}")
    return F.reshape(cache, (b, s, 1, half))


@register("RotaryEmbedding", since=23)
def rotary_embedding(ctx, node: NodeView, inputs):
    """(x1, x2) -> (cos x1 - sin x2, sin x1 + cos x2) on the first rotary_embedding_dim."""
    dx = inputs[0].dtype
    x, cos, sin = _widen(inputs[:3])
    pos = _opt(inputs, 3)
    xt = _rope_layout(node, x)
    b, s, _, d = xt.shape
    rdim = node.attr("rotary_embedding_dim", 0) or d
    if rdim % 2 or rdim > d:
        raise node.fail(f"rotary_embedding_dim={rdim} must be even and at most head size {d}")
    half = rdim // 2
    c = _rope_cache(node, cos, pos, b, s, half, "cos_cache")
    sn = _rope_cache(node, sin, pos, b, s, half, "sin_cache")
    rot = F.getitem(xt, (Ellipsis, slice(0, rdim)))
    inter = node.attr("interleaved", 0)
    pick = (slice(0, None, 2), slice(1, None, 2)) if inter else (slice(0, half), slice(half, None))
    x1, x2 = (F.getitem(rot, (Ellipsis, p)) for p in pick)
    real = F.sub(F.mul(c, x1), F.mul(sn, x2))
    imag = F.add(F.mul(sn, x1), F.mul(c, x2))
    if inter:
        rot = F.reshape(F.stack([real, imag], axis=-1), rot.shape)
    else:
        rot = F.concat([real, imag], axis=-1)
    if rdim < d:
        rot = F.concat([rot, F.getitem(xt, (Ellipsis, slice(rdim, None)))], axis=-1)
    y = F.permute(rot, 0, 2, 1, 3) if x.ndim == 4 else F.reshape(rot, x.shape)
    return _like(y, dx)
