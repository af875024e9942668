"""Import of Attention (opsets 23-25), RMSNormalization and RotaryEmbedding: forward against
onnxruntime, gradients against PyTorch and float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

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


def _model(op, feeds, outs, opset=23, **attrs):
    """One ``op`` node; ``feeds`` maps input names to arrays in order, None for an omitted one."""
    names = [n if a is not None else "" for n, a in feeds.items()]
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(op, names, outs, **attrs)
    vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in feeds.items() if a is not None]  # fmt: skip
    first = next(iter(feeds.values()))
    elem = helper.np_dtype_to_tensor_dtype(first.dtype)
    # the first output has the first input's rank; Attention's others are 4-D
    ranks = [first.ndim] + [4] * (len(outs) - 1)
    out_vis = [helper.make_tensor_value_info(o, elem, [None] * r) for o, r in zip(outs, ranks) if o]
    g = helper.make_graph([node], "g", vis, out_vis)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


_ort = ort_outputs


_ours = bpcli_outputs


def _rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# -- Attention forward against onnxruntime ---------------------------------------------------


def _qkv(rng, b=2, hq=4, hkv=2, lq=3, lk=5, d=4, dv=6, flat=False, dtype=np.float32):
    if flat:
        return {"Q": _rand(rng, b, lq, hq * d, dtype=dtype),
                "K": _rand(rng, b, lk, hkv * d, dtype=dtype),
                "V": _rand(rng, b, lk, hkv * dv, dtype=dtype)}  # fmt: skip
    return {"Q": _rand(rng, b, hq, lq, d, dtype=dtype), "K": _rand(rng, b, hkv, lk, d, dtype=dtype),
            "V": _rand(rng, b, hkv, lk, dv, dtype=dtype)}  # fmt: skip


def _past(rng, b=2, hkv=2, p=2, d=4, dv=6, dtype=np.float32):
    return _rand(rng, b, hkv, p, d, dtype=dtype), _rand(rng, b, hkv, p, dv, dtype=dtype)


def _case(name, rng):
    """(opset, feeds, outputs, attrs) of one forward case."""
    y4 = ["Y", "", "", "QK"]
    full = ["Y", "present_key", "present_value", "QK"]
    if name == "mha":
        return 23, _qkv(rng, hkv=4), ["Y"], {}
    if name == "gqa_3d_causal_scaled":
        return 23, _qkv(rng, flat=True), ["Y"], dict(q_num_heads=4, kv_num_heads=2, is_causal=1,
                                                     scale=0.3)  # fmt: skip
    if name == "float_mask_softcap_mode1":
        f = _qkv(rng) | {"attn_mask": _rand(rng, 3, 5)}
        return 23, f, y4, dict(softcap=1.5, qk_matmul_output_mode=1)
    if name == "softcap_mode0_is_raw":
        return 23, _qkv(rng) | {"attn_mask": _rand(rng, 3, 5)}, y4, dict(softcap=0.7)
    if name == "bool_mask_causal_mode3":
        m = rng.random((2, 1, 3, 5)) > 0.3
        return 23, _qkv(rng) | {"attn_mask": m}, y4, dict(is_causal=1, qk_matmul_output_mode=3)
    if name == "past_causal_mask_mode2":
        pk, pv = _past(rng)
        f = _qkv(rng) | {"attn_mask": _rand(rng, 2, 1, 3, 7), "past_key": pk, "past_value": pv}
        return 23, f, full, dict(is_causal=1, qk_matmul_output_mode=2)
    if name == "past_3d_short_mask":
        pk, pv = _past(rng)
        f = _qkv(rng, flat=True) | {"attn_mask": _rand(rng, 3, 6), "past_key": pk, "past_value": pv}
        return 24, f, full[:3], dict(q_num_heads=4, kv_num_heads=2)
    if name == "nonpad_causal":
        f = _qkv(rng, lk=6) | {"attn_mask": None, "past_key": None, "past_value": None,
                               "nonpad_kv_seqlen": np.array([6, 4])}  # fmt: skip
        return 24, f, ["Y"], dict(is_causal=1)
    if name == "window_with_past":
        pk, pv = _past(rng, p=4)
        f = _qkv(rng) | {"attn_mask": None, "past_key": pk, "past_value": pv}
        return 25, f, full[:3], dict(left_window_size=2, right_window_size=1)
    if name == "fully_masked_row":
        m = np.ones((3, 5), bool)
        m[1] = False
        return 23, _qkv(rng) | {"attn_mask": m}, y4, dict(qk_matmul_output_mode=3)
    if name == "softmax_precision_double":
        f = _qkv(rng) | {"attn_mask": rng.random((3, 5)) > 0.2}
        return 24, f, ["Y"], dict(softmax_precision=11, is_causal=1)
    raise KeyError(name)


CASES = ["mha", "gqa_3d_causal_scaled", "float_mask_softcap_mode1", "softcap_mode0_is_raw",
         "bool_mask_causal_mode3", "past_causal_mask_mode2", "past_3d_short_mask", "nonpad_causal",
         "window_with_past", "fully_masked_row", "softmax_precision_double"]  # fmt: skip


def _padded_mask(feeds):
    """onnxruntime wants a float attn_mask over all the keys; opset 24 lets it be shorter."""
    m = feeds.get("attn_mask")
    if m is None or m.dtype == bool or feeds.get("past_key") is None:
        return feeds
    total = feeds["past_key"].shape[2] + feeds["K"].shape[-2 if feeds["K"].ndim == 4 else 1]
    pad = np.full((*m.shape[:-1], total - m.shape[-1]), -np.inf, m.dtype)
    return feeds | {"attn_mask": np.concatenate([m, pad], axis=-1)}


@pytest.mark.parametrize("name", CASES)
def test_attention_forward_matches_onnxruntime(name):
    opset, feeds, outs, attrs = _case(name, np.random.default_rng(CASES.index(name)))
    model = _model("Attention", feeds, outs, opset, **attrs)
    padded = _padded_mask(feeds)
    want = _ort(_model("Attention", padded, outs, opset, **attrs), padded)
    got, _ = _ours(model, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        # NOTE: onnxruntime writes the float's lowest value where the spec's bias is -inf
        # (qk_matmul_output_mode=2); bpcli keeps -inf as the spec says.
        low = np.finfo(w.dtype).min
        np.testing.assert_allclose(np.maximum(g.data, low), np.maximum(w, low), rtol=RTOL,
                                   atol=ATOL)  # fmt: skip
    assert np.isfinite(got[0].data).all()


def test_attention_fully_masked_row_is_zero():
    _, feeds, outs, attrs = _case("fully_masked_row", np.random.default_rng(0))
    y, qk = _ours(_model("Attention", feeds, outs, **attrs), feeds)[0]
    assert not y.data[:, :, 1].any() and not qk.data[:, :, 1].any()


def test_attention_float16_inputs_are_computed_wide_and_rounded_back():
    rng = np.random.default_rng(1)
    feeds = _qkv(rng, dtype=np.float16)
    model = _model("Attention", feeds, ["Y"], is_causal=1)
    (y,), _ = _ours(model, feeds)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.data, _ort(model, feeds)[0], rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize(
    ("attrs", "feeds", "match"),
    [
        (dict(softmax_precision=10), {}, "softmax_precision=10"),
        (dict(qk_matmul_output_mode=4), {}, "qk_matmul_output_mode=4"),
        (dict(q_num_heads=3), {}, "q_num_heads=3"),
        ({}, {"attn_mask": None, "past_key": np.zeros((2, 2, 1, 4), np.float32)}, "together"),
    ],
)
def test_attention_unsupported_values_fail(attrs, feeds, match):
    f = _qkv(np.random.default_rng(0)) | feeds
    out = ["Y", "pk", "pv"] if "past_key" in feeds else ["Y"]
    model = _model("Attention", f, out, **attrs)
    with pytest.raises(BpcliError, match=match):
        _ours(model, f)


def test_attention_3d_needs_head_counts():
    f = _qkv(np.random.default_rng(0), flat=True)
    with pytest.raises(BpcliError, match="q_num_heads and kv_num_heads"):
        _ours(_model("Attention", f, ["Y"], q_num_heads=4), f)


# -- Attention gradients ---------------------------------------------------------------------


def _torch_attention(q, k, v, mask=None, causal=False, softcap=0.0, past=None):
    """The spec's formula in torch (causal offset by the past, grouped heads, zero rows)."""
    offset = 0 if past is None else past[0].shape[2]
    if past is not None:
        k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
    rep = q.shape[1] // k.shape[1]
    s = q @ k.repeat_interleave(rep, 1).transpose(-1, -2) / q.shape[-1] ** 0.5
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    lq, lk = s.shape[-2:]
    ok = torch.ones(lq, lk, dtype=torch.bool)
    if causal:
        ok = torch.arange(lk) <= torch.arange(lq)[:, None] + offset
    if mask is not None and mask.dtype == torch.bool:
        ok = ok & mask
    bias = torch.zeros(ok.shape, dtype=q.dtype).masked_fill(~ok, -torch.inf)
    if mask is not None and mask.dtype != torch.bool:
        bias = bias + mask
    full = torch.isneginf(bias.amax(-1, keepdim=True))
    p = torch.softmax(torch.where(full, 0.0, s + bias), -1)
    return torch.where(full, 0.0, p) @ v.repeat_interleave(rep, 1), k, v


