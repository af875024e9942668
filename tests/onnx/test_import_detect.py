"""Detection importers (NonMaxSuppression, RoiAlign, DeformConv): forward against onnxruntime,
gradients against float64 finite differences, DeformConv with zero offsets against torch conv."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli import functional as F
from bpcli.engine.gradcheck import gradcheck
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load
from tests.onnx.node_helpers import op_model, ort_pairs, run_pairs

_model = op_model


_ours = run_pairs


_ort = ort_pairs


def _check_fd(m, ins, wrt):
    names = [n for n, a in ins if a is not None]
    mod = load(m, check=False)
    ts = [Tensor(a, requires_grad=n in wrt) for n, a in ins if a is not None]
    res = gradcheck(lambda *a: mod(*a), ts, atol=1e-6, rtol=1e-5)
    assert res.passed, dict(zip(names, res.max_abs_error))


def _r(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _u(lo, hi, shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


# -- NonMaxSuppression --------------------------------------------------------------------------


def _boxes(b, n, center, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 10, (b, n, 2))
    size = rng.uniform(0.5, 4, (b, n, 2))
    if center:
        return np.concatenate([a, size], -1).astype(np.float32)
    b = a + size
    flip = rng.random((b.shape[0], n, 1)) < 0.3  # some boxes name the other diagonal
    return np.concatenate([np.where(flip, b, a), np.where(flip, a, b)], -1).astype(np.float32)


NMS_CASES = [  # (center_point_box, max_output, iou, score)
    (0, 5, 0.3, 0.2),
    (1, 5, 0.3, 0.2),
    (0, 100, 0.0, None),
    (0, 3, 1.0, 0.5),
    (1, 0, 0.5, 0.0),
    (1, 50, 0.1, 0.1),
    (0, None, None, None),
    (0, 4, None, None),
]


@pytest.mark.ort
@pytest.mark.parametrize("case", NMS_CASES, ids=str)
def test_nms_matches_onnxruntime(case):
    center, limit, iou, score = case
    ins = [("boxes", _boxes(2, 40, center)), ("scores", _u(0, 1, (2, 3, 40), seed=1)),
           ("max_output_boxes_per_class", None if limit is None else np.array([limit])),
           ("iou_threshold", None if iou is None else np.array([iou], np.float32)),
           ("score_threshold", None if score is None else np.array([score], np.float32)),
           ]  # fmt: skip
    for opset in (10, 11):
        m = _model("NonMaxSuppression", ins, opset, center_point_box=center)
        y, _ = _ours(m, ins)
        assert y.dtype == np.int64 and y.shape[1:] == (3,)
        np.testing.assert_array_equal(y.data, _ort(m, ins))


def test_nms_rejects_bad_attributes():
    ins = [("boxes", _boxes(1, 4, 0)), ("scores", _u(0, 1, (1, 1, 4))),
           ("max_output_boxes_per_class", np.array([2])),
           ("iou_threshold", np.array([1.5], np.float32))]  # fmt: skip
    with pytest.raises(BpcliError, match="center_point_box=2"):
        _ours(_model("NonMaxSuppression", ins, 11, center_point_box=2), ins)
    with pytest.raises(BpcliError, match=r"iou_threshold 1\.5"):
        _ours(_model("NonMaxSuppression", ins, 11), ins)


# -- RoiAlign -----------------------------------------------------------------------------------

ROIS = np.array([[0.5, 1.0, 6.0, 5.5],  # inside
                 [-2.0, -1.5, 3.0, 2.0],  # over the top-left border
                 [4.0, 3.0, 12.0, 9.5],  # over the bottom-right border
                 [2.0, 2.0, 2.3, 2.1],  # smaller than a pixel
                 [5.0, 4.0, 3.0, 2.0]], np.float32)  # fmt: skip  # reversed (malformed)
BIDX = np.array([1, 0, 1, 0, 1], np.int64)


def _roi_ins(dtype=np.float32, rois=ROIS, seed=0):
    x = _u(0.1, 1.0, (2, 3, 7, 8), seed=seed, dtype=dtype)
    return [("x", x), ("rois", rois.astype(dtype)), ("batch_indices", BIDX[: len(rois)])]


ROI_CASES = [  # (opset, attrs)
    (10, dict(mode="avg", sampling_ratio=2)),
    (10, dict(mode="max", sampling_ratio=0, spatial_scale=0.5)),
    (16, dict(mode="avg", sampling_ratio=0, coordinate_transformation_mode="half_pixel")),
    (16, dict(mode="avg", sampling_ratio=3, coordinate_transformation_mode="output_half_pixel")),
    (16, dict(mode="max", sampling_ratio=2, coordinate_transformation_mode="half_pixel")),
    (22, dict(mode="avg", sampling_ratio=0, spatial_scale=0.75)),
    (22, dict(mode="max", sampling_ratio=0, coordinate_transformation_mode="output_half_pixel")),
    (22, dict(mode="max", sampling_ratio=1, spatial_scale=1.5)),
]


@pytest.mark.ort
@pytest.mark.parametrize("case", ROI_CASES, ids=str)
def test_roi_align_matches_onnxruntime(case):
    opset, attrs = case
    ins = _roi_ins()
    y, _ = _ours(_model("RoiAlign", ins, opset, output_height=3, output_width=4, **attrs), ins)
    # opset 22 only adds bfloat16, which onnxruntime does not implement: it runs 16's kernel
    m = _model("RoiAlign", ins, min(opset, 16), output_height=3, output_width=4, **attrs)
    np.testing.assert_allclose(y.data, _ort(m, ins), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("ctm", ["half_pixel", "output_half_pixel"])
def test_roi_align_gradients_match_finite_differences(mode, ctm):
    rois = ROIS[[0, 1, 2]] + np.float32(0.13)  # off the pixel grid: no ties between samples
    ins = _roi_ins(np.float64, rois, seed=1)
    m = _model("RoiAlign", ins, 16, output_height=2, output_width=3, mode=mode,
               sampling_ratio=0, coordinate_transformation_mode=ctm)  # fmt: skip
    _check_fd(m, ins, ("x",))


def test_roi_align_avg_gradient_is_the_transposed_sampling():
    """A linear map: the gradient of sum(y * g) is the same weights read backwards, so
    <dL/dx, x> = sum(y * g) for every x."""
    ins = _roi_ins(np.float64)
    m = _model("RoiAlign", ins, 16, output_height=3, output_width=2, sampling_ratio=2)
    y, args = _ours(m, ins, grad=("x",))
    g = _r(*y.shape, seed=3, dtype=np.float64)
    F.sum(F.mul(y, g)).backward()
    np.testing.assert_allclose((args["x"].grad * ins[0][1]).sum(), (y.data * g).sum())


def test_roi_align_rejects_bad_attributes():
    ins = _roi_ins()
    with pytest.raises(BpcliError, match="mode='median'"):
        _ours(_model("RoiAlign", ins, 16, mode="median"), ins)
    with pytest.raises(BpcliError, match="coordinate_transformation_mode='asymmetric'"):
        _ours(_model("RoiAlign", ins, 16, coordinate_transformation_mode="asymmetric"), ins)
    bad = [*ins[:2], ("batch_indices", BIDX + 1)]
    with pytest.raises(BpcliError, match="batch_indices"):
        _ours(_model("RoiAlign", bad, 16), bad)


# -- DeformConv ---------------------------------------------------------------------------------


# -- MaxRoiPool ---------------------------------------------------------------------------------

POOL_ROIS = np.array([[0, 0.0, 0.0, 9.0, 9.0], [1, 2.2, 1.4, 7.6, 5.5], [0, 6.0, 6.0, 7.0, 6.5],
                      [1, -3.0, -2.0, 4.0, 20.0], [0, 3.5, 2.5, 3.5, 2.5]], np.float32)  # fmt: skip


@pytest.mark.parametrize("pooled, scale", [((2, 2), 1.0), ((3, 4), 0.5), ((4, 3), 1.3)])
def test_max_roi_pool_matches_onnxruntime(pooled, scale):
    ins = [("x", _r(2, 3, 10, 10)), ("rois", POOL_ROIS)]
    m = _model("MaxRoiPool", ins, 13, pooled_shape=list(pooled), spatial_scale=scale)
    np.testing.assert_allclose(_ours(m, ins)[0].data, _ort(m, ins), rtol=1e-6, atol=1e-6)


def test_max_roi_pool_gradient_matches_finite_differences():
    x = np.random.default_rng(1).permutation(2 * 2 * 8 * 8).reshape(2, 2, 8, 8) / 10.0
    ins = [("x", x), ("rois", POOL_ROIS.astype(np.float64) * [1, 0.8, 0.8, 0.8, 0.4])]
    _check_fd(_model("MaxRoiPool", ins, 22, pooled_shape=[3, 2]), ins, {"x"})


def _deform_ins(x_shape, w_shape, out, og, mask=True, bias=True, dtype=np.float32, spread=1.5):
    n, nd = x_shape[0], len(x_shape) - 2
    k = int(np.prod(w_shape[2:]))
    return [("x", _r(*x_shape, seed=1, dtype=dtype)), ("w", _r(*w_shape, seed=2, dtype=dtype)),
            ("offset", _u(-spread, spread, (n, og * k * nd, *out), seed=3, dtype=dtype)),
            ("b", _r(w_shape[0], seed=4, dtype=dtype) if bias else None),
            ("mask", _u(0, 1, (n, og * k, *out), seed=5, dtype=dtype) if mask else None),
            ]  # fmt: skip


DEFORM_CASES = [  # (X shape, W shape, output shape, attrs)
    ((2, 3, 6, 7), (4, 3, 3, 3), (4, 5), dict()),
    ((1, 4, 7, 6), (6, 2, 2, 3), (9, 6), dict(pads=[1, 1, 2, 1], group=2, offset_group=2)),
    ((2, 4, 9, 8), (2, 4, 3, 2), (3, 3), dict(strides=[2, 3], dilations=[2, 1], offset_group=4)),
    ((1, 6, 5, 5), (3, 2, 3, 3), (5, 5), dict(pads=[2, 2, 2, 2], dilations=[2, 2], group=3)),
]


@pytest.mark.ort
@pytest.mark.parametrize("case", DEFORM_CASES, ids=str)
@pytest.mark.parametrize("extras", [(True, True), (False, False)], ids=["mask-bias", "plain"])
def test_deform_conv_matches_onnxruntime(case, extras):
    xs, ws, out, attrs = case
    og = attrs.get("offset_group", 1)
    ins = _deform_ins(xs, ws, out, og, *extras)
    m = _model("DeformConv", ins, 19, kernel_shape=list(ws[2:]), **attrs)
    y, _ = _ours(m, ins)
    assert y.shape == (xs[0], ws[0], *out)
    np.testing.assert_allclose(y.data, _ort(m, ins), rtol=1e-5, atol=1e-5)


def _conv_out(sizes, ks, attrs):
    nd = len(sizes)
    pads, st = attrs.get("pads", [0] * 2 * nd), attrs.get("strides", [1] * nd)
    dil = attrs.get("dilations", [1] * nd)
    return tuple((sizes[a] + pads[a] + pads[nd + a] - (ks[a] - 1) * dil[a] - 1) // st[a] + 1
                 for a in range(nd))  # fmt: skip


@pytest.mark.parametrize("case", [DEFORM_CASES[1], DEFORM_CASES[2]], ids=str)
def test_deform_conv_gradients_match_finite_differences(case):
    xs, ws, _, attrs = case
    xs = (1, xs[1], 6, 5)  # small, so some inputs are checked coordinate by coordinate too
    out = _conv_out(xs[2:], ws[2:], attrs)
    assert min(out) > 0
    # offsets up to 1.5 pixels move some taps off the input: the border is checked too
    ins = _deform_ins(xs, ws, out, attrs.get("offset_group", 1), dtype=np.float64)
    m = _model("DeformConv", ins, 19, **attrs)
    _check_fd(m, ins, ("x", "w", "offset", "b", "mask"))


@pytest.mark.torch
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_deform_conv_without_offsets_is_torch_conv(nd):
    torch = pytest.importorskip("torch")
    xs, ws = (2, 4, *(6, 5, 4)[:nd]), (6, 2, *(3, 2, 2)[:nd])
    attrs = dict(strides=[2, 1, 1][:nd], pads=[1, 0, 1, 2, 1, 0][:nd] + [1, 2, 1][:nd],
                 dilations=[1, 2, 1][:nd], group=2)  # fmt: skip
    conv = getattr(torch.nn.functional, f"conv{nd}d")
    xt, wt, bt = (torch.tensor(_r(*s, seed=i), requires_grad=True)
                  for i, s in enumerate([xs, ws, (6,)]))  # fmt: skip
    pads = attrs["pads"]
    # torch pads symmetrically: pad explicitly for the ONNX begin/end pads
    xp = torch.nn.functional.pad(xt, [p for a in reversed(range(nd)) for p in
                                      (pads[a], pads[nd + a])])  # fmt: skip
    yt = conv(xp, wt, bt, stride=attrs["strides"], dilation=attrs["dilations"], groups=2)
    out = yt.shape[2:]
    k = int(np.prod(ws[2:]))
    ins = [("x", xt.detach().numpy()), ("w", wt.detach().numpy()),
           ("offset", np.zeros((2, k * nd, *out), np.float32)), ("b", bt.detach().numpy()),
           ("mask", np.ones((2, k, *out), np.float32))]  # fmt: skip
    y, args = _ours(_model("DeformConv", ins, 19, **attrs), ins, grad=("x", "w", "b"))
    g = _r(*y.shape, seed=9)
    F.sum(F.mul(y, g)).backward()
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    for name, t in (("x", xt), ("w", wt), ("b", bt)):
        np.testing.assert_allclose(args[name].grad, t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_deform_conv_rejects_mismatched_shapes():
    ins = _deform_ins((1, 2, 5, 5), (2, 2, 3, 3), (3, 3), 1)
    with pytest.raises(BpcliError, match="kernel_shape"):
        _ours(_model("DeformConv", ins, 19, kernel_shape=[2, 2]), ins)
    with pytest.raises(BpcliError, match="offset"):
        _ours(_model("DeformConv", ins, 19, pads=[1, 1, 1, 1]), ins)
    with pytest.raises(BpcliError, match="group=3"):
        _ours(_model("DeformConv", ins, 19, group=3), ins)
