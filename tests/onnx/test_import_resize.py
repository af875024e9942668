"""Resampling importers (Resize, Upsample, GridSample, AffineGrid, CenterCropPad, Col2Im):
forward against onnxruntime, gradients against torch and float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli import functional as F
from bpcli.engine.gradcheck import gradcheck
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load
from tests.onnx.node_helpers import op_model, ort_pairs, run_pairs

torch = pytest.importorskip("torch")
tf = torch.nn.functional


_model = op_model


def _feeds(ins):
    return {n: a for n, a in ins if a is not None}


_ours = run_pairs


_ort = ort_pairs


def _r(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _i64(*v):
    return np.array(v, np.int64)


def _f32(*v):
    return np.array(v, np.float32)


# -- Resize forward against onnxruntime ---------------------------------------------------------

X4 = _r(2, 3, 7, 9)


def _a(mode, coord="half_pixel", **kw):
    return dict(mode=mode, coordinate_transformation_mode=coord, **kw)


RESIZE_CASES = [  # (opset, scales, sizes, attrs)
    (19, _f32(1, 1, 2.3, 1.6), None, _a("nearest")),
    (19, _f32(1, 1, 0.6, 0.45), None, _a("nearest", nearest_mode="round_prefer_ceil")),
    (19, None, _i64(2, 3, 11, 4), _a("nearest", "asymmetric", nearest_mode="floor")),
    (19, None, _i64(2, 3, 4, 13), _a("nearest", "align_corners", nearest_mode="ceil")),
    (19, _f32(1, 1, 1.7, 0.7), None, _a("linear")),
    (19, _f32(1, 1, 1.7, 0.7), None, _a("linear", "half_pixel_symmetric")),
    (19, None, _i64(2, 3, 1, 5), _a("linear", "pytorch_half_pixel")),
    (19, None, _i64(2, 3, 10, 5), _a("linear", "align_corners")),
    (19, _f32(1, 1, 2.5, 1.5), None, _a("cubic", "asymmetric")),
    (19, _f32(1, 1, 0.5, 0.7), None, _a("cubic", cubic_coeff_a=-0.5, exclude_outside=1)),
    (19, None, _i64(2, 3, 3, 4), _a("linear", antialias=1)),
    (19, None, _i64(2, 3, 3, 4), _a("cubic", antialias=1, exclude_outside=1)),
    (19, None, _i64(5, 3), _a("linear", axes=[3, 2])),
    (19, None, _i64(4, 20), _a("nearest", axes=[2, 3], keep_aspect_ratio_policy="not_larger")),
    (19, None, _i64(4, 20), _a("cubic", axes=[2, 3], keep_aspect_ratio_policy="not_smaller")),
    (19, _f32(1.5, 1, 1, 1), None, _a("nearest")),  # the batch axis resizes like any other
    (13, _f32(1, 1, 1.3, 2.0), None, _a("cubic", "asymmetric")),
    (11, _f32(1, 1, 2.0, 1.5), None, _a("nearest", "tf_half_pixel_for_nn")),
]


@pytest.mark.ort
@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: f"{c[0]}-{sorted(c[3].items())}")
def test_resize_matches_onnxruntime(case):
    opset, scales, sizes, attrs = case
    roi = _f32() if opset < 13 else None  # opset 11 wants the roi input even when unused
    scales = _f32() if scales is None and opset < 13 else scales
    ins = [("x", X4), ("roi", roi), ("scales", scales), ("sizes", sizes)]
    m = _model("Resize", ins, opset, **attrs)
    y, _ = _ours(m, ins)
    np.testing.assert_allclose(y.data, _ort(m, ins), rtol=1e-5, atol=1e-5)


@pytest.mark.ort
@pytest.mark.parametrize("axes", [None, [2, 3]])
def test_tf_crop_and_resize_matches_onnxruntime(axes):
    roi = _f32(0.1, 0.3, 0.9, 1.2) if axes else _f32(0, 0, 0.1, 0.3, 1, 1, 0.9, 1.2)
    sizes = _i64(5, 6) if axes else _i64(2, 3, 5, 6)
    ins = [("x", X4), ("roi", roi), ("scales", None), ("sizes", sizes)]
    for mode in ("nearest", "linear", "cubic"):
        kw = dict(axes=axes) if axes else {}
        m = _model("Resize", ins, 19, mode=mode, extrapolation_value=-3.0,
                   coordinate_transformation_mode="tf_crop_and_resize", **kw)  # fmt: skip
        y, _ = _ours(m, ins)
        np.testing.assert_allclose(y.data, _ort(m, ins), rtol=1e-5, atol=1e-5, err_msg=mode)


@pytest.mark.ort
@pytest.mark.parametrize("op, opset", [("Resize", 10), ("Upsample", 9)])
def test_opset_10_resize_and_upsample_match_onnxruntime(op, opset):
    for mode in ("nearest", "linear"):
        for s in ((1, 1, 2.5, 1.7), (1, 1, 0.6, 0.4)):
            if op == "Upsample" and min(s) < 1:
                continue  # Upsample only grows
            ins = [("x", X4), ("scales", _f32(*s))]
            m = _model(op, ins, opset, mode=mode)
            y, _ = _ours(m, ins)
            np.testing.assert_allclose(y.data, _ort(m, ins), rtol=1e-5, atol=1e-5)


def test_negative_axes_count_from_the_back():
    ins = [("x", X4), ("roi", None), ("scales", None), ("sizes", _i64(4, 20))]
    ys = [_ours(_model("Resize", ins, 19, mode="linear", axes=axes,
                       keep_aspect_ratio_policy="not_larger"), ins)[0].data
          for axes in ([2, -1], [2, 3])]  # fmt: skip
    assert ys[0].shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(ys[0], ys[1])


def test_upsample_7_reads_scales_from_the_attribute():
    ins = [("x", _r(1, 1, 2, 2))]
    y, _ = _ours(_model("Upsample", ins, 7, mode="nearest", scales=[1.0, 1.0, 2.0, 3.0]), ins)
    np.testing.assert_array_equal(y.data, np.repeat(np.repeat(ins[0][1], 2, 2), 3, 3))


@pytest.mark.ort
def test_resize_of_uint8_rounds_like_onnxruntime():
    x = np.random.default_rng(0).integers(0, 256, (1, 1, 5, 7)).astype(np.uint8)
    ins = [("x", x), ("roi", None), ("scales", _f32(1, 1, 1.7, 0.6))]
    for mode in ("nearest", "linear"):
        m = _model("Resize", ins, 19, mode=mode)
        y, _ = _ours(m, ins)
        assert y.dtype == np.uint8
        np.testing.assert_allclose(y.data, _ort(m, ins), atol=1)


def test_resize_errors_name_the_attribute():
    ins = [("x", X4), ("roi", None), ("scales", _f32(1, 1, 2, 2))]
    with pytest.raises(BpcliError, match="coordinate_transformation_mode 'sideways'"):
        _ours(_model("Resize", ins, 19, coordinate_transformation_mode="sideways"), ins)
    with pytest.raises(BpcliError, match="mode 'area'"):
        _ours(_model("Resize", ins, 19, mode="area"), ins)
    both = [*ins, ("sizes", _i64(2, 3, 4, 4))]
    with pytest.raises(BpcliError, match="exactly one of"):
        _ours(_model("Resize", both, 19), both)


# -- Resize gradients ---------------------------------------------------------------------------


TORCH_CASES = [  # (torch mode, align_corners, antialias, input shape, output size, onnx attrs)
    ("nearest", None, False, (2, 3, 5, 6), (9, 4),
     dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")),
    ("nearest-exact", None, False, (2, 3, 5, 6), (9, 4),
     dict(mode="nearest", nearest_mode="round_prefer_ceil")),
    ("linear", False, False, (2, 3, 7), (12,), dict(mode="linear")),
    ("bilinear", False, False, (2, 3, 5, 6), (9, 4), dict(mode="linear")),
    ("bilinear", True, False, (2, 3, 5, 6), (9, 4),
     dict(mode="linear", coordinate_transformation_mode="align_corners")),
    ("bicubic", False, False, (2, 3, 5, 6), (9, 4), dict(mode="cubic")),
    ("bicubic", True, False, (2, 3, 5, 6), (9, 4),
     dict(mode="cubic", coordinate_transformation_mode="align_corners")),
    ("trilinear", False, False, (1, 2, 4, 5, 3), (7, 3, 5), dict(mode="linear")),
    # torch's antialias renormalises over the taps inside the image, ONNX's exclude_outside
    ("bilinear", False, True, (2, 3, 11, 13), (4, 5), dict(mode="linear", antialias=1,
                                                          exclude_outside=1)),
    ("bicubic", False, True, (2, 3, 11, 13), (4, 9), dict(mode="cubic", antialias=1,
                                                         exclude_outside=1, cubic_coeff_a=-0.5)),
]  # fmt: skip


@pytest.mark.torch
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_resize_gradients_match_torch_interpolate(case):
    mode, align, antialias, shape, size, attrs = case
    x = _r(*shape)
    sizes = _i64(*shape[:2], *size)
    ins = [("x", x), ("roi", None), ("scales", None), ("sizes", sizes)]
    y, args = _ours(_model("Resize", ins, 19, **attrs), ins, grad=("x",))
    g = _r(*y.shape, seed=1)
    F.sum(F.mul(y, g)).backward()
    xt = torch.tensor(x, requires_grad=True)
    kw = {} if align is None else dict(align_corners=align)
    yt = tf.interpolate(xt, size=size, mode=mode, antialias=antialias, **kw)
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(args["x"].grad, xt.grad.numpy(), rtol=1e-5, atol=1e-5)


def _check_fd(m, ins, wrt):
    names = [n for n, a in ins if a is not None]
    mod = load(m, check=False)
    ts = [Tensor(a, requires_grad=n in wrt) for n, a in ins if a is not None]
    res = gradcheck(lambda *a: mod(*a), ts, atol=1e-6, rtol=1e-5)
    assert res.passed, dict(zip(names, res.max_abs_error))


@pytest.mark.parametrize("attrs", [
    dict(mode="cubic", antialias=1, coordinate_transformation_mode="half_pixel_symmetric"),
    dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
         extrapolation_value=2.0),
    dict(mode="nearest"),
])  # fmt: skip
def test_resize_gradients_match_finite_differences(attrs):
    roi = _r(4, seed=3).astype(np.float64) * 0.2 + _f32(0.1, 0.1, 0.9, 1.1)
    ins = [("x", _r(1, 2, 4, 5, dtype=np.float64)), ("roi", roi), ("scales", None),
           ("sizes", _i64(3, 7))]  # fmt: skip
    _check_fd(_model("Resize", ins, 19, axes=[2, 3], **attrs), ins, ("x",))


# -- GridSample and AffineGrid ------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("pad", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_matches_torch_with_gradients(mode, pad, align):
    x, grid = _r(2, 3, 5, 6), np.random.default_rng(2).uniform(-1.6, 1.6, (2, 4, 7, 2))
    ins = [("x", x), ("grid", grid.astype(np.float32))]
    m = _model("GridSample", ins, 20, mode=mode, padding_mode=pad, align_corners=align)
    y, args = _ours(m, ins, grad=("x", "grid"))
    g = _r(*y.shape, seed=1)
    F.sum(F.mul(y, g)).backward()
    xt, gt = (torch.tensor(a, requires_grad=True) for _, a in ins)
    tmode = {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode)
    yt = tf.grid_sample(xt, gt, mode=tmode, padding_mode=pad, align_corners=bool(align))
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(args["x"].grad, xt.grad.numpy(), rtol=1e-5, atol=1e-5)
    if mode != "nearest":  # nearest has no gradient w.r.t. the grid (torch's is zeros)
        np.testing.assert_allclose(args["grid"].grad, gt.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_volumetric_grid_sample_matches_torch(mode):
    x, grid = _r(1, 2, 3, 4, 5), np.random.default_rng(2).uniform(-1.2, 1.2, (1, 2, 3, 4, 3))
    ins = [("x", x), ("grid", grid.astype(np.float32))]
    y, args = _ours(_model("GridSample", ins, 22, mode=mode), ins, grad=("x",))
    F.sum(y).backward()
    xt = torch.tensor(x, requires_grad=True)
    yt = tf.grid_sample(xt, torch.tensor(ins[1][1]), mode="bilinear" if mode == "linear" else mode,
                        align_corners=False)  # fmt: skip
    yt.sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(args["x"].grad, xt.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.ort
@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_grid_sample_16_names_match_onnxruntime(mode):
    ins = [("x", _r(1, 2, 4, 5)), ("grid", _r(1, 3, 3, 2, seed=4))]
    m = _model("GridSample", ins, 16, mode=mode, padding_mode="border")
    y, _ = _ours(m, ins)
    np.testing.assert_allclose(y.data, _ort(m, ins), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode, pad", [("linear", "reflection"), ("cubic", "zeros"),
                                       ("cubic", "border")])  # fmt: skip
def test_grid_sample_gradients_match_finite_differences(mode, pad):
    # keep the points off the pixel grid's kinks: a finite difference across one is meaningless
    grid = np.random.default_rng(5).uniform(-1.3, 1.3, (1, 2, 3, 2))
    ins = [("x", _r(1, 2, 3, 4, dtype=np.float64)), ("grid", grid)]
    _check_fd(_model("GridSample", ins, 20, mode=mode, padding_mode=pad), ins, ("x", "grid"))


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 3, 4, 2), (1, 1, 1, 3)])
@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid_matches_torch_with_gradient(size, align):
    r = len(size) - 2
    theta = _r(size[0], r, r + 1)
    ins = [("theta", theta), ("size", _i64(*size))]
    y, args = _ours(_model("AffineGrid", ins, 20, align_corners=align), ins, grad=("theta",))
    g = _r(*y.shape, seed=1)
    F.sum(F.mul(y, g)).backward()
    tt = torch.tensor(theta, requires_grad=True)
    yt = tf.affine_grid(tt, list(size), align_corners=bool(align))
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(args["theta"].grad, tt.grad.numpy(), rtol=1e-4, atol=1e-4)


# -- CenterCropPad and Col2Im -------------------------------------------------------------------


@pytest.mark.ort
@pytest.mark.parametrize("shape, axes", [((4, 9, 2), None), ((3, 6), [0, -2]), ((8,), [1])])
def test_center_crop_pad_matches_onnxruntime_and_passes_gradient(shape, axes):
    x = _r(5, 6, 3)
    ins = [("x", x), ("shape", _i64(*shape))]
    m = _model("CenterCropPad", ins, 18, **(dict(axes=axes) if axes else {}))
    y, args = _ours(m, ins, grad=("x",))
    np.testing.assert_array_equal(y.data, _ort(m, ins))
    F.sum(y).backward()
    # every input element that survives the crop gets a gradient of one, the rest zero
    assert args["x"].grad.sum() == np.count_nonzero(_ours(m, [("x", x * 0 + 1), ins[1]])[0].data)


@pytest.mark.torch
@pytest.mark.parametrize("attrs", [{}, dict(strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2])])
def test_col2im_matches_torch_fold_with_gradient(attrs):
    block, image = (2, 3), (6, 7)
    unfold_kw = dict(kernel_size=block, stride=attrs.get("strides", 1),
                     dilation=attrs.get("dilations", 1))  # fmt: skip
    pads = attrs.get("pads", [0, 0, 0, 0])
    # torch pads symmetrically: build the column count from torch's own unfold of a padded image
    cols = tf.unfold(torch.zeros(2, 3, image[0] + pads[0] + pads[2],
                                 image[1] + pads[1] + pads[3]), **unfold_kw)  # fmt: skip
    x = _r(*cols.shape)
    ins = [("x", x), ("image", _i64(*image)), ("block", _i64(*block))]
    y, args = _ours(_model("Col2Im", ins, 18, **attrs), ins, grad=("x",))
    g = _r(*y.shape, seed=1)
    F.sum(F.mul(y, g)).backward()
    xt = torch.tensor(x, requires_grad=True)
    full = (image[0] + pads[0] + pads[2], image[1] + pads[1] + pads[3])
    yt = tf.fold(xt, full, **unfold_kw)[:, :, pads[0] : pads[0] + image[0],
                                        pads[1] : pads[1] + image[1]]  # fmt: skip
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(args["x"].grad, xt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_col2im_3d_gradients_match_finite_differences():
    ins = [("x", _r(1, 2 * 8, 3 * 2 * 2, dtype=np.float64)), ("image", _i64(4, 3, 3)),
           ("block", _i64(2, 2, 2))]  # fmt: skip
    _check_fd(_model("Col2Im", ins, 18), ins, ("x",))
