"""The places where numpy and PyTorch disagree: bpcli answers as torch does (issue 11).

Each test computes torch's answer with torch itself and asserts bpcli's matches it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

RNG = np.random.default_rng(11)


def _pair(*shape, dtype=np.float64):
    a = RNG.standard_normal(shape).astype(dtype)
    return bp.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _same(y, ty, x=None, tx=None):
    """Values (and, given the inputs, the gradients of a random upstream) equal torch's."""
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=0, equal_nan=True)
    if x is not None:
        g = RNG.standard_normal(y.shape)
        y.backward(g)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, equal_nan=True)


# -- transpose / permute / T / mT -----------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "call"),
    [
        ((2, 3), lambda t: t.transpose(0, 1)),
        ((2, 3), lambda t: t.transpose(1, 0)),
        ((2, 3, 4), lambda t: t.transpose(0, 2)),
        ((2, 3, 4), lambda t: t.transpose(-1, 1)),
        ((2, 3, 4), lambda t: t.transpose(1, 1)),
        ((2, 3, 4), lambda t: t.permute(2, 0, 1)),
        ((2, 3, 4), lambda t: t.permute((1, 2, 0))),
        ((2, 3, 4), lambda t: t.swapaxes(0, 1)),
        ((2, 3, 4), lambda t: t.mT),
        ((2, 3), lambda t: t.t()),
        ((3,), lambda t: t.t()),
    ],
)
def test_transpose_swaps_two_dims_as_torch(shape, call):
    x, tx = _pair(*shape)
    _same(call(x), call(tx), x, tx)


