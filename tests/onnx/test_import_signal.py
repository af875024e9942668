"""Import of random, signal and set ops (import_ops_signal.py): windows, DFT, STFT and
MelWeightMatrix against onnxruntime and torch, their gradients against torch.fft and float64
finite differences; Unique against numpy, torch and onnxruntime; random ops by shape, dtype,
seed behaviour and sample statistics."""

from __future__ import annotations

import numpy as np
import onnx.reference
import pytest
from onnx import TensorProto, helper

import bpcli
from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load
from bpcli.onnx.importer.ops.signal import dft_matrix
from tests.onnx.node_helpers import fd_check, node_model, run_bpcli, run_ort, vs_torch

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

pytestmark = [pytest.mark.ort, pytest.mark.torch]

RNG = np.random.default_rng(0)
_model, _bp, _ort = node_model, run_bpcli, run_ort


def _vs_torch(node, inputs, opset, torch_fn, wrt, rtol=1e-5, atol=1e-5):
    vs_torch(node, inputs, opset, torch_fn, wrt, rtol, atol)


def _fd(node, inputs, opset, wrt, eps=1e-6, tol=1e-6):
    fd_check(node, inputs, opset, wrt, eps, tol, directions=2)


def _vs_ort(node, inputs, opset, wrt=(), rtol=1e-5, atol=1e-5):
    """Every output against onnxruntime; with ``wrt``, through the gradient (matmul) path."""
    got, _ = _bp(node, inputs, opset, wrt)
    for y, want in zip(got, _ort(node, inputs, opset), strict=True):
        assert y.dtype == want.dtype and y.shape == want.shape
        np.testing.assert_allclose(y.data, want, rtol=rtol, atol=atol)


