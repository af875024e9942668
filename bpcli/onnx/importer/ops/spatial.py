"""3-D convolution and N-D window pooling composed from the engine's 2-D and slicing ops.

The engine has 2-D conv and pooling kernels only; a 3-D Conv is the sum over the depth taps of
2-D convs on depth slices (depth folded into the batch), a 3-D ConvTranspose scatters each
tap's 2-D transposed conv onto strided output depths, and pooling with what the 2-D kernels
lack (a third axis, AveragePool dilations) is a reduction over one strided slice per kernel
offset. All of it stays differentiable; MaxPool's Indices output is computed in numpy.
"""

from __future__ import annotations

import itertools

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer.table import wrap


def _fold_depth(x):
    """(N, C, D, H, W) -> (N * D, C, H, W), so a 2-D op runs on every depth slice at once."""
    n, c, d, h, w = x.shape
    return F.reshape(F.permute(x, 0, 2, 1, 3, 4), (n * d, c, h, w))


def _unfold_depth(y, n, d):
    """(N * D, C, H, W) -> (N, C, D, H, W), the inverse of ``_fold_depth``."""
    return F.permute(F.reshape(y, (n, d, *y.shape[1:])), 0, 2, 1, 3, 4)


def conv3d(x, w, b, strides, dil, group):
    """y = sum_k conv2d(x[:, :, k * dil_d :: stride_d], w[:, :, k]) on an already padded x."""
    n, kd = x.shape[0], w.shape[2]
    od = (x.shape[2] - dil[0] * (kd - 1) - 1) // strides[0] + 1
    y = None
    for k in range(kd):
        start = k * dil[0]
        depth = slice(start, start + (od - 1) * strides[0] + 1, strides[0])
        xs = F.getitem(x, (slice(None), slice(None), depth))
        yk = F.conv2d(_fold_depth(xs), F.getitem(w, (slice(None), slice(None), k)), None,
                      tuple(strides[1:]), 0, tuple(dil[1:]), group)  # fmt: skip
        y = yk if y is None else F.add(y, yk)
    y = _unfold_depth(y, n, od)
    return F.add(y, F.reshape(b, (-1, 1, 1, 1))) if b is not None else y


def conv_transpose3d(x, w, strides, dil, group):
    """The uncropped 3-D transposed conv (no bias): tap k of input depth d lands on output
    depth d * stride + k * dilation; each tap is a 2-D transposed conv of every depth slice."""
    n, d, kd, sd = x.shape[0], x.shape[2], w.shape[2], strides[0]
    full = sd * (d - 1) + dil[0] * (kd - 1) + 1
    xf = _fold_depth(x)
    y = None
    for k in range(kd):
        yk = F.conv_transpose2d(xf, F.getitem(w, (slice(None), slice(None), k)), None,
                                tuple(strides[1:]), 0, 0, group, tuple(dil[1:]))  # fmt: skip
        yk = F.reshape(yk, (n, d, *yk.shape[1:]))  # (N, D, O, H', W')
        if sd > 1:  # interleave stride - 1 zero slices after each input depth
            z = wrap(np.zeros(yk.shape, yk.dtype))
            yk = F.stack([yk] + [z] * (sd - 1), 2)
            yk = F.getitem(F.reshape(yk, (n, d * sd, *yk.shape[3:])),
                           (slice(None), slice(0, sd * (d - 1) + 1)))  # fmt: skip
        before = k * dil[0]
        after = full - before - yk.shape[1]
        yk = F.pad(yk, [0, 0] * 3 + [before, after]) if before or after else yk
        y = yk if y is None else F.add(y, yk)
    return F.permute(y, 0, 2, 1, 3, 4)


