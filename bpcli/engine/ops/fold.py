"""unfold (im2col) and fold (col2im) on 4-D inputs, as torch.nn.functional's.

``unfold`` turns (N, C, H, W) into the (N, C*kh*kw, L) sliding blocks, ``fold`` sums such
blocks back into an image; each is the other's VJP, both on the im2col/col2im kernels that the
2-D convolution uses. Unbatched inputs ((C, H, W) for unfold, (C*k, L) for fold) work as torch's.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.ops.conv import ntuple, out_size
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.conv import col2im, im2col

__all__ = ["fold", "unfold"]


def _cols_to_blocks(cols: np.ndarray) -> np.ndarray:
    """(K, N, oh, ow) -> (N, K, oh * ow)."""
    k, n, oh, ow = cols.shape
    return np.ascontiguousarray(cols.reshape(k, n, oh * ow).transpose(1, 0, 2))


def _blocks_to_cols(b: np.ndarray, blocks: tuple[int, int]) -> np.ndarray:
    """(N, K, oh * ow) -> (K, N, oh, ow) contiguous."""
    return np.ascontiguousarray(b.transpose(1, 0, 2)).reshape(b.shape[1], b.shape[0], *blocks)


class Unfold(Op):
    """y = im2col(x) as (N, C*kh*kw, L); dx = col2im(g)"""

    name, onnx, saves_inputs = "unfold", None, False

    def forward(self, x, *, kernel_size, dilation, padding, stride, blocks):
        self.in_shape = x.shape
        self.geom = (*kernel_size, *stride, *padding, *dilation)
        cols = im2col(np.ascontiguousarray(x), *self.geom, *blocks)
        return _cols_to_blocks(cols)

    def backward(self, g):
        _, c, h, w = self.in_shape
        return col2im(_blocks_to_cols(g, self.attrs["blocks"]), c, h, w, *self.geom)


class Fold(Op):
    """y = col2im(x) (overlapping blocks summed); dx = im2col(g) as (N, C*kh*kw, L)"""

    name, onnx, saves_inputs = "fold", "Col2Im", False

    def forward(self, x, *, output_size, kernel_size, dilation, padding, stride, blocks):
        kh, kw = kernel_size
        self.geom = (*kernel_size, *stride, *padding, *dilation)
        cols = _blocks_to_cols(x, blocks)
        return col2im(cols, x.shape[1] // (kh * kw), *output_size, *self.geom)

    def backward(self, g):
        return _cols_to_blocks(im2col(np.ascontiguousarray(g), *self.geom, *self.attrs["blocks"]))


def _geometry(opname, spatial, kernel_size, dilation, padding, stride):
    ks = ntuple(kernel_size, 2, "kernel_size", opname)
    dl = ntuple(dilation, 2, "dilation", opname)
    pd = ntuple(padding, 2, "padding", opname, low=0)
    st = ntuple(stride, 2, "stride", opname)
    blocks = tuple(
        out_size(n, k, s, p, p, d) for n, k, s, p, d in zip(spatial, ks, st, pd, dl, strict=True)
    )
    if min(blocks) < 1:
        raise BpcliError(
            f"kernel {ks} (dilation {dl}, padding {pd}) does not fit the spatial size "
            f"{tuple(spatial)}: {blocks} blocks",
            opname,
        )
    return dict(kernel_size=ks, dilation=dl, padding=pd, stride=st, blocks=blocks)


def unfold(x, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding blocks of x (N, C, H, W) as (N, C*kh*kw, L) (torch.nn.functional.unfold)."""
    x = lift(x)
    if x.ndim == 3:
        return unfold(x[None], kernel_size, dilation, padding, stride)[0]
    if x.ndim != 4:
        raise BpcliError(f"input of shape {x.shape} must have 3 or 4 dims (N, C, H, W)", "unfold")
    attrs = _geometry("unfold", x.shape[2:], kernel_size, dilation, padding, stride)
    return Unfold.apply(x, **attrs)


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum of blocks x (N, C*kh*kw, L) into (N, C, *output_size) (torch.nn.functional.fold)."""
    x = lift(x)
    if x.ndim == 2:
        return fold(x[None], output_size, kernel_size, dilation, padding, stride)[0]
    if x.ndim != 3:
        raise BpcliError(f"input of shape {x.shape} must have 2 or 3 dims (N, C*k, L)", "fold")
    out = ntuple(output_size, 2, "output_size", "fold")
    attrs = _geometry("fold", out, kernel_size, dilation, padding, stride)
    k = attrs["kernel_size"][0] * attrs["kernel_size"][1]
    if x.shape[1] % k:
        raise BpcliError(
            f"input of shape {x.shape}: dim 1 must be divisible by the kernel size product {k}",
            "fold",
        )
    nb = attrs["blocks"][0] * attrs["blocks"][1]
    if x.shape[2] != nb:
        raise BpcliError(
            f"input of shape {x.shape} has {x.shape[2]} blocks, but output_size {out} with "
            f"kernel {attrs['kernel_size']} makes {nb}",
            "fold",
        )
    return Fold.apply(x, output_size=out, **attrs)