def _r(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _c(z):
    """A torch complex tensor as ONNX lays it out: (real, imag) on a last axis."""
    return torch.view_as_real(z.resolve_conj()) if z.is_complex() else z.unsqueeze(-1)


# -- windows -----------------------------------------------------------------------------------

WINDOWS = {
    "HannWindow": lambda n, p: torch.hann_window(n, periodic=p, dtype=torch.float64),
    "HammingWindow": lambda n, p: torch.hamming_window(n, periodic=p, alpha=25 / 46,
                                                       beta=21 / 46, dtype=torch.float64),
    "BlackmanWindow": lambda n, p: torch.blackman_window(n, periodic=p, dtype=torch.float64),
}  # fmt: skip


@pytest.mark.parametrize("op", sorted(WINDOWS))
def test_windows_match_torch_and_onnxruntime(op):
    for size in (2, 7, 16):
        for periodic in (0, 1):
            node = helper.make_node(op, ["n"], ["w"], periodic=periodic)
            inputs = {"n": np.array(size, np.int64)}
            (w,), _ = _bp(node, inputs, 17)
            assert w.dtype == np.float32
            want = WINDOWS[op](size, bool(periodic)).numpy()
            np.testing.assert_allclose(w.data, want, atol=1e-6)
            _vs_ort(node, inputs, 17)
    node = helper.make_node(op, ["n"], ["w"], output_datatype=TensorProto.DOUBLE)
    (w,), _ = _bp(node, {"n": np.array(9, np.int32)}, 17)
    assert w.dtype == np.float64 and w.shape == (9,)


def test_symmetric_window_of_one_point_is_one():
    (w,), _ = _bp(helper.make_node("HannWindow", ["n"], ["w"], periodic=0),
                  {"n": np.array(1, np.int64)}, 17)  # fmt: skip
    np.testing.assert_array_equal(w.data, [1.0])


# -- DFT ---------------------------------------------------------------------------------------


def _dft_node(opset, axis, inverse=0, onesided=0, length=None):
    """The node and its extra inputs (opset 20's axis); x and n come first in the graph."""
    ins = ["x", "n" if length is not None else ""]
    if opset >= 20:
        return helper.make_node("DFT", [*ins, "axis"], ["y"], inverse=inverse,
                                onesided=onesided), {"axis": np.array(axis, np.int64)}  # fmt: skip
    return helper.make_node("DFT", ins, ["y"], axis=axis, inverse=inverse, onesided=onesided), {}


DFT_CASES = [  # (input shape, axis, inverse, onesided, dft_length)
    ((2, 8, 3, 1), 1, 0, 0, None),
    ((2, 8, 3, 2), 1, 1, 0, None),
    ((2, 5, 6, 2), -2, 0, 0, 4),  # truncated
    ((2, 5, 6, 1), 2, 1, 0, 9),  # zero-padded
    ((3, 7, 1), 1, 0, 1, None),  # RFFT, odd
    ((3, 4, 6, 1), 2, 0, 1, 5),
    ((3, 5, 2), 1, 1, 1, None),  # IRFFT, default length 8
    ((3, 5, 2), 1, 1, 1, 9),
    ((3, 5, 2), 1, 1, 1, 4),
]


def _np_dft(x, axis, inverse, onesided, length):
    d = axis % x.ndim
    z = x[..., 0] if x.shape[-1] == 1 else x[..., 0] + 1j * x[..., 1]
    if onesided and inverse:
        return np.fft.irfft(z, length, d)[..., None]
    y = (np.fft.rfft if onesided else np.fft.ifft if inverse else np.fft.fft)(z, length, d)
    return np.stack([y.real, y.imag], -1)


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize(("shape", "axis", "inverse", "onesided", "length"), DFT_CASES)
def test_dft_matches_numpy_and_onnxruntime(opset, shape, axis, inverse, onesided, length):
    node, extra = _dft_node(opset, axis, inverse, onesided, length)
    inputs = {"x": _r(*shape)}
    if length is not None:
        inputs["n"] = np.array(length, np.int64)
    inputs.update(extra)
    want = _np_dft(inputs["x"], axis, inverse, onesided, length)
    for wrt in ((), ["x"]):  # numpy's FFT (no gradient), the DFT-matrix path
        (y,), _ = _bp(node, inputs, opset, wrt)
        np.testing.assert_allclose(y.data, want, rtol=1e-5, atol=1e-5)
    # NOTE: onnxruntime's IRFFT disagrees with numpy (and the ONNX test data) unless
    # dft_length // 2 + 1 is the number of bins given
    if not (onesided and inverse and length is not None and length // 2 + 1 != shape[axis]):
        _vs_ort(node, inputs, opset)


def _torch_dft(rank, axis, inverse, onesided, length):
    d = axis % rank  # ONNX counts the (real, imag) axis; torch's complex tensor has none

    def run(x, **_):
        z = torch.view_as_complex(x) if x.shape[-1] == 2 else x[..., 0]
        if onesided and inverse:
            return torch.fft.irfft(z, length, d).unsqueeze(-1)
        fn = torch.fft.rfft if onesided else torch.fft.ifft if inverse else torch.fft.fft
        return _c(fn(z, length, d))

    return run


@pytest.mark.parametrize(("shape", "axis", "inverse", "onesided", "length"), DFT_CASES)
def test_dft_gradient_matches_torch_fft_and_finite_differences(shape, axis, inverse, onesided,
                                                               length):  # fmt: skip
    node, inputs = _dft_node(20, axis, inverse, onesided, length)
    inputs["x"] = _r(*shape)
    if length is not None:
        inputs["n"] = np.array(length, np.int64)
    torch_fn = _torch_dft(len(shape), axis, inverse, onesided, length)
    _vs_torch(node, inputs, 20, torch_fn, ["x"], atol=1e-4)
    _fd(node, inputs, 20, ["x"])


def test_dft_matrix_is_the_fft():
    x = RNG.standard_normal((6, 2))
    z = x[:, 0] + 1j * x[:, 1]
    for length in (4, 6, 9):
        y = (x.reshape(-1) @ dft_matrix(6, 2, length, False, False)).reshape(-1, 2)
        np.testing.assert_allclose(y[:, 0] + 1j * y[:, 1], np.fft.fft(z, length), atol=1e-12)
        y = x.reshape(-1) @ dft_matrix(6, 2, length, True, True)
        np.testing.assert_allclose(y, np.fft.irfft(z, length), atol=1e-12)


def test_dft_rejects_the_complex_axis_and_a_complex_rfft():
    x = {"x": _r(2, 4, 2)}
    with pytest.raises(BpcliError, match="real, imag"):
        _bp(helper.make_node("DFT", ["x"], ["y"], axis=-1), x, 17)
    with pytest.raises(BpcliError, match="needs a real input"):
        _bp(helper.make_node("DFT", ["x"], ["y"], axis=1, onesided=1), x, 17)


# -- STFT --------------------------------------------------------------------------------------


def _stft_node(window: bool, length: bool, onesided=1):
    ins = ["s", "step", "w" if window else "", "len" if length else ""]
    return helper.make_node("STFT", ins, ["y"], onesided=onesided)


@pytest.mark.parametrize(("c", "onesided", "window", "length"),
                         [(1, 1, True, False), (1, 0, False, True), (2, 0, True, True),
                          (1, 1, False, False)])  # fmt: skip
def test_stft_matches_onnxruntime(c, onesided, window, length):
    inputs = {"s": _r(2, 40, c), "step": np.array(6, np.int64)}
    if window:
        inputs["w"] = np.hanning(12).astype(np.float32)
    if length:
        inputs["len"] = np.array(12, np.int64)
    node = _stft_node(window, length, onesided)
    if not (window or length):  # one frame of the whole signal; onnxruntime fails on it
        (y,), _ = _bp(node, inputs, 17)
        want = np.fft.rfft(inputs["s"][:, None, :, 0])
        np.testing.assert_allclose(y.data, np.stack([want.real, want.imag], -1), atol=1e-5)
        return
    _vs_ort(node, inputs, 17, atol=1e-4)
    _vs_ort(node, inputs, 17, wrt=["s", "w"] if window else ["s"], atol=1e-4)


def test_stft_gradient_matches_torch_stft_and_finite_differences():
    inputs = {"s": _r(2, 50, 1), "step": np.array(5, np.int64), "w": _r(16)}
    node = _stft_node(True, False)

    def torch_fn(s, step, w):
        z = torch.stft(s[..., 0], 16, hop_length=5, win_length=16, window=w, center=False,
                       onesided=True, return_complex=True)  # fmt: skip
        return torch.view_as_real(z.transpose(1, 2))

    _vs_torch(node, inputs, 17, torch_fn, ["s", "w"], atol=1e-4)
    _fd(node, inputs, 17, ["s", "w"])


# -- MelWeightMatrix ---------------------------------------------------------------------------


MEL_CASES = [(8, 16, 8192, 0.0, 4096.0), (10, 64, 16000, 20.0, 8000.0),
             (40, 512, 22050, 0.0, 11025.0), (5, 33, 8000, 300.0, 3000.0)]  # fmt: skip


@pytest.mark.parametrize(("mel", "n_fft", "rate", "lo", "hi"), MEL_CASES)
def test_mel_weight_matrix_matches_onnxruntime(mel, n_fft, rate, lo, hi):
    node = helper.make_node("MelWeightMatrix", ["m", "n", "r", "lo", "hi"], ["y"])
    inputs = {"m": np.array(mel, np.int64), "n": np.array(n_fft, np.int64),
              "r": np.array(rate, np.int64), "lo": np.array(lo, np.float32),
              "hi": np.array(hi, np.float32)}  # fmt: skip
    _vs_ort(node, inputs, 17, atol=0)


def test_stft_and_mel_weight_matrix_name_bad_inputs():
    inputs = {"s": _r(1, 20, 2), "step": np.array(4, np.int64), "w": np.ones(8, np.float32)}
    with pytest.raises(BpcliError, match="needs a real input"):
        _bp(_stft_node(True, False), inputs, 17)
    inputs |= {"s": _r(1, 20, 1), "len": np.array(6, np.int64)}
    with pytest.raises(BpcliError, match="window length 8 != frame_length 6"):
        _bp(_stft_node(True, True), inputs, 17)
    node = helper.make_node("MelWeightMatrix", ["m", "n", "r", "lo", "hi"], ["y"])
    bad = {"m": np.array(8, np.int64), "n": np.array(16, np.int64),
           "r": np.array(8000, np.int64), "lo": np.array(0.0, np.float32),
           "hi": np.array(16000.0, np.float32)}  # fmt: skip
    with pytest.raises(BpcliError, match="past the last of the 9 DFT bins"):
        _bp(node, bad, 17)


# -- Unique ------------------------------------------------------------------------------------


def _unique_node(**attrs):
    return helper.make_node("Unique", ["x"], ["y", "idx", "inv", "cnt"], **attrs)


UNIQUE_X = {
    "flat": np.array([[2, 1, 1], [3, 4, 3], [1, 5, 2]], np.float32),
    "rows": np.array([[1, 0, 0], [2, 3, 4], [1, 0, 0], [0, 9, 9]], np.int64),
    "3d": np.array([[[1, 1], [0, 1], [2, 1], [0, 1]]] * 2, np.float32),
}


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize(("key", "axis"),
                         [("flat", None), ("rows", 0), ("rows", None), ("rows", -1), ("3d", 1),
                          ("3d", 2)])  # fmt: skip
def test_unique_matches_numpy_and_onnxruntime(sorted_, key, axis):
    x = UNIQUE_X[key]
    attrs = {"sorted": sorted_} | ({} if axis is None else {"axis": axis})
    node = _unique_node(**attrs)
    (y, idx, inv, cnt), _ = _bp(node, {"x": x}, 11)
    if sorted_:
        want = np.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis)
        for got, w in zip((y, idx, inv, cnt), want, strict=True):
            np.testing.assert_array_equal(got.data, w.reshape(got.shape))
    flat = x.reshape(-1) if axis is None else x
    a = 0 if axis is None else axis
    np.testing.assert_array_equal(np.take(flat, idx.data, axis=a), y.data)  # first occurrences
    np.testing.assert_array_equal(np.take(y.data, inv.data, axis=a), flat)
    assert idx.data.tolist() == sorted(idx.data.tolist()) or sorted_
    if sorted_ or axis is None:  # ORT's unsorted order along an axis is its own
        _vs_ort(node, {"x": x}, 11, atol=0)


def test_unique_matches_torch_unique():
    x = np.array([3, 1, 3, 2, 1, 7], np.int64)
    (y, _, inv, cnt), _ = _bp(_unique_node(), {"x": x}, 11)
    ty, tinv, tcnt = torch.unique(torch.tensor(x), return_inverse=True, return_counts=True)
    for got, w in ((y, ty), (inv, tinv), (cnt, tcnt)):
        np.testing.assert_array_equal(got.data, w.numpy())


def test_unique_gradient_reaches_first_occurrences():
    x = np.array([2.0, 1.0, 2.0, 3.0, 1.0], np.float32)
    (y, *_), ts = _bp(_unique_node(sorted=0), {"x": x}, 11, wrt=["x"])
    F.sum(F.mul(y, Tensor(np.array([10.0, 20.0, 30.0], np.float32)))).backward()
    np.testing.assert_array_equal(ts["x"].grad, [10.0, 20.0, 0.0, 30.0, 0.0])


# -- random ops --------------------------------------------------------------------------------


def _reference(node, inputs, opset=22):
    return onnx.reference.ReferenceEvaluator(_model(node, inputs, opset)).run(None, inputs)[0]


def _rnd(op, inputs=None, **attrs):
    return helper.make_node(op, list(inputs or {}), ["y"], **attrs), inputs or {}


DOUBLE = TensorProto.DOUBLE
RANDOM_CASES = [
    _rnd("RandomUniform", shape=[3, 4], low=-2.0, high=5.0, seed=3.0),
    _rnd("RandomNormal", shape=[5], mean=1.0, scale=2.0, seed=4.0, dtype=DOUBLE),
    _rnd("RandomUniformLike", {"x": _r(2, 3)}, seed=5.0),
    _rnd("RandomNormalLike", {"x": _r(4)}, seed=6.0, dtype=DOUBLE),
    _rnd("Bernoulli", {"x": RNG.random(9)}, seed=7.0),
    _rnd("Bernoulli", {"x": RNG.random((3, 3)).astype(np.float32)}, seed=8.0, dtype=6),
]


@pytest.mark.parametrize(("node", "inputs"), RANDOM_CASES, ids=lambda v: getattr(v, "op_type", ""))
def test_seeded_random_ops_draw_as_the_onnx_reference_then_go_on(node, inputs):
    m = load(_model(node, inputs, 22), check=False)
    first, second = m(*inputs.values()), m(*inputs.values())
    want = _reference(node, inputs)
    assert first.dtype == want.dtype and first.shape == want.shape
    np.testing.assert_allclose(first.data, want, rtol=1e-6, atol=1e-6)
    assert not np.array_equal(first.data, second.data) or node.op_type == "Bernoulli"
    again = load(_model(node, inputs, 22), check=False)(*inputs.values())
    np.testing.assert_array_equal(again.data, first.data)  # a new import starts the stream over


def test_unseeded_random_ops_follow_manual_seed_and_match_onnxruntime_types():
    x = np.zeros((200, 50), np.float32)
    for node in (helper.make_node("RandomUniformLike", ["x"], ["y"], low=2.0, high=3.0),
                 helper.make_node("RandomNormalLike", ["x"], ["y"], mean=-1.0, scale=0.5),
                 helper.make_node("Bernoulli", ["p"], ["y"])):  # fmt: skip
        inputs = {"p" if node.op_type == "Bernoulli" else "x": x + 0.3}
        m = load(_model(node, inputs, 15), check=False)
        bpcli.manual_seed(1)
        a = m(*inputs.values()).data
        bpcli.manual_seed(1)
        np.testing.assert_array_equal(m(*inputs.values()).data, a)
        want = _ort(node, inputs, 15)[0]  # onnxruntime has no opset-22 random kernels
        assert a.dtype == want.dtype and a.shape == want.shape
        mean, std = {"RandomUniformLike": (2.5, 12**-0.5), "RandomNormalLike": (-1.0, 0.5),
                     "Bernoulli": (0.3, 0.21**0.5)}[node.op_type]  # fmt: skip
        assert abs(a.mean() - mean) < 0.02 and abs(a.std() - std) < 0.02


def test_multinomial_samples_the_softmax_of_its_logits():
    logits = np.log(np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]], np.float32) + 1e-30)
    for dtype, np_dtype in ((TensorProto.INT32, np.int32), (TensorProto.INT64, np.int64)):
        node = helper.make_node("Multinomial", ["x"], ["y"], sample_size=20000, dtype=dtype,
                                seed=2.0)  # fmt: skip
        (y,), _ = _bp(node, {"x": logits}, 15)
        want = _ort(node, {"x": logits}, 15)[0]
        assert y.dtype == np_dtype == want.dtype and y.shape == want.shape == (2, 20000)
        freq = np.stack([np.bincount(r, minlength=3) / r.size for r in y.data])
        np.testing.assert_allclose(freq, np.exp(logits), atol=0.015)


def test_bernoulli_rejects_probabilities_outside_0_1():
    with pytest.raises(BpcliError, match=r"\[0, 1\]"):
        _bp(helper.make_node("Bernoulli", ["x"], ["y"]), {"x": np.array([0.5, 1.5])}, 22)
