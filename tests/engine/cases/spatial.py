"""Cases for the spatial ops: conv3d.py, pool3d.py, fold.py, grid.py and resample.py.

Max-pool inputs are distinct values (no ties), so indices and gradients are defined. Composite
functions (interpolate, affine_grid, pixel_shuffle, ...) are checked through the primitives they
are built of (matmul, index_select, reshape, transpose).
"""

import torch.nn.functional as TF

from bpcli import functional as F
from tests.engine.cases.pool import _distinct_inputs
from tests.engine.harness import Case, fixed

TOL = dict(tol32=(1e-4, 1e-4), tol64=(1e-9, 1e-10))


def _grid_inputs(shapes, dtype, rng):
    # sampling points a little past [-1, 1], so every padding rule is exercised
    return [rng.standard_normal(shapes[0]).astype(dtype),
            rng.uniform(-1.2, 1.2, shapes[1]).astype(dtype)]  # fmt: skip


def _unpool(m, nd, **kw):
    def fn(x):
        y, i = getattr(m, f"max_pool{nd}d")(x, 2, return_indices=True, **kw)
        return getattr(m, f"max_unpool{nd}d")(y, i, 2, output_size=x.shape[2:])

    return fn


CONV3D = dict(stride=(1, 2, 1), padding=(1, 0, 2), dilation=(2, 1, 1))
CT3D = dict(stride=(2, 1, 3), padding=(1, 0, 1), output_padding=(1, 0, 2), groups=2,
            dilation=(1, 2, 1))  # fmt: skip
CT1D = dict(stride=3, padding=1, output_padding=1, groups=2, dilation=2)
FOLD = dict(kernel_size=(2, 3), dilation=(1, 2), padding=(1, 0), stride=(2, 1))
P3 = dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0))

