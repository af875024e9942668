"""Import of random, signal and set ops: RandomUniform(Like), RandomNormal(Like), Bernoulli,
Multinomial; HannWindow, HammingWindow, BlackmanWindow, DFT, STFT, MelWeightMatrix; Unique.

Random ops draw a fresh sample on every run. A node with a ``seed`` owns a numpy MT19937
generator (``RandomState(seed)``, drawn as the ONNX reference draws) that goes on across calls,
as Dropout's does; without a seed they draw from the engine's generator (``bp.manual_seed``).
Their outputs carry no gradient.

DFT and STFT are a matmul with a constant DFT matrix (real and imaginary parts interleaved, as
ONNX lays complex values out), so the gradient with respect to the signal (and STFT's window) is
the engine's matmul VJP: exact, and cheap for the transform sizes models use. The matrix of a
node is built once per shape and kept in ``node.state``. Where no gradient is needed they run
numpy's FFT instead (the same transform, in O(n log n)).
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from bpcli import functional as F
from bpcli.onnx.importer import minifloat
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.table import NodeView, norm_axis, register, scalar, wrap

# -- random ------------------------------------------------------------------------------------


def _rng(ctx, node: NodeView):
    seed = node.attr("seed")
    if seed is None:
        return ctx.rng()
    # NOTE: RandomState, not default_rng: a seeded node then draws what the ONNX reference
    # draws for the same seed (on its first call; later calls go on with the stream).
    return node.state.setdefault("rng", np.random.RandomState(int(seed) % 2**32))


def _np_dtype(code: int):
    return np.dtype(helper.tensor_dtype_to_np_dtype(code))


def _out_dtype(node: NodeView, like=None, default: int = 1):
    """The ``dtype`` attribute, else the input's dtype (the *Like ops), else ``default``."""
    code = node.attr("dtype")
    if code:
        return _np_dtype(code)
    if like is not None:
        if like.dtype.kind not in "fV":
            raise node.fail(f"dtype is required for a {like.dtype} input (output must be float)")
        return like.dtype
    return _np_dtype(default)


def _as(values: np.ndarray, dtype: np.dtype):
    return wrap(minifloat.cast(values, dtype) if minifloat.is_narrow_float(dtype) else
                values.astype(dtype))  # fmt: skip


def _uniform(ctx, node, shape, dtype):
    low, high = node.attr("low", 0.0), node.attr("high", 1.0)
    return _as(_rng(ctx, node).random(shape) * (high - low) + low, dtype)


def _normal(ctx, node, shape, dtype):
    mean, scale = node.attr("mean", 0.0), node.attr("scale", 1.0)
    return _as(_rng(ctx, node).standard_normal(shape) * scale + mean, dtype)


@register("RandomUniform", since=1)
def random_uniform(ctx, node, inputs):
    return _uniform(ctx, node, tuple(node.attr("shape")), _out_dtype(node))


@register("RandomUniformLike", since=1)
def random_uniform_like(ctx, node, inputs):
    x = inputs[0]
    return _uniform(ctx, node, x.shape, _out_dtype(node, like=x))


@register("RandomNormal", since=1)
def random_normal(ctx, node, inputs):
    return _normal(ctx, node, tuple(node.attr("shape")), _out_dtype(node))


@register("RandomNormalLike", since=1)
def random_normal_like(ctx, node, inputs):
    x = inputs[0]
    return _normal(ctx, node, x.shape, _out_dtype(node, like=x))


@register("Bernoulli", since=15)
def bernoulli(ctx, node, inputs):
    p = inputs[0].data.astype(np.float64)
    if np.any(~((p >= 0) & (p <= 1))):
        raise node.fail("probabilities must lie in [0, 1]")
    dtype = _np_dtype(node.attr("dtype")) if node.attr("dtype") else inputs[0].dtype
    return _as(_rng(ctx, node).binomial(1, p), dtype)