def _backward_pair(model, feeds, grads, torch_fn):
    """bpcli's and torch's gradients of sum(Y * R) (and of the present key/value)."""
    outs, ts = _ours(model, feeds, grads)
    rng = np.random.default_rng(7)
    cots = [rng.standard_normal(o.shape) for o in outs]
    total = None
    for o, c in zip(outs, cots):
        term = F.sum(F.mul(o, Tensor(c.astype(o.dtype))))
        total = term if total is None else F.add(total, term)
    total.backward()
    tt = {n: torch.tensor(a, requires_grad=n in grads) for n, a in feeds.items() if a is not None}
    touts = torch_fn(tt)
    for o, t in zip(outs, touts):
        np.testing.assert_allclose(o.data, t.detach().numpy(), rtol=RTOL, atol=ATOL)
    sum((t * torch.tensor(c, dtype=t.dtype)).sum() for t, c in zip(touts, cots)).backward()
    for n in grads:
        np.testing.assert_allclose(ts[n].grad, tt[n].grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=n)  # fmt: skip


def test_attention_gradients_match_torch_sdpa_gqa_float_mask():
    rng = np.random.default_rng(3)
    feeds = _qkv(rng, dv=4) | {"attn_mask": _rand(rng, 3, 5)}
    model = _model("Attention", feeds, ["Y"])

    def sdpa(t):
        return (torch.nn.functional.scaled_dot_product_attention(
            t["Q"], t["K"], t["V"], attn_mask=t["attn_mask"], enable_gqa=True),)  # fmt: skip

    _backward_pair(model, feeds, ("Q", "K", "V", "attn_mask"), sdpa)