def test_t_property_reverses_all_dims_and_transpose_rejects_a_permutation():
    x, tx = _pair(2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates .T beyond 2-D; it still reverses
        _same(x.T, tx.permute(2, 1, 0), x, tx)
    for bad in (lambda: x.transpose(2, 0, 1), lambda: x.transpose((2, 0, 1)), x.transpose):
        with pytest.raises(BpcliError, match="permute"):
            bad()
    assert F.transpose(x, 0, 1).shape == (3, 2, 4)


# -- repeat tiles, repeat_interleave repeats elements ---------------------------------------


@pytest.mark.parametrize(
    ("shape", "sizes"),
    [((3,), (2,)), ((2, 3), (2, 1)), ((2, 3), (1, 3)), ((2, 3), (2, 1, 2)), ((2,), (0,))],
)
def test_repeat_tiles_as_torch(shape, sizes):
    x, tx = _pair(*shape)
    _same(x.repeat(*sizes), tx.repeat(*sizes), x, tx)
    x2, tx2 = _pair(*shape)
    _same(x2.repeat(sizes), tx2.repeat(sizes), x2, tx2)


@pytest.mark.parametrize(
    ("repeats", "dim"), [(2, None), (2, 0), (3, 1), ([1, 0, 2], 1), ([2, 1], 0)]
)
def test_repeat_interleave_is_numpys_repeat(repeats, dim):
    x, tx = _pair(2, 3)
    tr = torch.tensor(repeats) if isinstance(repeats, list) else repeats
    _same(x.repeat_interleave(repeats, dim=dim), tx.repeat_interleave(tr, dim=dim), x, tx)


def test_repeat_with_fewer_sizes_than_dims_is_an_error():
    with pytest.raises(BpcliError, match="repeat_interleave"):
        bp.ones(2, 3).repeat(2)


# -- indexing -------------------------------------------------------------------------------

I2 = np.array([0, 2])
I3 = np.array([1, 0, 1])
M3 = np.array([True, False, True])
IDX_2D = np.array([[0, 1], [2, 0]])

INDEXES = [
    (0, slice(None), I2),  # the case: torch (3, 2), numpy (2, 3)
    (I2[:1], slice(None), 0),
    (slice(None), 0, I2),
    (I2[:1], 0, I2),
    (0, I3, I2[:1]),
    (I2[:1], slice(None), I2),  # two index arrays split by a slice: to the front
    (None, 0, slice(None), I2),
    (0, Ellipsis, I2),
    (Ellipsis, 1, I2),
    (0, M3, slice(None)),
    (slice(None), M3, 0),
    (1, M3, I2[:1]),
    (0, [0, 2]),
    (IDX_2D[:, :1] % 2, slice(1, None), 1),
    (0, slice(None), IDX_2D),
    (slice(None), IDX_2D, 3),
    (1, slice(1, None), I2),
    (-1, I3),
]


def _torch_index(index):
    return tuple(torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index)


@pytest.mark.parametrize("index", INDEXES, ids=[str(i) for i in range(len(INDEXES))])
def test_mixed_int_and_array_indexing_follows_torch(index):
    x, tx = _pair(2, 3, 4)
    _same(x[index], tx[_torch_index(index)], x, tx)


@pytest.mark.parametrize(
    "index",
    [(0, slice(None), I2, 1), (slice(None), I2, slice(None), 0), (1, I3, 0, I2[:1])],
)
def test_four_d_indexing_follows_torch(index):
    x, tx = _pair(2, 3, 4, 5)
    _same(x[index], tx[_torch_index(index)], x, tx)


def test_a_zero_d_tensor_index_counts_as_an_int():
    x, tx = _pair(2, 3, 4)
    _same(x[bp.tensor(0), :, bp.tensor(I2)], tx[torch.tensor(0), :, torch.tensor(I2)], x, tx)


@pytest.mark.parametrize("index", [(0, slice(None), I2), (slice(None), M3, 0), (1, I3, I3)])
def test_setitem_follows_torch(index):
    a = RNG.standard_normal((2, 3, 4))
    x, tx = bp.tensor(a.copy()), torch.tensor(a.copy())
    v = RNG.standard_normal(tuple(tx[_torch_index(index)].shape))
    x[index] = v
    tx[_torch_index(index)] = torch.tensor(v)
    np.testing.assert_array_equal(x.data, tx.numpy())


# -- size() and numel() ---------------------------------------------------------------------


def test_size_is_a_method_as_torch():
    x, tx = bp.ones(2, 3, 4), torch.ones(2, 3, 4)
    assert x.size() == tuple(tx.size())
    assert [x.size(d) for d in (0, 1, 2, -1, -3)] == [tx.size(d) for d in (0, 1, 2, -1, -3)]
    assert x.numel() == tx.numel() == 24
    assert bp.tensor(1.0).size() == tuple(torch.tensor(1.0).size()) == ()
    for bad in (3, -4, 1.0):
        with pytest.raises(BpcliError, match="size"):
            x.size(bad)


# -- max / min ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize(("dim", "keepdim"), [(1, False), (0, True), (-1, False)])
def test_max_with_dim_returns_values_and_indices(name, dim, keepdim):
    a = RNG.integers(0, 3, (3, 4)).astype(np.float64)  # ties: torch picks one index
    x, tx = bp.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out = getattr(x, name)(dim=dim, keepdim=keepdim)
    tout = getattr(tx, name)(dim=dim, keepdim=keepdim)
    vals, idx = out  # unpacks as torch's return_types.max
    assert out.values is vals and out.indices is idx
    np.testing.assert_array_equal(idx.data, tout.indices.numpy())
    assert idx.dtype == np.int64
    _same(vals, tout.values, x, tx)
    positional = getattr(F, name)(x, dim)
    np.testing.assert_array_equal(
        positional.values.data, getattr(torch, name)(tx, dim).values.detach()
    )


def test_max_without_dim_amax_and_two_tensors():
    x, tx = _pair(3, 4)
    _same(x.max(), tx.max(), x, tx)
    x, tx = _pair(3, 4)
    _same(x.amax(dim=(0, 1)), tx.amax(dim=(0, 1)), x, tx)
    x, tx = _pair(3, 4)
    _same(x.amin(1, keepdim=True), tx.amin(1, keepdim=True), x, tx)
    a, ta = _pair(3, 4)
    b = RNG.standard_normal((3, 4))
    _same(F.max(a, bp.tensor(b)), torch.max(ta, torch.tensor(b)), a, ta)
    assert x.max(axis=1, keepdims=True).values.shape == (3, 1)  # numpy names stay aliases


# -- dtype promotion ------------------------------------------------------------------------

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _operand(kind, dtype):
    one = np.ones((2,) if kind == "nd" else (), dtype)
    return bp.tensor(one), torch.from_numpy(one)


@pytest.mark.parametrize("kinds", [("nd", "nd"), ("nd", "0d"), ("0d", "nd"), ("0d", "0d")])
def test_promotion_of_tensor_pairs_matches_torch(kinds):
    bad = []
    for da in DTYPES:
        for db in DTYPES:
            a, ta = _operand(kinds[0], da)
            b, tb = _operand(kinds[1], db)
            for op in ("add", "mul"):
                want = str(getattr(torch, op)(ta, tb).dtype).removeprefix("torch.")
                got = str(getattr(F, op)(a, b).dtype)
                if got != want:
                    bad.append((op, da, db, got, want))
    assert not bad


@pytest.mark.parametrize("scalar", [True, 3, 2.5])
@pytest.mark.parametrize("kind", ["nd", "0d"])
def test_promotion_with_python_scalars_matches_torch(scalar, kind):
    bad = []
    for d in DTYPES:
        a, ta = _operand(kind, d)
        for name, f in (("t*s", lambda u, s: u * s), ("s+t", lambda u, s: s + u)):
            want = str(f(ta, scalar).dtype).removeprefix("torch.")
            got = str(f(a, scalar).dtype)
            if got != want:
                bad.append((name, d, got, want))
    assert not bad


def test_float_results_of_ints_take_the_default_dtype():
    cases = [
        (lambda m: m.arange(5.5, 8, 1.0), None),
        (lambda m: m.arange(5), None),
        (lambda m: m.tensor([1, 2]) / 2, None),
        (lambda m: m.tensor([3, 4]) / m.tensor([2, 2]), None),
        (lambda m: m.tensor(2).cos(), None),
        (lambda m: m.tensor([1, 2]).exp(), None),
        (lambda m: m.tensor([1, 2]).sqrt(), None),
        (lambda m: m.ones(3) * m.arange(0.0, 3.0, 1.0), None),
        (lambda m: m.full((2,), 4), None),
        (lambda m: m.full((2,), 4.0), None),
        (lambda m: m.full((2,), True), None),
        (lambda m: m.tensor([1, 2]) + 1.5, None),
    ]
    for make, _ in cases:
        got, want = make(bp), make(torch)
        assert str(got.dtype) == str(want.dtype).removeprefix("torch."), make
        np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-6)