def _out_sizes(sizes, kernel, strides, dil, pads, ceil):
    """Output sizes as the ONNX reference: a ceil-mode window must start inside input + pad."""
    out = []
    for i, size in enumerate(sizes):
        span = size + pads[i][0] + pads[i][1] - dil[i] * (kernel[i] - 1) - 1
        o = (-(-span // strides[i]) if ceil else span // strides[i]) + 1
        if ceil and (o - 1) * strides[i] >= size + pads[i][0]:
            o -= 1
        out.append(o)
    return out


def _windows(x, kernel, strides, dil, outs):
    """One strided slice of ``x`` per kernel offset, each of the output's spatial shape."""
    for offs in itertools.product(*(range(k) for k in kernel)):
        idx = [slice(None), slice(None)]
        for i, k in enumerate(offs):
            s = k * dil[i]
            idx.append(slice(s, s + (outs[i] - 1) * strides[i] + 1, strides[i]))
        yield tuple(idx)


def _pad_to(a, pads, outs, kernel, strides, dil, value):
    """Pad spatial axes by ``pads`` plus the ceil-mode tail the last window needs."""
    spec = []
    for i in range(len(pads)):
        need = (outs[i] - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1
        tail = max(0, need - a.shape[2 + i] - pads[i][0])
        spec.append((pads[i][0], tail))
    torch_pad = [v for b, e in reversed(spec) for v in (b, e)]
    return F.pad(a, torch_pad, "constant", value) if any(torch_pad) else a


def pool_nd(x, is_max, kernel, strides, dil, pads, ceil, count_include_pad):
    """Max or average pooling of any rank as a max / sum over the kernel offsets' slices."""
    outs = _out_sizes(x.shape[2:], kernel, strides, dil, pads, ceil)
    xp = _pad_to(x, pads, outs, kernel, strides, dil, -np.inf if is_max else 0.0)
    y = None
    for idx in _windows(xp, kernel, strides, dil, outs):
        v = F.getitem(xp, idx)
        y = v if y is None else (F.maximum(y, v) if is_max else F.add(y, v))
    if is_max:
        return y
    # the divisor counts the input (and the explicit pads if count_include_pad), never the
    # ceil-mode tail
    ones = np.ones((1, 1, *x.shape[2:]), x.dtype)
    if count_include_pad:
        ones = np.pad(ones, [(0, 0), (0, 0), *pads], constant_values=1)
        mp = _pad_to(wrap(ones), [(0, 0)] * len(pads), outs, kernel, strides, dil, 0.0).data
    else:
        mp = _pad_to(wrap(ones), pads, outs, kernel, strides, dil, 0.0).data
    count = sum(mp[idx] for idx in _windows(mp, kernel, strides, dil, outs))
    return F.div(y, wrap(count.astype(x.dtype)))


def lp_pool_nd(x, p, kernel, strides, dil, pads, ceil):
    """LpPool: y = (sum over the window of |x|^p)^(1/p); padding adds nothing to the sum."""
    outs = _out_sizes(x.shape[2:], kernel, strides, dil, pads, ceil)
    xp = _pad_to(F.pow(F.abs(x), float(p)), pads, outs, kernel, strides, dil, 0.0)
    y = None
    for idx in _windows(xp, kernel, strides, dil, outs):
        v = F.getitem(xp, idx)
        y = v if y is None else F.add(y, v)
    return F.pow(y, 1.0 / p)


def max_pool_indices(x, kernel, strides, dil, pads, ceil, storage_order):
    """ONNX MaxPool's Indices: the flat index of each window's first maximum (row-major, or
    column-major over the spatial axes if ``storage_order`` is 1)."""
    outs = _out_sizes(x.shape[2:], kernel, strides, dil, pads, ceil)
    n, c, sp = x.shape[0], x.shape[1], x.shape[2:]
    flat = np.arange(int(np.prod(sp))).reshape(sp[::-1]).transpose() if storage_order else (
        np.arange(int(np.prod(sp))).reshape(sp))  # fmt: skip
    base = (np.arange(n * c) * int(np.prod(sp))).reshape(n, c, *([1] * len(sp)))
    index = base + flat[None, None]
    spec = []
    for i in range(len(sp)):
        need = (outs[i] - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1
        spec.append((pads[i][0], max(0, need - sp[i] - pads[i][0])))
    xp = np.pad(x, [(0, 0), (0, 0), *spec], constant_values=-np.inf)
    ip = np.pad(index, [(0, 0), (0, 0), *spec], constant_values=-1)
    best, arg = None, None
    for idx in _windows(xp, kernel, strides, dil, outs):
        v, i = xp[idx], ip[idx]
        if best is None:
            best, arg = v.copy(), i.copy()
        else:
            take = v > best
            best[take], arg[take] = v[take], i[take]
    return wrap(arg.astype(np.int64))
