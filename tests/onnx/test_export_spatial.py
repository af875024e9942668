"""The spatial ops exported and run by onnxruntime: conv3d, conv_transpose1d/3d, 3-D pools,
fold, and the composites interpolate, grid_sample, affine_grid, pixel_shuffle."""

from __future__ import annotations

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort


def _w(*shape, seed=3):
    return bp.tensor(randn(*shape, seed=seed), requires_grad=True)


MODELS = {
    "conv3d": (lambda: Fn(lambda m, x: F.conv3d(x, m.w, m.b, stride=(1, 2, 1), padding=1,
                                                 groups=2), w=_w(4, 1, 3, 2, 3), b=_w(4)),
               (2, 2, 5, 6, 7)),
    "conv_transpose1d": (lambda: Fn(lambda m, x: F.conv_transpose1d(
        x, m.w, m.b, stride=2, padding=1, output_padding=1), w=_w(3, 2, 3), b=_w(2)), (2, 3, 6)),
    "conv_transpose3d": (lambda: Fn(lambda m, x: F.conv_transpose3d(
        x, m.w, stride=2, padding=(1, 0, 1), output_padding=(1, 0, 0)), w=_w(2, 3, 3, 2, 3)),
        (2, 2, 3, 4, 3)),
    "max_pool3d": (lambda: Fn(lambda m, x: F.max_pool3d(x, 3, 2, 1, ceil_mode=True)),
                   (2, 2, 5, 6, 7)),
    "avg_pool3d": (lambda: Fn(lambda m, x: F.avg_pool3d(x, 2, 2, 1, count_include_pad=False)),
                   (2, 2, 5, 6, 7)),
    "interpolate_bilinear": (lambda: Fn(lambda m, x: F.interpolate(
        x, scale_factor=2, mode="bilinear", align_corners=False)), (2, 3, 4, 5)),
    "interpolate_nearest": (lambda: Fn(lambda m, x: F.interpolate(x, size=(7, 3))),
                            (2, 3, 4, 5)),
    "pixel_shuffle": (lambda: Fn(lambda m, x: F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2)),
                      (2, 8, 3, 4)),
    "grid_sample": (lambda: Fn(lambda m, x, g: F.grid_sample(x, g, "bilinear", "border",
                                                              False)),
                    ((2, 3, 6, 7), (2, 4, 5, 2))),
    "grid_sample_nearest": (lambda: Fn(lambda m, x, g: F.grid_sample(x, g, "nearest", "zeros",
                                                                      True)),
                            ((2, 3, 6, 7), (2, 4, 5, 2))),
}  # fmt: skip


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_spatial_export_matches_onnxruntime(name, opset, tmp_path):
    make, shape = MODELS[name]
    if name.startswith("grid_sample") and opset < 16:
        pytest.skip("GridSample needs opset 16")
    if isinstance(shape[0], tuple):  # image and grid
        x = (randn(*shape[0]), np.clip(randn(*shape[1], seed=2) * 0.7, -1.2, 1.2))
    else:
        x = randn(*shape)
    check_export(make(), x, tmp_path, opset, grow=not isinstance(x, tuple))


def test_fold_exports_as_col2im(tmp_path):
    m = Fn(lambda m, x: F.fold(x, (5, 6), (2, 3), padding=(1, 0), stride=(2, 1)))
    _, proto = check_export(m, randn(2, 12, 12), tmp_path, 18)
    assert "Col2Im" in [n.op_type for n in proto.graph.node]


def test_fold_before_opset_18_is_an_error(tmp_path):
    m = Fn(lambda m, x: F.fold(x, (5, 6), (2, 3), padding=(1, 0), stride=(2, 1)))
    with pytest.raises(BpcliError, match="opset 18"):
        check_export(m, randn(2, 12, 12), tmp_path, 17)


def test_grid_sample_before_opset_16_is_an_error(tmp_path):
    m = Fn(lambda m, x, g: F.grid_sample(x, g, align_corners=False))
    with pytest.raises(BpcliError, match="opset 16"):
        check_export(m, (randn(1, 2, 4, 5), randn(1, 3, 3, 2) * 0.5), tmp_path, 13)


def test_grid_sample_5d_exports_at_opset_20(tmp_path):
    m = Fn(lambda m, x, g: F.grid_sample(x, g, "bilinear", "zeros", True))
    x, g = randn(1, 2, 3, 4, 5), np.clip(randn(1, 2, 3, 2, 3, seed=4) * 0.6, -1.1, 1.1)
    check_export(m, (x, g), tmp_path, 20, grow=False)
