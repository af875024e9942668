"""Import of Swish, SwiGLU, TensorScatter, CausalConvWithState, LinearAttention and
FlexAttention: forward against onnxruntime where it runs the op (Swish, TensorScatter,
CausalConvWithState, LinearAttention), against the spec written in torch elsewhere (SwiGLU,
FlexAttention), and against onnx's own conformance data; gradients of every float input against
torch autograd and float64 finite differences."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bpcli import functional as F
from bpcli.engine.gradcheck import gradcheck
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load
from tests.onnx.node_helpers import bpcli_outputs, ort_outputs

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.ort, pytest.mark.torch]
RTOL, ATOL = 1e-4, 1e-5
PREVIEW = "ai.onnx.preview"
OPSETS = {"Swish": 24, "TensorScatter": 24, "CausalConvWithState": 27, "LinearAttention": 27,
          "SwiGLU": 28, "FlexAttention": 26}  # fmt: skip


def _model(op, feeds, outs, extra_inputs=(), **attrs):
    """One ``op`` node; ``feeds`` maps input names to arrays in order, None for an omitted one."""
    names = [n if a is not None else "" for n, a in feeds.items()]
    while names and not names[-1]:
        names.pop()
    domain = PREVIEW if op == "FlexAttention" else ""
    node = helper.make_node(op, names, outs, domain=domain, **attrs)
    vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in feeds.items() if a is not None]  # fmt: skip
    first = next(iter(feeds.values()))
    elem = helper.np_dtype_to_tensor_dtype(first.dtype)  # every output has the first's type
    ranks = [first.ndim, 4 if op == "LinearAttention" else first.ndim]  # the checker wants ranks
    out_vis = [helper.make_tensor_value_info(o, elem, [None] * r) for o, r in zip(outs, ranks)]
    g = helper.make_graph([node], "g", vis + list(extra_inputs), out_vis)
    ops = [helper.make_opsetid("", OPSETS[op])]
    if domain:
        ops.append(helper.make_opsetid(PREVIEW, 1))
    return helper.make_model(g, opset_imports=ops)


_ort = ort_outputs


_ours = bpcli_outputs


def _against_ort(model, feeds, rtol=RTOL, atol=ATOL):
    got, _ = _ours(model, feeds)
    want = _ort(model, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g.data, w, rtol=rtol, atol=atol)


def _backward_pair(model, feeds, grads, torch_fn):
    """bpcli's and torch's outputs and gradients of sum(out_i * R_i)."""
    outs, ts = _ours(model, feeds, grads)
    rng = np.random.default_rng(7)
    cots = [rng.standard_normal(o.shape) for o in outs]
    total = None
    for o, c in zip(outs, cots, strict=True):
        term = F.sum(F.mul(o, Tensor(c.astype(o.dtype))))
        total = term if total is None else F.add(total, term)
    total.backward()
    tt = {n: torch.tensor(a, requires_grad=n in grads) for n, a in feeds.items() if a is not None}
    touts = torch_fn(tt)
    for o, t in zip(outs, touts, strict=True):
        np.testing.assert_allclose(o.data, t.detach().numpy(), rtol=RTOL, atol=ATOL)
    sum((t * torch.tensor(c, dtype=t.dtype)).sum() for t, c in zip(touts, cots)).backward()
    for n in grads:
        assert ts[n].grad is not None, n
        np.testing.assert_allclose(ts[n].grad, tt[n].grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=n)  # fmt: skip


def _gradcheck(model, feeds):
    mod = load(model)
    ts = [Tensor(a, requires_grad=a.dtype == np.float64) for a in feeds.values() if a is not None]
    res = gradcheck(mod, ts, atol=1e-6, rtol=1e-5)
    assert res.passed, (res.max_abs_error, res.max_rel_error)


def _rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# -- onnx's conformance data -----------------------------------------------------------------

CONFORMANCE = {"swish": "test_swish", "swiglu": "test_swiglu_alpha",
               "tensorscatter": "test_tensorscatter_circular",
               "causal_conv_with_state": "test_causal_conv_with_state_silu_fp16",
               "linear_attention": "test_linear_attention_gated_delta_gqa",
               "flexattention": "test_flexattention_causal_mask"}  # fmt: skip


@pytest.mark.parametrize(("module", "name"), CONFORMANCE.items())
def test_conformance_data(module, name):
    """onnx's node test (generated at import of its case module) on its inputs and outputs."""
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    importlib.import_module(f"onnx.backend.test.case.node.{module}")
    (case,) = [c for c in node_cases._NodeTestCases if c.name == name]
    ((inputs, want),) = case.data_sets
    out = load(case.model)(*inputs)
    out = out if isinstance(out, tuple) else (out,)
    tol = 3e-3 if any(o.dtype == np.float16 for o in out) else 1e-5
    for o, w in zip(out, want, strict=True):
        assert o.dtype == w.dtype and o.shape == w.shape
        np.testing.assert_allclose(o.data.astype(np.float64), w.astype(np.float64), rtol=tol,
                                   atol=tol)  # fmt: skip