@register("Multinomial", since=7)
def multinomial(ctx, node, inputs):
    """Samples class indices from unnormalised log-probabilities, one row per batch item."""
    x = inputs[0].data.astype(np.float64)
    if x.ndim != 2:
        raise node.fail(f"input must be [batch_size, class_size], got shape {x.shape}")
    n = int(node.attr("sample_size", 1))
    dtype = _np_dtype(node.attr("dtype", 6))
    if dtype not in (np.int32, np.int64):
        raise node.fail(f"dtype {dtype} is not int32 or int64")
    cdf = np.cumsum(np.exp(x - x.max(axis=1, keepdims=True)), axis=1)
    u = _rng(ctx, node).random((x.shape[0], n)) * cdf[:, -1:]
    out = np.stack([np.searchsorted(c, r, side="right") for c, r in zip(cdf, u, strict=True)])
    return wrap(np.minimum(out.reshape(x.shape[0], n), x.shape[1] - 1).astype(dtype))


# -- windows -----------------------------------------------------------------------------------


def _cosine_window(node, inputs, coeffs):
    """sum_i coeffs[i] cos(2 pi i n / N), N = size (periodic) or size - 1 (symmetric)."""
    size = int(scalar(inputs[0]))
    if size < 0:
        raise node.fail(f"size must be >= 0, got {size}")
    denom = size if node.attr("periodic", 1) else size - 1
    n = np.arange(size, dtype=np.float64)
    if denom <= 0:  # a symmetric window of one point: 0/0 in the formula; 1 as torch and scipy
        y = np.ones(size)
    else:
        y = sum(a * np.cos(2 * np.pi * i * n / denom) for i, a in enumerate(coeffs))
    return _as(y, _np_dtype(node.attr("output_datatype", 1)))


@register("HannWindow", since=17)
def hann_window(ctx, node, inputs):
    return _cosine_window(node, inputs, (0.5, -0.5))


@register("HammingWindow", since=17)
def hamming_window(ctx, node, inputs):
    return _cosine_window(node, inputs, (25 / 46, -21 / 46))


@register("BlackmanWindow", since=17)
def blackman_window(ctx, node, inputs):
    return _cosine_window(node, inputs, (0.42, -0.5, 0.08))


# -- DFT and STFT ------------------------------------------------------------------------------


