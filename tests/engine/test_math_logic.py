"""Dtype rules and edge cases of the new maths, predicates, logical and bitwise ops, each
against torch: integer inputs, 0, nan, inf, empty tensors, shifts past the bit width."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

INTS = np.array([-7, -3, -1, 0, 1, 2, 5, 9])
DIVS = np.array([2, -2, 3, -3, 5, -4, 7, 2])
SPECIAL = np.array([-np.inf, -2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 2.5, np.inf, np.nan], np.float32)


def same(got, want):
    got, want = got.numpy(), want.numpy()
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["tan", "asin", "atan", "sinh", "log2", "log1p", "expm1",
                                  "exp2", "reciprocal", "acosh", "atanh"])  # fmt: skip
def test_float_functions_turn_integers_into_float32(name):
    x = np.array([1, 2, 0, 3])
    got = getattr(F, name)(bp.tensor(x)).numpy()
    want = getattr(torch, name)(torch.tensor(x)).numpy()
    assert got.dtype == np.float32 == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round", "sign"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_rounding_keeps_integers(name, dtype):
    same(getattr(F, name)(bp.tensor(INTS.astype(dtype))),
         getattr(torch, name)(torch.tensor(INTS.astype(dtype))))  # fmt: skip


def test_sign_of_bool_and_special_values():
    same(F.sign(bp.tensor(np.array([True, False]))), torch.sign(torch.tensor([True, False])))
    for name in ("sign", "floor", "ceil", "trunc", "round", "frac"):
        same(getattr(F, name)(bp.tensor(SPECIAL)), getattr(torch, name)(torch.tensor(SPECIAL)))


def test_round_half_to_even_and_decimals():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.125, 0.375, 1234.5, 1250.0, 1350.0], np.float32)
    for d in (0, 1, 2, -1, -2):
        same(F.round(bp.tensor(x), decimals=d), torch.round(torch.tensor(x), decimals=d))
    with pytest.raises(BpcliError, match="round"):
        F.round(bp.tensor(INTS), decimals=1)


def test_frac_needs_float():
    with pytest.raises(BpcliError, match="frac"):
        F.frac(bp.tensor(INTS))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_division_modes_remainder_fmod(dtype):
    a, b = INTS.astype(dtype), DIVS.astype(dtype)
    ta, tb = torch.tensor(a), torch.tensor(b)
    ba, bb = bp.tensor(a), bp.tensor(b)
    same(ba // bb, ta // tb)
    same(ba % bb, ta % tb)
    same(F.fmod(ba, bb), torch.fmod(ta, tb))
    same(F.remainder(ba, bb), torch.remainder(ta, tb))
    for mode in ("trunc", "floor"):
        same(F.div(ba, bb, rounding_mode=mode), torch.div(ta, tb, rounding_mode=mode))
    # a Python int keeps the tensor's dtype; a float scalar makes it float32
    same(ba % 3, ta % 3)
    same(ba // -2, ta // -2)
    same(7 // bb, 7 // tb)
    same(7 % bb, 7 % tb)
    same(F.fmod(ba, 2.5), torch.fmod(ta, 2.5))


@pytest.mark.parametrize("fn", [lambda a, b: a // b, lambda a, b: a % b,
                                lambda a, b: F.fmod(a, b),
                                lambda a, b: F.div(a, b, rounding_mode="trunc")])  # fmt: skip
def test_integer_division_by_zero_is_an_error(fn):
    with pytest.raises(BpcliError, match="division by zero"):
        fn(bp.tensor(INTS), bp.tensor(np.zeros_like(INTS)))


def test_float_division_by_zero_follows_torch():
    a = np.array([1.0, -1.0, 0.0, np.inf, np.nan], np.float32)
    z = np.zeros_like(a)
    for mode in ("trunc", "floor"):
        same(F.div(bp.tensor(a), bp.tensor(z), rounding_mode=mode),
             torch.div(torch.tensor(a), torch.tensor(z), rounding_mode=mode))  # fmt: skip
    same(F.remainder(bp.tensor(a), bp.tensor(z)), torch.remainder(torch.tensor(a), torch.tensor(z)))
    same(F.fmod(bp.tensor(a), bp.tensor(z)), torch.fmod(torch.tensor(a), torch.tensor(z)))


def test_div_rounding_mode_is_checked():
    with pytest.raises(BpcliError, match="rounding_mode"):
        F.div(bp.tensor([1.0]), 2.0, rounding_mode="round")


def test_rounded_division_has_a_zero_gradient():
    x = bp.tensor(np.array([1.5, -2.5], np.float32), requires_grad=True)
    y = bp.tensor(np.array([2.0, 2.0], np.float32), requires_grad=True)
    ((x // y) + F.div(x, y, rounding_mode="trunc")).sum().backward()
    np.testing.assert_array_equal(x.grad, 0)
    np.testing.assert_array_equal(y.grad, 0)


def test_copysign_and_atan2_signed_zeros():
    a = np.array([1.0, 2.0, 0.0, -3.0], np.float32)
    b = np.array([-0.0, 0.0, -1.0, np.nan], np.float32)
    same(F.copysign(bp.tensor(a), bp.tensor(b)), torch.copysign(torch.tensor(a), torch.tensor(b)))
    y = np.array([0.0, -0.0, 0.0, -0.0], np.float32)
    x = np.array([0.0, 0.0, -0.0, -0.0], np.float32)
    same(F.atan2(bp.tensor(y), bp.tensor(x)), torch.atan2(torch.tensor(y), torch.tensor(x)))


def test_empty_tensors():
    e = np.zeros((0, 3), np.float32)
    for name in ("tan", "floor", "round", "frac", "isnan", "isfinite", "logical_not"):
        same(getattr(F, name)(bp.tensor(e)), getattr(torch, name)(torch.tensor(e)))
    same(F.atan2(bp.tensor(e), bp.tensor(e)), torch.atan2(torch.tensor(e), torch.tensor(e)))
    same(bp.tensor(e.astype(np.int64)) & 3, torch.tensor(e.astype(np.int64)) & 3)


def test_predicates_on_special_values_and_integers():
    for name in ("isnan", "isinf", "isfinite"):
        same(getattr(F, name)(bp.tensor(SPECIAL)), getattr(torch, name)(torch.tensor(SPECIAL)))
        same(getattr(F, name)(bp.tensor(INTS)), getattr(torch, name)(torch.tensor(INTS)))


def test_isclose_and_allclose():
    a = np.array([1.0, np.inf, -np.inf, np.nan, 1e-9, 100.0, np.inf], np.float64)
    b = np.array([1.0 + 1e-6, np.inf, np.inf, np.nan, 0.0, 100.001, 1e308], np.float64)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 1e-8}, {"rtol": 1e-3}):
        same(F.isclose(bp.tensor(a), bp.tensor(b), **kw),
             torch.isclose(torch.tensor(a), torch.tensor(b), **kw))  # fmt: skip
    ia, ib = np.array([1, 5, 100]), np.array([1, 6, 101])
    same(F.isclose(bp.tensor(ia), bp.tensor(ib), rtol=0.01, atol=0),
         torch.isclose(torch.tensor(ia), torch.tensor(ib), rtol=0.01, atol=0))  # fmt: skip
    assert F.allclose(bp.tensor(a[:2]), bp.tensor(b[:2])) is True
    assert F.allclose(bp.tensor(a), bp.tensor(b), equal_nan=True) is False
    assert bp.tensor(np.ones(3)).allclose(bp.tensor(np.ones(3) + 1e-9)) is True
    with pytest.raises(BpcliError, match="isclose"):
        F.isclose(bp.tensor(np.ones(2, np.float32)), bp.tensor(np.ones(2)))


def test_logical_ops_on_any_dtype():
    x = np.array([0.0, 1.5, -2.0, np.nan, 0.0], np.float32)
    y = np.array([0, 0, 3, 1, 7])
    for name in ("logical_and", "logical_or", "logical_xor"):
        same(getattr(F, name)(bp.tensor(x), bp.tensor(y)),
             getattr(torch, name)(torch.tensor(x), torch.tensor(y)))  # fmt: skip
    same(F.logical_not(bp.tensor(x)), torch.logical_not(torch.tensor(x)))
    same(bp.tensor(x).logical_and(1.0), torch.tensor(x).logical_and(torch.tensor(1.0)))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.bool_])
def test_bitwise_ops_and_operators(dtype):
    rng = np.random.default_rng(0)
    a = rng.integers(-100, 100, 12).astype(dtype)
    b = rng.integers(-100, 100, 12).astype(dtype)
    ta, tb, ba, bb = torch.tensor(a), torch.tensor(b), bp.tensor(a), bp.tensor(b)
    same(ba & bb, ta & tb)
    same(ba | bb, ta | tb)
    same(ba ^ bb, ta ^ tb)
    same(~ba, ~ta)
    same(F.bitwise_and(ba, bb), torch.bitwise_and(ta, tb))
    same(F.bitwise_or(ba, bb), torch.bitwise_or(ta, tb))
    same(F.bitwise_xor(ba, bb), torch.bitwise_xor(ta, tb))
    same(F.bitwise_not(ba), torch.bitwise_not(ta))
    s = True if dtype == np.bool_ else 5
    same(ba & s, ta & s)
    same(s | ba, s | ta)
    same(s ^ ba, s ^ ta)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_shifts_match_torch_past_the_bit_width(dtype):
    bits = np.dtype(dtype).itemsize * 8
    a = np.array([1, 3, 100, -8, -1, 0, 77, 5], np.int64).astype(dtype)
    s = np.array([0, 1, 3, 2, bits - 1, bits, bits + 3, 70]).astype(dtype)
    ta, ts, ba, bs = torch.tensor(a), torch.tensor(s), bp.tensor(a), bp.tensor(s)
    same(ba << bs, ta << ts)
    same(ba >> bs, ta >> ts)
    same(F.bitwise_left_shift(ba, bs), torch.bitwise_left_shift(ta, ts))
    same(F.bitwise_right_shift(ba, bs), torch.bitwise_right_shift(ta, ts))
    same(ba << 2, ta << 2)
    same(ba >> 1, ta >> 1)
    same(1 << bs[:4], 1 << ts[:4])


def test_bool_shifts_as_int64():
    t = np.array([True, False])
    same(bp.tensor(t) << 1, torch.tensor(t) << 1)


@pytest.mark.parametrize("fn", [lambda x: x & 1, lambda x: ~x, lambda x: x << 1,
                                lambda x: F.bitwise_xor(x, x), lambda x: 3 | x])  # fmt: skip
def test_bitwise_on_floats_is_an_error(fn):
    with pytest.raises(BpcliError, match="integer or bool"):
        fn(bp.tensor(np.ones(2, np.float32)))


def test_predicates_carry_no_gradient():
    x = bp.tensor(np.array([1.0, np.nan], np.float32), requires_grad=True)
    for out in (F.isnan(x), F.isfinite(x), F.isclose(x, x), F.logical_not(x)):
        assert out.dtype == np.bool_ and not out.requires_grad


def test_user_errors_are_one_line():
    cases = [
        lambda: F.hypot(bp.tensor([1, 2]), bp.tensor([1, 2])),
        lambda: F.lerp(bp.tensor([1, 2]), bp.tensor([1, 2]), 0.5),
        lambda: F.lerp(bp.tensor(np.ones(2, np.float32)), bp.tensor(np.ones(2, np.float32)),
                       bp.tensor(np.ones(2))),
        lambda: F.round(bp.tensor([1.0]), decimals=1.5),
    ]  # fmt: skip
    for fn in cases:
        with pytest.raises(BpcliError) as e:
            fn()
        assert "\n" not in str(e.value)