# -- Swish, SwiGLU ---------------------------------------------------------------------------


def _torch_swish(x, alpha):
    return x * torch.sigmoid(alpha * x)


@pytest.mark.parametrize("alpha", [1.0, 0.35])
def test_swish_forward_and_gradients(alpha):
    rng = np.random.default_rng(0)
    feeds = {"X": _rand(rng, 3, 4) * 3}
    model = _model("Swish", feeds, ["Y"], alpha=alpha)
    _against_ort(model, feeds)
    _backward_pair(model, feeds, ("X",), lambda t: (_torch_swish(t["X"], alpha),))
    f64 = {"X": feeds["X"].astype(np.float64)}
    _gradcheck(_model("Swish", f64, ["Y"], alpha=alpha), f64)


@pytest.mark.parametrize("alpha", [1.0, 1.702])
def test_swiglu_forward_and_gradients(alpha):
    rng = np.random.default_rng(1)
    feeds = {"A": _rand(rng, 2, 3, 4) * 2, "B": _rand(rng, 2, 3, 4)}
    model = _model("SwiGLU", feeds, ["Y"], alpha=alpha)
    _backward_pair(model, feeds, ("A", "B"), lambda t: (_torch_swish(t["A"], alpha) * t["B"],))
    f64 = {n: a.astype(np.float64) for n, a in feeds.items()}
    _gradcheck(_model("SwiGLU", f64, ["Y"], alpha=alpha), f64)


def test_swiglu_shapes_must_match():
    feeds = {"A": np.ones((2, 3), np.float32), "B": np.ones((1, 3), np.float32)}
    with pytest.raises(BpcliError, match="same shape"):
        _ours(_model("SwiGLU", feeds, ["Y"]), feeds)


# -- TensorScatter ---------------------------------------------------------------------------


def _scatter_feeds(rng, axis, seq, idx, dtype=np.float32):
    shape = [2, 3, 6, 4]
    up = list(shape)
    up[axis] = seq
    past = (rng.standard_normal(shape) * 10).astype(dtype)
    update = (rng.standard_normal(up) * 10).astype(dtype)
    return {"past_cache": past, "update": update,
            "write_indices": None if idx is None else np.array(idx, np.int64)}  # fmt: skip


SCATTER = [(-2, 2, [1, 4], "linear"), (2, 3, None, "linear"), (1, 2, [1, 0], "linear"),
           (-1, 3, [3, 1], "circular"), (-2, 6, [5, 2], "circular")]  # fmt: skip


@pytest.mark.parametrize(("axis", "seq", "idx", "mode"), SCATTER)
def test_tensor_scatter_forward_matches_onnxruntime(axis, seq, idx, mode):
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.int64):
        feeds = _scatter_feeds(rng, axis, seq, idx, dtype)
        _against_ort(_model("TensorScatter", feeds, ["Y"], axis=axis, mode=mode), feeds)