def _turns(m: np.ndarray, length: int):
    """cos and sin of 2 pi m / length, exact at quarter turns (a real signal's Nyquist bin
    then has an imaginary part of exactly 0, as an FFT gives)."""
    ang = 2 * np.pi * (m % length) / length
    c, s = np.cos(ang), np.sin(ang)
    quarter = (4 * m) % length == 0
    q = (4 * m // length) % 4
    c[quarter] = np.array([1.0, 0.0, -1.0, 0.0])[q[quarter]]
    s[quarter] = np.array([0.0, 1.0, 0.0, -1.0])[q[quarter]]
    return c, s


def dft_matrix(n: int, c: int, length: int, inverse: bool, onesided: bool) -> np.ndarray:
    """The real matrix ``M`` with ``y.reshape(-1) = x.reshape(-1) @ M`` for one signal ``x`` of
    shape (n, c) (c = 1 real, 2 complex) and its transform ``y`` (n_out, 2), or (length, 1) for
    the inverse of a one-sided spectrum (IRFFT). Zero rows drop the samples past ``length``;
    missing rows zero-pad up to it."""
    if onesided and inverse:  # IRFFT: bins k and length - k are conjugates, counted twice
        used = min(n, length // 2 + 1)
        k = np.arange(used)[:, None]
        cos, sin = _turns(k * np.arange(length)[None, :], length)
        w = np.where((k == 0) | (2 * k == length), 1.0, 2.0) / length
        m = np.zeros((n, c, length, 1))
        m[:used, 0, :, 0] = w * cos
        if c == 2:
            m[:used, 1, :, 0] = -w * sin
        return m.reshape(n * c, length)
    n_out = length // 2 + 1 if onesided else length
    used = min(n, length)
    cos, sin = _turns(np.arange(used)[:, None] * np.arange(n_out)[None, :], length)
    # x_j w_jk with w = cos - i sin (forward) or (cos + i sin) / length (inverse)
    p, q = (cos / length, sin / length) if inverse else (cos, -sin)
    m = np.zeros((n, c, n_out, 2))
    m[:used, 0, :, 0], m[:used, 0, :, 1] = p, q
    if c == 2:
        m[:used, 1, :, 0], m[:used, 1, :, 1] = -q, p
    return m.reshape(n * c, n_out * 2)


def _fft(a: np.ndarray, axis: int, length: int, inverse: bool, onesided: bool) -> np.ndarray:
    """The transform ``dft_matrix`` computes, by numpy's FFT: O(n log n) where no gradient is
    needed, and rounded as the FFT the ONNX test data were made with."""
    z = a[..., 0] if a.shape[-1] == 1 else a[..., 0] + 1j * a[..., 1]
    if onesided and inverse:
        return np.fft.irfft(z, length, axis)[..., None].astype(a.dtype)
    fn = np.fft.rfft if onesided else np.fft.ifft if inverse else np.fft.fft
    y = fn(z, length, axis)
    return np.stack([y.real, y.imag], axis=-1).astype(a.dtype)


def _dft(node, x, axis: int, length: int, inverse: bool, onesided: bool):
    """The DFT of ``x`` (complex values along its last axis) along ``axis``."""
    c, n = x.shape[-1], x.shape[axis]
    if c not in (1, 2):
        raise node.fail(f"the last axis holds (real, imag): size 1 or 2, got {c}")
    if onesided and not inverse and c == 2:
        raise node.fail("onesided=1 with inverse=0 needs a real input (last axis of size 1)")
    if length < 1:
        raise node.fail(f"dft_length must be >= 1, got {length}")
    if not grad(x):
        return wrap(_fft(x.data, axis, length, inverse, onesided))
    key = (n, c, length, inverse, onesided, x.dtype.str)
    cache = node.state.setdefault("dft", {})
    if key not in cache:
        if len(cache) >= 8:  # a graph run on ever new lengths must not hoard matrices
            cache.clear()
        cache[key] = wrap(dft_matrix(n, c, length, inverse, onesided).astype(x.dtype))
    m = cache[key]
    r = x.ndim
    perm = [d for d in range(r - 1) if d != axis] + [axis, r - 1]
    lead = [x.shape[d] for d in perm[:-2]]
    h = F.reshape(F.permute(x, *perm), (int(np.prod(lead, dtype=np.int64)), n * c))
    y = F.reshape(F.matmul(h, m), (*lead, -1, 1 if onesided and inverse else 2))
    return F.permute(y, *np.argsort(perm).tolist())


@register("DFT", since=17)
def dft(ctx, node, inputs):
    x = inputs[0]
    r = x.ndim
    if node.opset >= 20:
        axis = scalar(inputs[2] if len(inputs) > 2 else None, -2)
    else:
        axis = node.attr("axis", 1)
    axis = norm_axis(int(axis), r, node)
    if r < 2 or axis == r - 1:
        raise node.fail(f"axis {axis} is the (real, imag) axis of a rank-{r} input")
    inverse, onesided = bool(node.attr("inverse", 0)), bool(node.attr("onesided", 0))
    n = x.shape[axis]
    length = scalar(inputs[1] if len(inputs) > 1 else None)
    if length is None:
        length = 2 * (n - 1) if inverse and onesided else n
    return _dft(node, x, axis, int(length), inverse, onesided)


@register("STFT", since=17)
def stft(ctx, node, inputs):
    x, step = inputs[0], scalar(inputs[1])
    window = inputs[2] if len(inputs) > 2 else None
    length = scalar(inputs[3] if len(inputs) > 3 else None)
    if x.ndim != 3:
        raise node.fail(f"signal must be [batch, signal_length, 1 or 2], got shape {x.shape}")
    if window is not None and window.ndim != 1:
        raise node.fail(f"window must be 1-D, got shape {window.shape}")
    if length is None:
        length = window.shape[0] if window is not None else x.shape[1]
    if window is not None and window.shape[0] != length:
        raise node.fail(f"window length {window.shape[0]} != frame_length {length}")
    if step is None or step < 1 or not 1 <= length <= x.shape[1]:
        raise node.fail(f"needs frame_step >= 1 and 1 <= frame_length <= {x.shape[1]}, got "
                        f"{step} and {length}")  # fmt: skip
    n_frames = (x.shape[1] - length) // step + 1
    idx = (np.arange(n_frames)[:, None] * step + np.arange(length)[None, :]).reshape(-1)
    frames = F.reshape(F.index_select(x, 1, wrap(idx)), (x.shape[0], n_frames, length, -1))
    if window is not None:
        frames = F.mul(frames, F.reshape(window, (length, 1)))
    return _dft(node, frames, 2, int(length), False, bool(node.attr("onesided", 1)))


@register("MelWeightMatrix", since=17)
def mel_weight_matrix(ctx, node, inputs):
    """Triangular filters, peak 1, between edges equally spaced on the mel scale
    mel(f) = 2595 log10(1 + f / 700), each edge snapped down to a DFT bin."""
    n_mel, n_fft, rate = (int(scalar(t)) for t in inputs[:3])
    lo, hi = float(scalar(inputs[3])), float(scalar(inputs[4]))
    if n_mel < 1 or n_fft < 1 or rate <= 0 or not 0 <= lo < hi:
        raise node.fail(f"needs positive num_mel_bins, dft_length and sample_rate and "
                        f"0 <= lower_edge_hertz < upper_edge_hertz, got {n_mel}, {n_fft}, "
                        f"{rate}, {lo}, {hi}")  # fmt: skip
    mel_lo, mel_hi = (2595 * np.log10(1 + f / 700) for f in (lo, hi))
    # NOTE: the step divides by the number of edges (n_mel + 2), not the gaps between them
    # (n_mel + 1), so the top band ends below upper_edge_hertz: as the ONNX test's reference
    # and onnxruntime compute it.
    mel = mel_lo + np.arange(n_mel + 2) * (mel_hi - mel_lo) / (n_mel + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    edge = np.floor((n_fft + 1) * hz / rate).astype(np.int64)
    if edge[-1] > n_fft // 2:
        raise node.fail(f"upper_edge_hertz {hi} lies past the last of the {n_fft // 2 + 1} DFT "
                        f"bins (sample_rate / 2 = {rate / 2})")  # fmt: skip
    out = np.zeros((n_fft // 2 + 1, n_mel))
    for i in range(n_mel):
        a, b, c = edge[i : i + 3]
        if b == a:
            out[b, i] = 1.0
        else:
            out[a : b + 1, i] = (np.arange(a, b + 1) - a) / (b - a)
        if c > b:
            out[b:c, i] = (c - np.arange(b, c)) / (c - b)
    return _as(out, _np_dtype(node.attr("output_datatype", 1)))


# -- Unique ------------------------------------------------------------------------------------


@register("Unique", since=11)
def unique(ctx, node, inputs):
    """NaNs count as one value (numpy's rule); the gradient of Y reaches each value's first
    occurrence in X (Y is a gather of them)."""
    x = inputs[0]
    axis = node.attr("axis")
    if axis is not None:
        axis = norm_axis(int(axis), x.ndim, node)
    _, first, inverse, counts = np.unique(x.data, return_index=True, return_inverse=True,
                                          return_counts=True, axis=axis)  # fmt: skip
    inverse = inverse.reshape(-1)
    if not node.attr("sorted", 1):  # order of first occurrence
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    idx = wrap(first.astype(np.int64))
    flat = F.reshape(x, (-1,)) if axis is None else x
    axis = 0 if axis is None else axis
    y = F.index_select(flat, axis, idx) if grad(x) else wrap(np.take(flat.data, first, axis=axis))
    return y, idx, wrap(inverse.astype(np.int64)), wrap(counts.astype(np.int64))
