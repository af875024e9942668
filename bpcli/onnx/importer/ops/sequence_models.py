"""Import of the newest sequence-model ops: Swish (opset 24), SwiGLU (28), TensorScatter (24),
CausalConvWithState (27), LinearAttention (27) and FlexAttention (ai.onnx.preview 1).

All compose engine ops, so gradients reach every float input: TensorScatter is one gather from
the past cache and the update side by side (the slot map is numpy), CausalConvWithState a
depthwise ``conv1d`` over the state and the input joined, LinearAttention its recurrence run
token by token (the backward graph is the unrolled scan), and FlexAttention the scaled scores
of :mod:`bpcli.onnx.importer.ops.attention` with its score_mod/prob_mod subgraphs run in between
(a :class:`bpcli.onnx.importer.graph.Subgraph`, as If and Loop run theirs), so gradients also
reach the
values those subgraphs read from the enclosing graph.
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer.graph import Subgraph
from bpcli.onnx.importer.ops.attention import _opt, _precision, _repeat_heads, _scores
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.table import NodeView, norm_axis, register, wrap

# -- Swish, SwiGLU ---------------------------------------------------------------------------


def _swish(x, alpha: float):
    if alpha == 1.0:
        return F.silu(x)  # one op with its own VJP
    return F.mul(x, F.sigmoid(F.mul(x, alpha)))


@register("Swish", since=24)
def swish(ctx, node: NodeView, inputs):
    """y = x sigmoid(alpha x)."""
    return _swish(inputs[0], node.attr("alpha", 1.0))


@register("SwiGLU", since=28)
def swiglu(ctx, node: NodeView, inputs):
    """y = swish_alpha(a) b, a and b of one shape (the spec does not broadcast)."""
    a, b = inputs[:2]
    if a.shape != b.shape:
        raise node.fail(f"A {a.shape} and B {b.shape} must have the same shape")
    return F.mul(_swish(a, node.attr("alpha", 1.0)), b)


# -- TensorScatter ---------------------------------------------------------------------------


def _scatter_axis(node: NodeView, past, update) -> int:
    axis = norm_axis(node.attr("axis", -2), past.ndim, node)
    if axis == 0:
        raise node.fail("axis=0 is the batch axis: the sequence axis must be another one")
    same = all(p == u for i, (p, u) in enumerate(zip(past.shape, update.shape)) if i != axis)
    if update.ndim != past.ndim or not same or update.shape[axis] > past.shape[axis]:
        raise node.fail(f"update {update.shape} does not fit past_cache {past.shape} "
                        f"along axis {axis}")  # fmt: skip
    return axis


def _slots(node: NodeView, indices, batch: int, size: int, length: int) -> np.ndarray:
    """(batch, size): which element of concat(past, update) each cache slot takes."""
    start = np.zeros(batch, np.int64)
    if indices is not None:
        start = np.asarray(indices.data).astype(np.int64).reshape(-1)
        if start.shape != (batch,):
            raise node.fail(f"write_indices must have shape ({batch},), got {indices.shape}")
    pos = start[:, None] + np.arange(length)
    mode = node.attr("mode", "linear")
    if mode == "circular":
        pos %= size
    elif mode != "linear":
        raise node.fail(f"mode={mode!r} is not one of 'linear', 'circular'")
    elif length and (pos.min() < 0 or pos.max() >= size):
        raise node.fail(f"write_indices {start.tolist()} + {length} new entries run past the "
                        f"{size} slots of the cache (mode 'linear')")  # fmt: skip
    src = np.tile(np.arange(size), (batch, 1))
    src[np.arange(batch)[:, None], pos] = size + np.arange(length)
    return src


@register("TensorScatter", since=24)
def tensor_scatter(ctx, node: NodeView, inputs):
    """present = past_cache with update written at write_indices along the sequence axis."""
    past, update = inputs[:2]
    axis = _scatter_axis(node, past, update)
    size = past.shape[axis]
    src = _slots(node, _opt(inputs, 2), past.shape[0], size, update.shape[axis])
    shape = (past.shape[0],) + (1,) * (axis - 1) + (size,) + (1,) * (past.ndim - axis - 1)
    index = np.ascontiguousarray(np.broadcast_to(src.reshape(shape), past.shape))
    if grad(past, update):
        return F.gather(F.concat([past, update], axis), axis, index)
    both = np.concatenate([past.data, update.data], axis)  # any dtype, strings too
    return wrap(np.take_along_axis(both, index, axis))


# -- CausalConvWithState ---------------------------------------------------------------------


def _conv_shapes(node: NodeView, x, w, bias, past):
    if x.ndim != 3 or w.ndim != 3 or w.shape[:2] != (x.shape[1], 1):
        raise node.fail(f"input {x.shape} and weight {w.shape} must be (B, C, L) and (C, 1, k)")
    if bias is not None and bias.shape != (x.shape[1],):
        raise node.fail(f"bias must have shape ({x.shape[1]},), got {bias.shape}")
    want = (x.shape[0], x.shape[1], w.shape[2] - 1)
    if past is not None and past.shape != want:
        raise node.fail(f"past_state must have shape {want}, got {past.shape}")


@register("CausalConvWithState", since=27)
def causal_conv_with_state(ctx, node: NodeView, inputs):
    """y = act(depthwise_conv1d(concat(past_state or 0, x), W) + b); state = last k-1 steps."""
    x, w = inputs[:2]
    bias, past = _opt(inputs, 2), _opt(inputs, 3)
    act = node.attr("activation", "none")
    if act not in ("none", "silu", "swish"):
        raise node.fail(f"activation={act!r} is not one of 'none', 'silu', 'swish'")
    _conv_shapes(node, x, w, bias, past)
    k = w.shape[2]
    padded = F.pad(x, (k - 1, 0)) if past is None else F.concat([past, x], axis=2)
    y = F.conv1d(padded, w, bias, groups=x.shape[1])
    state = F.getitem(padded, (slice(None), slice(None), slice(x.shape[2], None)))
    return (y if act == "none" else F.silu(y)), state


# -- LinearAttention -------------------------------------------------------------------------

# update_rule -> (decays the state, corrects by the delta rule)
_RULES = {"linear": (False, False), "gated": (True, False), "delta": (False, True),
          "gated_delta": (True, True)}  # fmt: skip


def _heads(node: NodeView):
    hq, hkv = node.attr("q_num_heads"), node.attr("kv_num_heads")
    if hq is None or hkv is None or hq <= 0 or hkv <= 0 or hq % hkv:
        raise node.fail(f"q_num_heads={hq} must be a positive multiple of kv_num_heads={hkv}")
    return hq, hkv


def _rule(node: NodeView, decay, beta):
    rule = node.attr("update_rule", "gated_delta")
    if rule not in _RULES:
        raise node.fail(f"update_rule={rule!r} is not one of {', '.join(map(repr, _RULES))}")
    gated, delta = _RULES[rule]
    for given, needed, what in ((decay, gated, "decay"), (beta, delta, "beta")):
        if needed != (given is not None):
            verb = "needs a" if needed else "takes no"
            raise node.fail(f"update_rule={rule!r} {verb} {what} input")
    return gated, delta


def _dims(node: NodeView, q, k, v, hq, hkv):
    """(B, T, d_k, d_v) of the packed (B, T, H * D) inputs."""
    if not q.ndim == k.ndim == v.ndim == 3:
        raise node.fail(f"query, key, value must be 3-D, got {q.shape}, {k.shape}, {v.shape}")
    b, t, dk = q.shape[0], q.shape[1], q.shape[2] // hq
    dv = v.shape[2] // hkv
    if (q.shape[2] % hq or v.shape[2] % hkv or k.shape != (b, t, hkv * dk)
            or v.shape[:2] != (b, t)):  # fmt: skip
        raise node.fail(f"query {q.shape}, key {k.shape}, value {v.shape} do not split into "
                        f"{hq} query and {hkv} key/value heads")  # fmt: skip
    return b, t, dk, dv


def _gate_shape(node: NodeView, x, what, b, t, hkv, dk):
    """decay (B, T, H_kv [* d_k]) as (B, T, H_kv, d_k or 1, 1); beta (B, T, H_kv or 1) as
    (B, T, H_kv or 1, 1, 1)."""
    other = hkv * dk if what == "decay" else 1
    if x.ndim != 3 or x.shape[:2] != (b, t) or x.shape[2] not in (hkv, other):
        raise node.fail(f"{what} must have shape ({b}, {t}, {hkv} or {other}), got {x.shape}")
    if x.shape[2] == hkv:
        return (b, t, hkv, 1, 1)
    return (b, t, hkv, dk, 1) if what == "decay" else (b, t, 1, 1, 1)


def _steps(x, shape):
    """x reshaped to ``shape`` (B, T, ...) and cut into T tensors (B, ...): one split, so the
    backward is one concat rather than a full-size zero gradient per step."""
    x = F.reshape(x, shape)
    return [F.reshape(p, shape[:1] + shape[2:]) for p in F.split(x, [1] * shape[1], 1)]


@register("LinearAttention", since=27)
def linear_attention(ctx, node: NodeView, inputs):
    """S_t = exp(g_t) S + k_t (x) beta_t (v_t - (exp(g_t) S)^T k_t) (the rule picks the terms);
    o_t = scale q_t^T S_t, query head i reading key/value head i // (H_q / H_kv)."""
    # NOTE: chunk_size only tunes chunk-parallel kernels (the spec: no effect on the result);
    # the token-by-token loop is the spec's definition, and its backward is exact.
    q, k, v = inputs[:3]
    past, decay, beta = (_opt(inputs, i) for i in (3, 4, 5))
    hq, hkv = _heads(node)
    gated, delta = _rule(node, decay, beta)
    b, t, dk, dv = _dims(node, q, k, v, hq, hkv)
    g = hq // hkv
    state = past if past is not None else wrap(np.zeros((b, hkv, dk, dv), q.dtype))
    if state.shape != (b, hkv, dk, dv):
        raise node.fail(f"past_state must have shape {(b, hkv, dk, dv)}, got {state.shape}")
    if t == 0:
        return wrap(np.zeros((b, 0, hq * dv), q.dtype)), state
    scale = node.attr("scale", 0.0) or 1.0 / np.sqrt(dk)
    qs = _steps(F.mul(q, scale), (b, t, hkv, g, dk))  # query head h*g+j reads kv head h
    ks = _steps(k, (b, t, hkv, 1, dk))
    vs = _steps(v, (b, t, hkv, 1, dv))
    if gated:
        decays = _steps(F.exp(decay), _gate_shape(node, decay, "decay", b, t, hkv, dk))
    if delta:
        betas = _steps(beta, _gate_shape(node, beta, "beta", b, t, hkv, dk))
    outs = []
    for i in range(t):
        if gated:
            state = F.mul(state, decays[i])
        vi = vs[i]
        if delta:
            vi = F.mul(betas[i], F.sub(vi, F.matmul(ks[i], state)))
        state = F.add(state, F.matmul(F.reshape(ks[i], (b, hkv, dk, 1)), vi))
        outs.append(F.matmul(qs[i], state))  # (B, H_kv, g, d_v)
    return F.reshape(F.stack(outs, axis=1), (b, t, hq * dv)), state