def _torch_scatter(t, axis, mode):
    past, up = t["past_cache"], t["update"]
    axis %= past.ndim
    size, seq = past.shape[axis], up.shape[axis]
    idx = t.get("write_indices", torch.zeros(past.shape[0], dtype=torch.int64))
    rows = []
    for b in range(past.shape[0]):
        pos = idx[b] + torch.arange(seq)
        pos = pos % size if mode == "circular" else pos
        rows.append(past[b].index_copy(axis - 1, pos, up[b]))
    return (torch.stack(rows),)


@pytest.mark.parametrize(("axis", "seq", "idx", "mode"), SCATTER[::2])
def test_tensor_scatter_gradients(axis, seq, idx, mode):
    feeds = _scatter_feeds(np.random.default_rng(3), axis, seq, idx)
    model = _model("TensorScatter", feeds, ["Y"], axis=axis, mode=mode)
    _backward_pair(model, feeds, ("past_cache", "update"), lambda t: _torch_scatter(t, axis, mode))


@pytest.mark.parametrize(("attrs", "idx", "match"),
                         [(dict(axis=0), None, "axis=0"), ({}, [5, 0], "run past"),
                          (dict(mode="ring"), None, "mode='ring'")])  # fmt: skip
def test_tensor_scatter_errors(attrs, idx, match):
    feeds = _scatter_feeds(np.random.default_rng(0), -2, 2, idx)
    with pytest.raises(BpcliError, match=match):
        _ours(_model("TensorScatter", feeds, ["Y"], **attrs), feeds)


# -- CausalConvWithState ---------------------------------------------------------------------


def _conv_feeds(rng, length=5, k=3, bias=True, past=True, dtype=np.float32):
    b, c = 2, 3
    return {"input": _rand(rng, b, c, length, dtype=dtype),
            "weight": _rand(rng, c, 1, k, dtype=dtype),
            "bias": _rand(rng, c, dtype=dtype) if bias else None,
            "past_state": _rand(rng, b, c, k - 1, dtype=dtype) if past else None}  # fmt: skip


def _torch_causal_conv(t, act):
    x, w = t["input"], t["weight"]
    k = w.shape[2]
    past = t.get("past_state")
    if past is None:
        past = torch.zeros(*x.shape[:2], k - 1, dtype=x.dtype)
    padded = torch.cat([past, x], 2)
    y = torch.nn.functional.conv1d(padded, w, t.get("bias"), groups=x.shape[1])
    y = torch.nn.functional.silu(y) if act != "none" else y
    return y, padded[:, :, padded.shape[2] - (k - 1) :]


CONV = [(5, 3, True, True, "none"), (5, 4, False, False, "silu"), (2, 4, True, False, "swish"),
        (1, 3, False, True, "silu"), (4, 1, True, False, "none")]  # fmt: skip


@pytest.mark.parametrize(("length", "k", "bias", "past", "act"), CONV)
def test_causal_conv_with_state_forward_and_gradients(length, k, bias, past, act):
    feeds = _conv_feeds(np.random.default_rng(4), length, k, bias, past)
    model = _model("CausalConvWithState", feeds, ["Y", "state"], activation=act)
    _against_ort(model, feeds)
    grads = tuple(n for n, a in feeds.items() if a is not None)
    _backward_pair(model, feeds, grads, lambda t: _torch_causal_conv(t, act))


def test_causal_conv_with_state_gradcheck_and_errors():
    feeds = _conv_feeds(np.random.default_rng(5), 3, 3, dtype=np.float64)
    _gradcheck(_model("CausalConvWithState", feeds, ["Y", "state"], activation="silu"), feeds)
    with pytest.raises(BpcliError, match="activation='gelu'"):
        _ours(_model("CausalConvWithState", feeds, ["Y", "S"], activation="gelu"), feeds)
    bad = feeds | {"past_state": feeds["past_state"][:, :, :1]}
    with pytest.raises(BpcliError, match="past_state must have shape"):
        _ours(_model("CausalConvWithState", bad, ["Y", "S"]), bad)


