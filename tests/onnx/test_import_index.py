"""Import of scans, scatters and index ops (import_ops_index.py): forward against onnxruntime,
gradients against torch autograd and float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load
from tests.onnx.node_helpers import fd_check, node_model, run_bpcli, run_ort, vs_torch

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _bp(node, inputs: dict, opset: int, wrt=()):
    (y, *_), ts = run_bpcli(node, inputs, opset, wrt)
    return y, ts


def _vs_ort(node, inputs, opset, rtol=1e-5):
    y, _ = _bp(node, inputs, opset)
    want = run_ort(node, inputs, opset)[0]
    assert y.dtype == want.dtype
    np.testing.assert_allclose(y.data, want, rtol=rtol, atol=1e-6)


_model, _vs_torch, _fd = node_model, vs_torch, fd_check


def _r(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


# -- CumSum / CumProd --------------------------------------------------------------------------


def _torch_scan(fn, fill, exclusive, reverse, axis):
    def run(x, axis_t=None):
        x = x.flip(axis) if reverse else x
        y = fn(x, axis)
        if exclusive:
            first = torch.full_like(y.narrow(axis, 0, 1), fill)
            y = torch.cat([first, y.narrow(axis, 0, y.shape[axis] - 1)], axis)
        return y.flip(axis) if reverse else y

    return run


SCAN_FLAGS = [(0, 0), (1, 0), (0, 1), (1, 1)]


@pytest.mark.torch
@pytest.mark.parametrize(("exclusive", "reverse"), SCAN_FLAGS)
def test_cumsum_and_cumprod_match_torch(exclusive, reverse):
    x = _r(3, 5)
    x[1, 2] = x[0, 0] = 0.0  # products through zeros: the gradient must not divide by x
    for op, fn, fill, opset in (("CumSum", torch.cumsum, 0.0, 14),
                                ("CumProd", torch.cumprod, 1.0, 26)):  # fmt: skip
        for axis in (1, -2):
            node = helper.make_node(op, ["x", "axis_t"], ["y"], exclusive=exclusive,
                                    reverse=reverse)  # fmt: skip
            inputs = {"x": x, "axis_t": np.array(axis, np.int64)}
            torch_fn = _torch_scan(fn, fill, exclusive, reverse, axis % 2)
            _vs_torch(node, inputs, opset, torch_fn, ["x"])
            _fd(node, inputs, opset, ["x"])


@pytest.mark.ort
@pytest.mark.parametrize(("exclusive", "reverse"), SCAN_FLAGS)
def test_cumsum_matches_onnxruntime(exclusive, reverse):
    node = helper.make_node("CumSum", ["x", "a"], ["y"], exclusive=exclusive, reverse=reverse)
    _vs_ort(node, {"x": _r(2, 3, 4), "a": np.array([1], np.int32)}, 14)
    xi = RNG.integers(-5, 5, (4, 3)).astype(np.int32)
    _vs_ort(node, {"x": xi, "a": np.array(0, np.int64)}, 14)


# -- ScatterElements / Scatter / ScatterND -----------------------------------------------------


def _scatter_inputs():
    data = _r(4, 3)
    idx = np.array([[1, 0, 3], [3, 0, -1], [1, 2, 3]], np.int64)  # repeats in every column
    return {"data": data, "idx": idx, "upd": _r(3, 3)}


@pytest.mark.ort
@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
def test_scatter_elements_reductions_match_onnxruntime(reduction):
    node = helper.make_node("ScatterElements", ["data", "idx", "upd"], ["y"], axis=0,
                            reduction=reduction)  # fmt: skip
    _vs_ort(node, _scatter_inputs(), 18)
    nd = helper.make_node("ScatterND", ["data", "idx", "upd"], ["y"], reduction=reduction)
    inputs = {"data": _r(4, 3, 2), "idx": np.array([[1], [-1], [1], [0]]), "upd": _r(4, 3, 2)}
    _vs_ort(nd, inputs, 18)
    inputs = {"data": _r(4, 3), "idx": np.array([[1, 2], [3, 0], [1, 2]]), "upd": _r(3)}
    _vs_ort(nd, inputs, 18)


def _torch_scatter(reduction):
    def run(data, idx, upd):
        i = idx % 4
        if reduction == "none":
            return torch.scatter(data, 0, i, upd)
        if reduction == "add":
            return torch.scatter_add(data, 0, i, upd)
        name = {"mul": "prod", "max": "amax", "min": "amin"}[reduction]
        return torch.scatter_reduce(data, 0, i, upd, name, include_self=True)

    return run


@pytest.mark.torch
@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_gradients_match_torch(reduction):
    inputs = _scatter_inputs()
    if reduction == "none":  # torch's scatter picks an arbitrary one of repeated indices
        inputs["idx"] = np.array([[1, 0, 3], [3, 2, -4], [0, 1, 2]], np.int64)
    if reduction in ("max", "min"):  # ties between data and updates split the gradient
        inputs["upd"][2, 0] = inputs["upd"][0, 0] = inputs["data"][1, 0] = 5.0
        inputs["upd"][1, 2] = inputs["data"][3, 2] = -5.0
    if reduction == "mul":
        inputs["upd"][0, 1] = 0.0
    node = helper.make_node("ScatterElements", ["data", "idx", "upd"], ["y"], axis=0,
                            reduction=reduction)  # fmt: skip
    _vs_torch(node, inputs, 18, _torch_scatter(reduction), ["data", "upd"])
    if reduction not in ("max", "min"):  # ties are kinks: finite differences do not apply
        _fd(node, inputs, 18, ["data", "upd"])


@pytest.mark.torch
def test_scatter_axis_1_and_deprecated_scatter():
    data, upd = _r(2, 5), _r(2, 2)
    idx = np.array([[1, 3], [4, 0]], np.int64)
    inputs = {"data": data, "idx": idx, "upd": upd}
    for op, opset in (("Scatter", 10), ("ScatterElements", 13)):
        node = helper.make_node(op, ["data", "idx", "upd"], ["y"], axis=1)
        _vs_torch(node, inputs, opset, lambda data, idx, upd: torch.scatter(data, 1, idx, upd),
                  ["data", "upd"])  # fmt: skip


@pytest.mark.torch
@pytest.mark.parametrize("reduction", ["none", "add", "mul"])
def test_scatter_nd_gradients_match_torch(reduction):
    data = _r(4, 3, 2)
    idx = np.array([[1, 2], [3, 0], [-3, 2]], np.int64)  # (1, 2) twice
    if reduction == "none":
        idx[2] = [2, 2]
    upd = _r(3, 2)
    node = helper.make_node("ScatterND", ["data", "idx", "upd"], ["y"], reduction=reduction)
    inputs = {"data": data, "idx": idx, "upd": upd}

    def run(data, idx, upd):
        rows, cols = idx[:, 0] % 4, idx[:, 1] % 3
        if reduction != "mul":
            return data.index_put((rows, cols), upd, accumulate=reduction == "add")
        out = data
        for k in range(len(rows)):  # one multiply per update, in order
            mask = torch.zeros(4, 3, 1)
            mask[rows[k], cols[k]] = 1
            out = out * (1 + mask * (upd[k] - 1))
        return out

    _vs_torch(node, inputs, 18, run, ["data", "upd"])
    _fd(node, inputs, 18, ["data", "upd"])


def test_scatter_checks():
    node = helper.make_node("ScatterElements", ["data", "idx", "upd"], ["y"], reduction="max")
    inputs = _scatter_inputs()
    with pytest.raises(BpcliError, match="reduction 'max' is not defined at opset 16"):
        _bp(node, inputs, 16)
    inputs["idx"][0, 0] = 4
    node = helper.make_node("ScatterElements", ["data", "idx", "upd"], ["y"])
    with pytest.raises(BpcliError, match="out of range"):
        _bp(node, inputs, 18)


# -- GatherND, ReverseSequence, Compress, MaxUnpool --------------------------------------------


@pytest.mark.torch
def test_gather_nd_matches_torch():
    data = _r(2, 3, 4, 2)
    node = helper.make_node("GatherND", ["data", "idx"], ["y"], batch_dims=1)
    idx = np.array([[[2, -1], [0, 1], [2, 3]], [[1, 1], [1, 1], [0, 0]]], np.int64)
    b = torch.arange(2)[:, None]
    run = lambda data, idx: data[b, idx[..., 0] % 3, idx[..., 1] % 4]  # noqa: E731
    _vs_torch(node, {"data": data, "idx": idx}, 13, run, ["data"])
    node = helper.make_node("GatherND", ["data", "idx"], ["y"])
    idx = np.array([[1], [0], [1]], np.int64)
    _vs_torch(node, {"data": data, "idx": idx}, 13, lambda data, idx: data[idx[:, 0]], ["data"])


@pytest.mark.ort
def test_gather_nd_and_friends_match_onnxruntime():
    data = _r(2, 3, 4)
    idx = np.array([[[2, -1]], [[0, 1]]], np.int64)
    _vs_ort(helper.make_node("GatherND", ["d", "i"], ["y"], batch_dims=1), {"d": data, "i": idx},
            13)  # fmt: skip
    lens = np.array([3, 1, 2], np.int64)
    for t, b in ((0, 1), (1, 0)):
        x = _r(3, 3, 2) if t == 0 else _r(3, 4, 2)
        node = helper.make_node("ReverseSequence", ["x", "l"], ["y"], time_axis=t, batch_axis=b)
        _vs_ort(node, {"x": x, "l": lens}, 13)
    cond = np.array([True, False, True])
    for axis in (None, 1, -1):
        kw = {} if axis is None else {"axis": axis}
        node = helper.make_node("Compress", ["x", "c"], ["y"], **kw)
        _vs_ort(node, {"x": _r(2, 3), "c": cond}, 13)


@pytest.mark.torch
def test_reverse_sequence_and_compress_match_torch():
    x = _r(4, 3, 2)
    lens = np.array([4, 1, 3], np.int64)
    node = helper.make_node("ReverseSequence", ["x", "l"], ["y"], time_axis=0, batch_axis=1)

    def rev(x, l):
        t = torch.arange(4)[:, None]
        src = torch.where(t < l, l - 1 - t, t)
        return x[src, torch.arange(3)]

    _vs_torch(node, {"x": x, "l": lens}, 13, rev, ["x"])
    node = helper.make_node("Compress", ["x", "c"], ["y"], axis=0)
    cond = np.array([True, False, True])
    _vs_torch(node, {"x": x, "c": cond}, 13, lambda x, c: x[torch.tensor([0, 2])], ["x"])
    node = helper.make_node("Compress", ["x", "c"], ["y"])
    _vs_torch(node, {"x": x, "c": cond}, 13, lambda x, c: x.reshape(-1)[[0, 2]], ["x"])


@pytest.mark.torch
def test_max_unpool_matches_torch_and_onnxruntime():
    x = _r(2, 3, 5, 5)
    pooled, ind = torch.nn.functional.max_pool2d(torch.tensor(x), 2, 2, return_indices=True)
    # ONNX's indices are flat over the whole (N, C, H, W) tensor, torch's per (H, W) plane
    flat = (ind + 25 * torch.arange(6).reshape(2, 3, 1, 1)).numpy()
    inputs = {"x": pooled.numpy(), "i": flat, "s": np.array([2, 3, 5, 5], np.int64)}
    node = helper.make_node("MaxUnpool", ["x", "i", "s"], ["y"], kernel_shape=[2, 2],
                            strides=[2, 2])  # fmt: skip

    def run(x, i, s):
        return torch.nn.functional.max_unpool2d(x, ind, 2, 2, output_size=(5, 5))

    _vs_torch(node, inputs, 11, run, ["x"])
    pytest.importorskip("onnxruntime")
    _vs_ort(node, inputs, 11)
    node = helper.make_node("MaxUnpool", ["x", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    pooled, ind = torch.nn.functional.max_pool2d(torch.tensor(x[..., :4, :4]), 2, 2,
                                                 return_indices=True)  # fmt: skip
    flat = (ind + 16 * torch.arange(6).reshape(2, 3, 1, 1)).numpy()
    _vs_ort(node, {"x": pooled.numpy(), "i": flat}, 11)


# -- LpNormalization, Shrink, Det --------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization_matches_torch(p):
    x = _r(3, 4)
    for axis in (0, -1):
        node = helper.make_node("LpNormalization", ["x"], ["y"], axis=axis, p=p)
        norm = lambda x, a=axis: torch.nn.functional.normalize(x, p, a)  # noqa: E731
        _vs_torch(node, {"x": x}, 13, norm, ["x"])
        _fd(node, {"x": x}, 13, ["x"])
    x[:, 1] = 0  # zero norms give zeros, not NaN
    node = helper.make_node("LpNormalization", ["x"], ["y"], axis=0, p=p)
    y, ts = _bp(node, {"x": x}, 13, ["x"])
    F.sum(y).backward()
    assert np.all(y.data[:, 1] == 0) and np.isfinite(ts["x"].grad).all()
    _vs_ort(node, {"x": x}, 13)
    with pytest.raises(BpcliError, match="p=3"):
        _bp(helper.make_node("LpNormalization", ["x"], ["y"], p=3), {"x": x}, 13)


@pytest.mark.torch
def test_shrink_matches_torch_and_onnxruntime():
    x = _r(3, 4) * 2
    x[np.abs(np.abs(x) - 0.7) < 0.05] = 0.0  # keep away from the kinks
    soft = helper.make_node("Shrink", ["x"], ["y"], lambd=0.7, bias=0.7)
    hard = helper.make_node("Shrink", ["x"], ["y"], lambd=0.7)
    tf = torch.nn.functional
    _vs_torch(soft, {"x": x}, 13, lambda x: tf.softshrink(x, 0.7), ["x"])
    _vs_torch(hard, {"x": x}, 13, lambda x: tf.hardshrink(x, 0.7), ["x"])
    odd = helper.make_node("Shrink", ["x"], ["y"], lambd=1.0, bias=0.3)
    _vs_ort(odd, {"x": x}, 13)
    _vs_ort(odd, {"x": RNG.integers(-4, 4, (5,)).astype(np.int32)}, 13)


@pytest.mark.torch
def test_det_matches_torch():
    node = helper.make_node("Det", ["x"], ["y"])
    x = _r(2, 3, 4, 4)
    x[0, 1, :, 0] = [0.0, 0.0, 1e-3, 0.0]  # forces row swaps
    _vs_torch(node, {"x": x}, 13, lambda x: torch.linalg.det(x), ["x"], rtol=1e-4, atol=1e-5)
    _fd(node, {"x": x}, 13, ["x"])
    for shape in ((3, 1, 1), (2, 2)):
        x = _r(*shape)
        _vs_torch(node, {"x": x}, 13, lambda x: torch.linalg.det(x), ["x"], rtol=1e-4, atol=1e-5)
    _vs_ort(node, {"x": _r(3, 3, 3)}, 13, rtol=1e-4)
    # singular, last pivot zero: the gradient is still the adjugate (torch gives 0 here)
    sing = np.array([[1.0, 2.0], [2.0, 4.0]], np.float32)
    y, ts = _bp(node, {"x": sing}, 13, ["x"])
    y.backward()
    np.testing.assert_allclose(ts["x"].grad, [[4.0, -2.0], [-2.0, 1.0]])
    _fd(node, {"x": sing}, 13, ["x"])


def test_graph_with_initializers_trains_through_scatter_and_cumsum():
    """Scatter data and updates are initializers (parameters): both get gradients."""
    nodes = [helper.make_node("ScatterND", ["w", "i", "u"], ["s"], reduction="add"),
             helper.make_node("CumSum", ["s", "ax"], ["y"])]  # fmt: skip
    inits = [numpy_helper.from_array(_r(4, 2), "w"), numpy_helper.from_array(_r(2, 2), "u"),
             numpy_helper.from_array(np.array([[1], [1]], np.int64), "i"),
             numpy_helper.from_array(np.array(0, np.int64), "ax")]  # fmt: skip
    g = helper.make_graph(nodes, "g", [], [helper.make_empty_tensor_value_info("y")], inits)
    m = load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), check=False)
    F.sum(m()).backward()
    p = dict(m.named_parameters())
    np.testing.assert_allclose(p["w"].grad, [[4, 4], [3, 3], [2, 2], [1, 1]])
    np.testing.assert_allclose(p["u"].grad, [[3, 3], [3, 3]])
