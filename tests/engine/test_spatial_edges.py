"""Edge cases and user errors of the spatial ops: ties, NaN, empty batches, bad arguments."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def test_max_pool_ties_pick_torchs_index():
    for nd in (1, 2, 3):
        xs = np.zeros((1, 2, *(4,) * nd), np.float32)  # every window is one tie
        _, i = getattr(F, f"max_pool{nd}d")(bp.tensor(xs), 3, 1, 1, return_indices=True)
        _, ti = getattr(TF, f"max_pool{nd}d")(torch.tensor(xs), 3, 1, 1, return_indices=True)
        np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_max_pool3d_propagates_nan_as_torch():
    x = np.arange(2 * 4 * 4 * 4, dtype=np.float64).reshape(1, 2, 4, 4, 4)
    x[0, 1, 1, 2, 3] = np.nan
    y, i = F.max_pool3d(bp.tensor(x), 2, return_indices=True)
    ty, ti = TF.max_pool3d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_empty_batch():
    x = np.zeros((0, 2, 3, 4), np.float32)
    assert F.interpolate(bp.tensor(x), scale_factor=2, mode="bilinear").shape == (0, 2, 6, 8)
    assert F.interpolate(bp.tensor(x), size=(5, 5)).shape == (0, 2, 5, 5)
    assert F.unfold(bp.tensor(x), 2).shape == tuple(TF.unfold(torch.tensor(x), 2).shape)
    g = np.zeros((0, 3, 3, 2), np.float32)
    assert F.grid_sample(bp.tensor(x), bp.tensor(g), align_corners=False).shape == (0, 2, 3, 3)


def test_unpool_repeated_index_keeps_the_first_and_gathers_for_every_input():
    x = bp.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), requires_grad=True)
    idx = np.array([[[[0, 3], [3, 0]]]])
    y = F.max_unpool2d(x, idx, 2)
    tx = torch.tensor(x.numpy(), requires_grad=True)
    ty = TF.max_unpool2d(tx, torch.tensor(idx), 2)
    # NOTE: which repeated write wins is unspecified in torch (it varied between runs here):
    # compare the positions written once, and that a repeated one holds one of its values.
    got, want = y.numpy(), ty.detach().numpy()
    assert got[0, 0, 0, 0] in (1.0, 4.0) and got[0, 0, 0, 3] in (2.0, 3.0)
    rest = np.ones_like(got, bool)
    rest[0, 0, 0, [0, 3]] = False
    np.testing.assert_array_equal(got[rest], want[rest])
    r = np.arange(16.0).reshape(1, 1, 4, 4)
    (y * bp.tensor(r)).sum().backward()
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_upsample_alias_and_align_corners_default():
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4))
    np.testing.assert_allclose(
        F.upsample(bp.tensor(x), scale_factor=2, mode="bilinear").numpy(),
        TF.interpolate(torch.tensor(x), scale_factor=2, mode="bilinear").numpy(),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        F.upsample_nearest(bp.tensor(x), size=5).numpy(),
        TF.interpolate(torch.tensor(x), size=5).numpy(),
    )


X4 = np.zeros((1, 4, 4, 4), np.float32)
X5 = np.zeros((1, 4, 4, 4, 4), np.float32)
W3 = np.zeros((4, 2, 2, 2, 2), np.float32)
ERRORS = [
    (lambda: F.interpolate(X4, size=3, scale_factor=2), "exactly one of size"),
    (lambda: F.interpolate(X4), "exactly one of size"),
    (lambda: F.interpolate(X4, size=3, mode="linear"), "needs a 3-D input"),
    (lambda: F.interpolate(X4, size=3, mode="trilinear"), "needs a 5-D input"),
    (lambda: F.interpolate(X4, size=3, mode="nearest", align_corners=True), "align_corners"),
    (lambda: F.interpolate(X4, size=3, mode="cubic"), "mode must be one of"),
    (lambda: F.interpolate(X4, size=(3, 3, 3)), "size must be"),
    (lambda: F.interpolate(X4, size=3, recompute_scale_factor=True), "not meaningful"),
    (lambda: F.interpolate(X4, scale_factor=0.1), "empty output"),
    (lambda: F.interpolate(X4, size=3, mode="bilinear", antialias=True), "antialias"),
    (lambda: F.grid_sample(X4, np.zeros((1, 2, 2, 3), np.float32)), "grid of shape"),
    (lambda: F.grid_sample(X4, np.zeros((1, 2, 2, 2), np.float32), mode="area"), "mode"),
    (lambda: F.grid_sample(X5, np.zeros((1, 2, 2, 2, 3), np.float32), "bicubic"), "4-D"),
    (lambda: F.grid_sample(X4, np.zeros((1, 2, 2, 2)), align_corners=False), "dtype"),
    (lambda: F.affine_grid(np.zeros((1, 2, 3), np.float32), (1, 1, 2, 2, 2)), "theta"),
    (lambda: F.pixel_shuffle(np.zeros((1, 3, 2, 2)), 2), "divisible by 4"),
    (lambda: F.pixel_unshuffle(np.zeros((1, 3, 3, 2)), 2), "divisible by 2"),
    (lambda: F.pixel_shuffle(np.zeros((1, 4, 2, 2)), 0), "positive int"),
    (lambda: F.conv3d(X4, np.zeros((2, 4, 1, 1, 1), np.float32)), "5 dims"),
    (lambda: F.conv3d(X5, np.zeros((2, 3, 1, 1, 1), np.float32)), "channels"),
    (lambda: F.conv3d(X5, np.zeros((2, 4, 5, 1, 1), np.float32)), "larger than"),
    (lambda: F.conv_transpose3d(X5, W3, stride=2, output_padding=2), "output_padding"),
    (lambda: F.conv_transpose1d(X4, np.zeros((4, 2, 2), np.float32)), "3 dims"),
    (lambda: F.max_pool3d(X4, 2), "5 dims"),
    (lambda: F.max_pool3d(X5, 2, padding=2), "half the kernel"),
    (lambda: F.avg_pool3d(X5, 2, divisor_override=0), "divisor_override"),
    (lambda: F.max_unpool2d(X4, np.zeros((1, 4, 4, 3), np.int64), 2), "indices"),
    (lambda: F.max_unpool2d(X4, np.full((1, 4, 4, 4), 99), 2), "out of range"),
    (
        lambda: F.max_unpool2d(X4, np.zeros((1, 4, 4, 4), np.int64), 2, output_size=(20, 8)),
        "output_size",
    ),
    (lambda: F.unfold(X5, 2), "3 or 4 dims"),
    (lambda: F.unfold(X4, 5), "does not fit"),
    (lambda: F.fold(np.zeros((1, 6, 4), np.float32), (3, 3), 2), "divisible"),
    (lambda: F.fold(np.zeros((1, 8, 5), np.float32), (3, 3), 2), "blocks"),
]


@pytest.mark.parametrize("call, match", ERRORS, ids=[m for _, m in ERRORS])
def test_user_errors_are_one_line_bpcli_errors(call, match):
    with pytest.raises(BpcliError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