@pytest.mark.parametrize("config", ["causal_softcap_past", "bool_mask_full_row_3d"])
def test_attention_gradients_match_torch_formula(config):
    rng = np.random.default_rng(4)
    if config == "causal_softcap_past":
        pk, pv = _past(rng)
        feeds = _qkv(rng) | {"attn_mask": _rand(rng, 3, 7), "past_key": pk, "past_value": pv}
        model = _model("Attention", feeds, ["Y", "pk", "pv"], is_causal=1, softcap=2.0)
        grads = ("Q", "K", "V", "attn_mask", "past_key", "past_value")

        def fn(t):
            return _torch_attention(t["Q"], t["K"], t["V"], t["attn_mask"], True, 2.0,
                                    (t["past_key"], t["past_value"]))  # fmt: skip
    else:
        m = rng.random((3, 5)) > 0.4
        m[0] = False
        feeds = _qkv(rng, flat=True) | {"attn_mask": m}
        model = _model("Attention", feeds, ["Y"], q_num_heads=4, kv_num_heads=2)
        grads = ("Q", "K", "V")

        def fn(t):
            q, k, v = (t[n].reshape(2, -1, h, 4 if n != "V" else 6).transpose(1, 2)
                       for n, h in (("Q", 4), ("K", 2), ("V", 2)))  # fmt: skip
            y = _torch_attention(q, k, v, t["attn_mask"])[0]
            return (y.transpose(1, 2).reshape(2, 3, -1),)

    _backward_pair(model, feeds, grads, fn)