def test_set_default_dtype():
    assert bp.get_default_dtype() == np.float32
    bp.set_default_dtype(np.float64)
    try:
        assert bp.tensor(1.5).dtype == np.float64
        assert (bp.tensor([1, 2]) / 2).dtype == np.float64
        assert bp.zeros(2).dtype == np.float64
    finally:
        bp.set_default_dtype(np.float32)
    with pytest.raises(BpcliError, match="set_default_dtype"):
        bp.set_default_dtype(np.int32)


# -- pow gradients --------------------------------------------------------------------------

POW_POINTS = [(0.0, 0.0), (0.0, 2.0), (0.0, -1.0), (0.0, 0.5), (-2.0, 2.0), (-2.0, 0.5),
              (-2.0, 0.0), (2.0, 3.0), (2.0, 0.0), (0.5, -1.5)]  # fmt: skip


@pytest.mark.parametrize(("a", "b"), POW_POINTS)
def test_pow_gradients_match_torch(a, b):
    x, tx = bp.tensor([a], requires_grad=True), torch.tensor([a], requires_grad=True)
    y, ty = bp.tensor([b], requires_grad=True), torch.tensor([b], requires_grad=True)
    z, tz = x**y, tx**ty
    np.testing.assert_allclose(z.data, tz.detach().numpy(), equal_nan=True)
    z.sum().backward()
    tz.sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), equal_nan=True)
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), equal_nan=True)
    # a Python exponent: x ** 0 is a constant, its gradient 0 even at x = 0
    x2, tx2 = bp.tensor([a], requires_grad=True), torch.tensor([a], requires_grad=True)
    (x2**b).sum().backward()
    (tx2**b).sum().backward()
    np.testing.assert_allclose(x2.grad, tx2.grad.numpy(), equal_nan=True)


# -- var correction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "correction", "dim"),
    [([1.0, 2.0], 5, None), ([1.0, 2.0], 2, None), ([1.0], 1, None), ([], 1, None),
     ([[1.0, 2.0, 4.0], [3.0, 3.0, 5.0]], 3, 1), ([1.0, 2.0, 4.0], 1, None),
     ([1.0, 2.0, 4.0], 0.5, None)],
)  # fmt: skip
def test_var_correction_never_gives_a_negative_variance(data, correction, dim):
    a = np.array(data, np.float64)
    x = bp.tensor(a, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that the degrees of freedom are <= 0
        want = torch.var(torch.tensor(a), dim=dim, correction=correction)
    got = x.var(dim=dim, correction=correction)
    np.testing.assert_allclose(got.data, want.numpy(), equal_nan=True)