CASES = [
    Case(
        "conv3d",
        lambda x, w, b: F.conv3d(x, w, b, **CONV3D),
        lambda x, w, b: TF.conv3d(x, w, b, **CONV3D),
        fixed((2, 4, 5, 6, 7), (3, 4, 3, 2, 3), (3,)),
        **TOL,
    ),
    Case(
        "conv3d",
        lambda x, w: F.conv3d(x, w, groups=2, padding="same"),
        lambda x, w: TF.conv3d(x, w, groups=2, padding="same"),
        fixed((1, 4, 4, 3, 5), (6, 2, 2, 3, 2)),
        id="conv3d_groups_same",
        **TOL,
    ),
    Case(
        "conv_transpose3d",
        lambda x, w, b: F.conv_transpose3d(x, w, b, **CT3D),
        lambda x, w, b: TF.conv_transpose3d(x, w, b, **CT3D),
        fixed((2, 4, 3, 4, 3), (4, 3, 3, 2, 3), (6,)),
        **TOL,
    ),
    Case(
        "conv_transpose1d",
        lambda x, w, b: F.conv_transpose1d(x, w, b, **CT1D),
        lambda x, w, b: TF.conv_transpose1d(x, w, b, **CT1D),
        fixed((2, 4, 5), (4, 3, 3), (6,)),
        covers=("conv_transpose2d",),
        **TOL,
    ),
    Case(
        "max_pool3d",
        lambda x: F.max_pool3d(x, **P3, dilation=(1, 1, 2), ceil_mode=True),
        lambda x: TF.max_pool3d(x, **P3, dilation=(1, 1, 2), ceil_mode=True),
        fixed((2, 3, 5, 6, 7)),
        gen=_distinct_inputs,
        **TOL,
    ),
    Case(
        "max_pool3d_with_indices",
        lambda x: F.max_pool3d(x, 2, return_indices=True),
        lambda x: TF.max_pool3d(x, 2, return_indices=True),
        fixed((2, 2, 4, 5, 6)),
        gen=_distinct_inputs,
        **TOL,
    ),
    Case(
        "max_pool2d_with_indices",
        lambda x: F.max_pool2d(x, 3, 2, 1, return_indices=True),
        lambda x: TF.max_pool2d(x, 3, 2, 1, return_indices=True),
        fixed((2, 3, 6, 7)),
        gen=_distinct_inputs,
        **TOL,
    ),
    Case(
        "max_pool1d_with_indices",
        lambda x: F.max_pool1d(x, 3, 2, 1, dilation=2, return_indices=True),
        lambda x: TF.max_pool1d(x, 3, 2, 1, dilation=2, return_indices=True),
        fixed((2, 3, 9)),
        gen=_distinct_inputs,
        **TOL,
    ),
    Case(
        "avg_pool3d",
        lambda x: F.avg_pool3d(x, **P3, ceil_mode=True, count_include_pad=False),
        lambda x: TF.avg_pool3d(x, **P3, ceil_mode=True, count_include_pad=False),
        fixed((2, 3, 5, 6, 7)),
        **TOL,
    ),
    Case(
        "avg_pool3d",
        lambda x: F.avg_pool3d(x, 3, 2, 1, divisor_override=5),
        lambda x: TF.avg_pool3d(x, 3, 2, 1, divisor_override=5),
        fixed((1, 2, 5, 4, 6)),
        id="avg_pool3d_divisor_override",
        **TOL,
    ),
    *[
        Case(
            "max_unpool",
            _unpool(F, nd),
            _unpool(TF, nd),
            fixed((2, 3, *(6, 7, 5)[:nd])),
            gen=_distinct_inputs,
            id=f"max_unpool{nd}d",
            covers=(f"max_pool{nd}d_with_indices",),
            **TOL,
        )
        for nd in (1, 2, 3)
    ],
    Case(
        "unfold",
        lambda x: F.unfold(x, **FOLD),
        lambda x: TF.unfold(x, **FOLD),
        fixed((2, 3, 6, 7)),
        **TOL,
    ),
    Case(
        "unfold",
        lambda x: F.unfold(x, 2),
        lambda x: TF.unfold(x, 2),
        fixed((3, 4, 5)),
        id="unfold_unbatched",
        **TOL,
    ),
    Case(
        "fold",
        lambda x: F.fold(x, (6, 7), **FOLD),
        lambda x: TF.fold(x, (6, 7), **FOLD),
        fixed((2, 18, 12)),
        **TOL,
    ),
    Case(
        "fold",
        lambda x: F.fold(x, (4, 5), 2),
        lambda x: TF.fold(x, (4, 5), 2),
        fixed((12, 12)),
        id="fold_unbatched",
        **TOL,
    ),
    *[
        Case(
            "grid_sample",
            lambda x, g, m=m, p=p, a=a: F.grid_sample(x, g, m, p, a),
            lambda x, g, m=m, p=p, a=a: TF.grid_sample(x, g, m, p, a),
            fixed((2, 3, 5, 6), (2, 4, 3, 2)),
            gen=_grid_inputs,
            id=f"grid_sample_{m}_{p}_{int(a)}",
            max_examples=4,
            **TOL,
        )
        for m in ("bilinear", "nearest", "bicubic")
        for p in ("zeros", "border", "reflection")
        for a in (False, True)
    ],
    Case(
        "grid_sample",
        lambda x, g: F.grid_sample(x, g, "bilinear", "border", True),
        lambda x, g: TF.grid_sample(x, g, "bilinear", "border", True),
        fixed((1, 2, 3, 4, 5), (1, 2, 3, 2, 3)),
        gen=_grid_inputs,
        id="grid_sample_5d",
        **TOL,
    ),
    Case(
        "matmul",
        lambda t: F.affine_grid(t, (2, 3, 4, 5), align_corners=False),
        lambda t: TF.affine_grid(t, (2, 3, 4, 5), align_corners=False),
        fixed((2, 2, 3)),
        id="affine_grid_2d",
        **TOL,
    ),
    Case(
        "matmul",
        lambda t: F.affine_grid(t, (1, 2, 3, 4, 2), align_corners=True),
        lambda t: TF.affine_grid(t, (1, 2, 3, 4, 2), align_corners=True),
        fixed((1, 3, 4)),
        id="affine_grid_3d",
        **TOL,
    ),
    *[
        Case(
            "matmul",
            lambda x, m=m, kw=kw: F.interpolate(x, mode=m, **kw),
            lambda x, m=m, kw=kw: TF.interpolate(x, mode=m, **kw),
            fixed(shape),
            id=f"interpolate_{m}_{i}",
            max_examples=3,
            **TOL,
        )
        for m, shape in (
            ("linear", (2, 3, 7)),
            ("bilinear", (2, 3, 5, 6)),
            ("bicubic", (2, 3, 5, 6)),
            ("trilinear", (1, 2, 3, 4, 5)),
            ("area", (2, 3, 7, 6)),
        )
        for i, kw in enumerate(
            (
                dict(size=(7, 3, 4)[: len(shape) - 2]),
                dict(scale_factor=2.3, recompute_scale_factor=True),
                dict(scale_factor=(0.6, 1.7, 2.0)[: len(shape) - 2]),
                *([dict(scale_factor=1.5, align_corners=True)] if m != "area" else []),
            )
        )
    ],
    *[
        Case(
            "index_select",
            lambda x, m=m, kw=kw: F.interpolate(x, mode=m, **kw),
            lambda x, m=m, kw=kw: TF.interpolate(x, mode=m, **kw),
            fixed((2, 3, 5, 6)),
            id=f"interpolate_{m}_{i}",
            max_examples=3,
            **TOL,
        )
        for m in ("nearest", "nearest-exact")
        for i, kw in enumerate(
            (dict(size=(7, 3)), dict(scale_factor=2.3), dict(scale_factor=(0.6, 1.7)))
        )
    ],
    Case(
        "transpose",
        lambda x: F.pixel_shuffle(x, 2),
        lambda x: TF.pixel_shuffle(x, 2),
        fixed((2, 3, 8, 3, 4)),
        id="pixel_shuffle",
        **TOL,
    ),
    Case(
        "transpose",
        lambda x: F.pixel_unshuffle(x, 2),
        lambda x: TF.pixel_unshuffle(x, 2),
        fixed((3, 2, 4, 6)),
        id="pixel_unshuffle",
        **TOL,
    ),
]