@pytest.mark.parametrize("config", ["gqa_causal_softcap", "past_mask_window", "nonpad_full_rows"])
def test_attention_gradcheck_float64(config):
    rng = np.random.default_rng(5)
    f64 = dict(b=1, hq=2, hkv=1, lq=3, lk=4, d=3, dv=2, dtype=np.float64)
    opset, outs, attrs = 23, ["Y"], {}
    feeds = _qkv(rng, **f64)
    if config == "gqa_causal_softcap":
        attrs = dict(is_causal=1, softcap=1.2)
    elif config == "past_mask_window":
        pk, pv = _past(rng, b=1, hkv=1, p=2, d=3, dv=2, dtype=np.float64)
        feeds |= {"attn_mask": _rand(rng, 1, 3, 6, dtype=np.float64), "past_key": pk,
                  "past_value": pv}  # fmt: skip
        opset, outs, attrs = 25, ["Y", "pk", "pv"], dict(left_window_size=3, is_causal=1)
    else:
        feeds |= {"attn_mask": None, "past_key": None, "past_value": None,
                  "nonpad_kv_seqlen": np.array([2])}  # fmt: skip
        opset, attrs = 24, dict(is_causal=1)  # offset 2 - 3 < 0: query 0 sees no key
    mod = load(_model("Attention", feeds, outs, opset, **attrs))
    ts = [Tensor(a, requires_grad=a.dtype == np.float64) for a in feeds.values() if a is not None]
    res = gradcheck(mod, ts, atol=1e-6, rtol=1e-5)
    assert res.passed, (res.max_abs_error, res.max_rel_error)


# -- RMSNormalization ------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "axis", "wshape", "eps"),
                         [((2, 3, 4), -1, (4,), 1e-5), ((2, 3, 4), 1, (3, 4), 0.1),
                          ((3, 5), 0, (3, 5), 1e-5), ((2, 3, 4), -2, (1, 4), 1e-3)])  # fmt: skip
def test_rms_norm_forward_and_gradients(shape, axis, wshape, eps):
    rng = np.random.default_rng(0)
    feeds = {"X": _rand(rng, *shape), "W": _rand(rng, *wshape)}
    model = _model("RMSNormalization", feeds, ["Y"], axis=axis, epsilon=eps)
    np.testing.assert_allclose(_ours(model, feeds)[0][0].data, _ort(model, feeds)[0],
                               rtol=RTOL, atol=ATOL)  # fmt: skip
    axes = tuple(range(axis % len(shape), len(shape)))

    def fn(t):
        x = t["X"]
        return (x * torch.rsqrt((x * x).mean(axes, keepdim=True) + eps) * t["W"],)

    _backward_pair(model, feeds, ("X", "W"), fn)