# -- FlexAttention ---------------------------------------------------------------------------

_MODS = ("score_mod", "prob_mod")


def _flex_check(v: NodeView) -> str | None:
    for name in _MODS:
        mod = v.attr(name)
        if mod is not None and not isinstance(mod, Subgraph):
            return f"{name} must be a graph attribute"
        if mod is not None and (len(mod.inputs) != 1 or len(mod.outputs) != 1):
            return (f"{name} must take one input and give one output, not "
                    f"{len(mod.inputs)} and {len(mod.outputs)}")  # fmt: skip
    return None


def _flex_shapes(node: NodeView, q, k, v):
    if not q.ndim == k.ndim == v.ndim == 4:
        raise node.fail(f"Q, K, V must be 4-D, got {q.shape}, {k.shape}, {v.shape}")
    if k.shape[:3] != v.shape[:3] or q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise node.fail(f"Q {q.shape}, K {k.shape} and V {v.shape} do not fit together")


def _modify(ctx, node: NodeView, name: str, x):
    mod = node.attr(name)
    if mod is None:
        return x
    (y,) = mod.run(ctx, [x])
    if y.shape != x.shape or y.dtype != x.dtype:
        raise node.fail(f"{name} turned {x.shape} {x.dtype} into {y.shape} {y.dtype}: it must "
                        "keep the shape and type")  # fmt: skip
    return y


@register("FlexAttention", domain="ai.onnx.preview", since=1, check=_flex_check)
def flex_attention(ctx, node: NodeView, inputs):
    """Y = prob_mod(softmax(score_mod(Q K^T scale))) V, the modifiers in softmax_precision."""
    q, k, v = inputs[:3]
    _flex_shapes(node, q, k, v)
    code = node.attr("softmax_precision")
    work = np.dtype(np.float64 if q.dtype == np.float64 else np.float32)
    if code is not None:
        work = _precision(node, "softmax_precision", code)
    scores = F.astype(_scores(node, q, k)[0], work)  # Q sqrt(scale) (K sqrt(scale))^T
    probs = _modify(ctx, node, "prob_mod", F.softmax(_modify(ctx, node, "score_mod", scores), -1))
    y = F.matmul(probs, F.astype(_repeat_heads(node, v, q.shape[1]), work))
    return F.astype(y, q.dtype)