# -- LinearAttention -------------------------------------------------------------------------


def _la_feeds(rng, rule, b=2, t=3, hq=4, hkv=2, dk=3, dv=2, past=True, head_decay=False,
              beta_one=False, dtype=np.float32):  # fmt: skip
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    k = _rand(rng, b, t, hkv, dk, dtype=dtype)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)  # the delta rules want unit keys
    decay = -np.abs(_rand(rng, b, t, hkv * (1 if head_decay else dk), dtype=dtype)) * 0.3
    beta = rng.random((b, t, 1 if beta_one else hkv)).astype(dtype)
    return {"query": _rand(rng, b, t, hq * dk, dtype=dtype), "key": k.reshape(b, t, -1),
            "value": _rand(rng, b, t, hkv * dv, dtype=dtype),
            "past_state": _rand(rng, b, hkv, dk, dv, dtype=dtype) * 0.5 if past else None,
            "decay": decay if gated else None, "beta": beta if delta else None}  # fmt: skip


def _torch_linear_attention(t, hq, hkv, scale=None):
    """The spec's recurrence, one token at a time, in torch."""
    q, k, v = t["query"], t["key"], t["value"]
    b, n = q.shape[:2]
    dk, dv = q.shape[2] // hq, v.shape[2] // hkv
    q4, k4, v4 = q.reshape(b, n, hq, dk), k.reshape(b, n, hkv, dk), v.reshape(b, n, hkv, dv)
    s = t.get("past_state")
    s = torch.zeros(b, hkv, dk, dv, dtype=q.dtype) if s is None else s
    outs = []
    for i in range(n):
        if t.get("decay") is not None:
            s = s * torch.exp(t["decay"][:, i].reshape(b, hkv, -1))[..., None]
        vi = v4[:, i]
        if t.get("beta") is not None:
            beta = t["beta"][:, i].reshape(b, -1, 1)
            vi = beta * (vi - torch.einsum("bhdm,bhd->bhm", s, k4[:, i]))
        s = s + k4[:, i, :, :, None] * vi[:, :, None, :]
        read = s.repeat_interleave(hq // hkv, 1)
        outs.append(torch.einsum("bhd,bhdm->bhm", q4[:, i], read) * (scale or dk**-0.5))
    return torch.stack(outs, 1).reshape(b, n, hq * dv), s


LA = [("linear", dict(past=False, hq=2, hkv=2)), ("gated", dict(head_decay=True)),
      ("gated", dict(past=False, hkv=1)), ("delta", dict(beta_one=True)),
      ("gated_delta", {}), ("gated_delta", dict(t=1, scale=0.4))]  # fmt: skip


@pytest.mark.parametrize(("rule", "cfg"), LA)
def test_linear_attention_forward_and_gradients(rule, cfg):
    cfg = dict(cfg)
    scale = cfg.pop("scale", 0.0)
    hq, hkv = cfg.get("hq", 4), cfg.get("hkv", 2)
    feeds = _la_feeds(np.random.default_rng(6), rule, **cfg)
    model = _model("LinearAttention", feeds, ["Y", "state"], update_rule=rule, q_num_heads=hq,
                   kv_num_heads=hkv, scale=scale)  # fmt: skip
    _against_ort(model, feeds)
    grads = tuple(n for n, a in feeds.items() if a is not None)
    _backward_pair(model, feeds, grads, lambda t: _torch_linear_attention(t, hq, hkv, scale))


def test_linear_attention_gradcheck_float64():
    feeds = _la_feeds(np.random.default_rng(7), "gated_delta", b=1, t=3, hq=2, hkv=1, dk=2,
                      dv=2, dtype=np.float64)  # fmt: skip
    _gradcheck(_model("LinearAttention", feeds, ["Y", "state"], q_num_heads=2, kv_num_heads=1),
               feeds)  # fmt: skip


@pytest.mark.parametrize(("rule", "drop", "attrs", "match"),
                         [("gated_delta", "decay", {}, "needs a decay input"),
                          ("linear", None, {}, "takes no decay input"),
                          ("mamba", None, {}, "update_rule='mamba'"),
                          ("gated_delta", None, dict(q_num_heads=3), "q_num_heads=3")])  # fmt: skip
def test_linear_attention_errors(rule, drop, attrs, match):
    feeds = _la_feeds(np.random.default_rng(0), "gated_delta")
    if drop:
        feeds[drop] = None
    a = dict(update_rule=rule, q_num_heads=4, kv_num_heads=2) | attrs
    with pytest.raises(BpcliError, match=match):
        _ours(_model("LinearAttention", feeds, ["Y", "S"], **a), feeds)


# -- FlexAttention ---------------------------------------------------------------------------


def _vi(name, elem=TensorProto.FLOAT, shape=(None,) * 4):
    return helper.make_tensor_value_info(name, elem, shape)


def _softcap_graph(cap, elem):
    c = numpy_helper.from_array(np.array(cap, helper.tensor_dtype_to_np_dtype(elem)), "cap")
    nodes = [helper.make_node("Div", ["s", "cap"], ["d"]), helper.make_node("Tanh", ["d"], ["h"]),
             helper.make_node("Mul", ["h", "cap"], ["out"])]  # fmt: skip
    return helper.make_graph(nodes, "softcap", [_vi("s", elem)], [_vi("out", elem)], [c])


def _causal_graph():
    """Where(q >= k, s, -inf) with the positions from Shape/Range, as the onnx test writes it."""
    i64 = {n: numpy_helper.from_array(np.array(v, np.int64), n)
           for n, v in (("zero", 0), ("one", 1), ("two", [2]), ("three", [3]),
                        ("qs", [-1, 1]), ("ks", [1, -1]))}  # fmt: skip
    inf = numpy_helper.from_array(np.array(-np.inf, np.float32), "inf")
    mk = helper.make_node
    nodes = [mk("Shape", ["s"], ["sh"]), mk("Gather", ["sh", "two"], ["l1"]),
             mk("Gather", ["sh", "three"], ["s1"]), mk("Squeeze", ["l1"], ["l"]),
             mk("Squeeze", ["s1"], ["n"]), mk("Range", ["zero", "l", "one"], ["qr"]),
             mk("Range", ["zero", "n", "one"], ["kr"]), mk("Reshape", ["qr", "qs"], ["qi"]),
             mk("Reshape", ["kr", "ks"], ["ki"]), mk("GreaterOrEqual", ["qi", "ki"], ["ok"]),
             mk("Where", ["ok", "s", "inf"], ["out"])]  # fmt: skip
    return helper.make_graph(nodes, "causal", [_vi("s")], [_vi("out")], [*i64.values(), inf])


def _outer_bias_graph():
    """score_mod reading the main graph's input ``rel`` by name: its gradient flows there."""
    node = helper.make_node("Add", ["s", "rel"], ["out"])
    return helper.make_graph([node], "bias", [_vi("s")], [_vi("out")])


def _prob_scale_graph():
    c = numpy_helper.from_array(np.array(0.5, np.float32), "c")
    return helper.make_graph([helper.make_node("Mul", ["p", "c"], ["out"])], "half",
                             [_vi("p")], [_vi("out")], [c])  # fmt: skip


def _torch_flex(t, scale=None, score_mod=None, prob_mod=None):
    q, k, v = t["Q"], t["K"], t["V"]
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    s = q @ k.transpose(-1, -2) * (scale or q.shape[-1] ** -0.5)
    s = score_mod(s, t) if score_mod else s
    p = torch.softmax(s, -1)
    p = prob_mod(p) if prob_mod else p
    return (p @ v,)


def _causal_torch(s, t):
    lq, lk = s.shape[-2:]
    return s.masked_fill(torch.arange(lk) > torch.arange(lq)[:, None], -torch.inf)


FLEX = {
    "gqa_scaled": (dict(scale=0.3), None, None, {}),
    "softcap": ({}, _softcap_graph(2.0, TensorProto.FLOAT),
                lambda s, t: 2.0 * torch.tanh(s / 2.0), {}),
    "causal_prob_mod": ({}, _causal_graph(), _causal_torch, {}),
    "outer_bias": ({}, _outer_bias_graph(), lambda s, t: s + t["rel"], {"rel": (4, 5)}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FLEX))
def test_flex_attention_forward_and_gradients(name):
    attrs, score_mod, torch_mod, extra = FLEX[name]
    rng = np.random.default_rng(8)
    hkv = 1 if name == "gqa_scaled" else 2
    feeds = {"Q": _rand(rng, 2, 2, 4, 3), "K": _rand(rng, 2, hkv, 5, 3),
             "V": _rand(rng, 2, hkv, 5, 6)}  # fmt: skip
    feeds |= {n: _rand(rng, *s) for n, s in extra.items()}
    if score_mod is not None:
        attrs = attrs | {"score_mod": score_mod}
    prob_mod = None
    if name == "causal_prob_mod":
        attrs = attrs | {"prob_mod": _prob_scale_graph()}

        def prob_mod(p):
            return p * 0.5

    model = _model("FlexAttention", {n: feeds[n] for n in "QKV"}, ["Y"],
                   [_vi(n, shape=s) for n, s in extra.items()], **attrs)  # fmt: skip
    _backward_pair(model, feeds, tuple(feeds),
                   lambda t: _torch_flex(t, attrs.get("scale"), torch_mod, prob_mod))  # fmt: skip


def test_flex_attention_double_gradcheck_and_softmax_precision():
    rng = np.random.default_rng(9)
    feeds = {n: _rand(rng, 1, 2, 3, 2, dtype=np.float64) for n in "QKV"}
    sm = _softcap_graph(1.5, TensorProto.DOUBLE)
    _gradcheck(_model("FlexAttention", feeds, ["Y"], score_mod=sm), feeds)
    # softmax_precision=1 on double inputs: the modifiers run in float, Y comes back double
    low = _ours(_model("FlexAttention", feeds, ["Y"], softmax_precision=1,
                       score_mod=_softcap_graph(1.5, TensorProto.FLOAT)), feeds)[0][0]  # fmt: skip
    high = _ours(_model("FlexAttention", feeds, ["Y"], score_mod=sm), feeds)[0][0]
    assert low.dtype == np.float64
    assert 0 < np.abs(low.data - high.data).max() < 1e-5


def test_flex_attention_modifier_errors():
    feeds = {n: np.ones((1, 2, 3, 2), np.float32) for n in "QKV"}
    two = helper.make_graph([helper.make_node("Add", ["s", "t"], ["out"])], "two",
                            [_vi("s"), _vi("t")], [_vi("out")])  # fmt: skip
    with pytest.raises(BpcliError, match="score_mod must take one input"):
        _ours(_model("FlexAttention", feeds, ["Y"], score_mod=two), feeds)
    shrink = helper.make_graph([helper.make_node("ReduceSum", ["p"], ["out"])], "sum",
                               [_vi("p")], [_vi("out")])  # fmt: skip
    with pytest.raises(BpcliError, match="prob_mod turned"):
        _ours(_model("FlexAttention", feeds, ["Y"], prob_mod=shrink), feeds)
    with pytest.raises(BpcliError, match="softmax_precision=10"):
        _ours(_model("FlexAttention", feeds, ["Y"], softmax_precision=10), feeds)