def test_rms_norm_stash_type_and_gradcheck():
    rng = np.random.default_rng(1)
    feeds = {"X": _rand(rng, 2, 5, dtype=np.float64), "W": _rand(rng, 5, dtype=np.float64)}
    low = _ours(_model("RMSNormalization", feeds, ["Y"]), feeds)[0][0]
    mod = load(_model("RMSNormalization", feeds, ["Y"], stash_type=11))
    high = mod(*feeds.values())
    assert low.dtype == high.dtype == np.float64
    assert 0 < np.abs(low.data - high.data).max() < 1e-6  # stage one ran in float32
    ts = [Tensor(a, requires_grad=True) for a in feeds.values()]
    assert gradcheck(mod, ts).passed
    with pytest.raises(BpcliError, match="stash_type=10"):
        _ours(_model("RMSNormalization", feeds, ["Y"], stash_type=10), feeds)


# -- RotaryEmbedding -------------------------------------------------------------------------


def _rope_feeds(rng, layout, pos, rdim, d=8):
    b, s, h = 2, 3, 2
    x = _rand(rng, b, s, h * d) if layout == "3d" else _rand(rng, b, h, s, d)
    half = (rdim or d) // 2
    if pos:
        c = {"cos_cache": _rand(rng, 6, half), "sin_cache": _rand(rng, 6, half),
             "position_ids": rng.integers(0, 6, (b, s))}  # fmt: skip
    else:
        c = {"cos_cache": _rand(rng, b, s, half), "sin_cache": _rand(rng, b, s, half)}
    return {"X": x} | c


def _torch_rope(t, layout, inter, rdim, heads=2):
    x = t["X"]
    xt = x.reshape(*x.shape[:2], heads, -1) if layout == "3d" else x.transpose(1, 2)
    cos, sin = t["cos_cache"], t["sin_cache"]
    if "position_ids" in t:
        cos, sin = cos[t["position_ids"]], sin[t["position_ids"]]
    cos, sin = cos[:, :, None], sin[:, :, None]
    r = rdim or xt.shape[-1]
    rot, rest = xt[..., :r], xt[..., r:]
    x1, x2 = (rot[..., 0::2], rot[..., 1::2]) if inter else rot.chunk(2, -1)
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    rot = torch.stack([real, imag], -1).flatten(-2) if inter else torch.cat([real, imag], -1)
    y = torch.cat([rot, rest], -1)
    return (y.reshape(x.shape) if layout == "3d" else y.transpose(1, 2),)


@pytest.mark.parametrize(("layout", "inter", "pos", "rdim"),
                         [("4d", 0, True, 0), ("4d", 1, True, 4), ("3d", 0, True, 6),
                          ("3d", 1, False, 0), ("4d", 0, False, 4)])  # fmt: skip
def test_rotary_embedding_forward_and_gradients(layout, inter, pos, rdim):
    rng = np.random.default_rng(2)
    feeds = _rope_feeds(rng, layout, pos, rdim)
    attrs = dict(interleaved=inter, rotary_embedding_dim=rdim)
    if layout == "3d":
        attrs["num_heads"] = 2
    model = _model("RotaryEmbedding", feeds, ["Y"], **attrs)
    np.testing.assert_allclose(_ours(model, feeds)[0][0].data, _ort(model, feeds)[0],
                               rtol=RTOL, atol=ATOL)  # fmt: skip
    _backward_pair(model, feeds, ("X", "cos_cache", "sin_cache"),
                   lambda t: _torch_rope(t, layout, inter, rdim))  # fmt: skip


def test_rotary_embedding_errors():
    rng = np.random.default_rng(0)
    feeds = _rope_feeds(rng, "3d", True, 0)
    with pytest.raises(BpcliError, match="num_heads"):
        _ours(_model("RotaryEmbedding", feeds, ["Y"]), feeds)
    feeds = _rope_feeds(rng, "4d", True, 0)
    with pytest.raises(BpcliError, match="rotary_embedding_dim=5"):
        _ours(_model("RotaryEmbedding", feeds, ["Y"], rotary_embedding_dim=5), feeds)
