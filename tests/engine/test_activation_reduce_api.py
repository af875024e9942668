"""Argument handling and user errors of the activation and reduction functions."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError

X = np.arange(-3, 3, dtype=np.float32).reshape(2, 3)


@pytest.mark.parametrize(
    "call, where",
    [
        (lambda x: F.gelu(x, approximate="fast"), "gelu"),
        (lambda x: F.clip(x), "clip"),
        (lambda x: F.clip(x, min="a"), "clip"),
        (lambda x: F.softplus(x, beta=0), "softplus"),
        (lambda x: F.hardtanh(x, 1.0, -1.0), "hardtanh"),
        (lambda x: F.gelu(x.astype("int64")), "gelu"),
        (lambda x: F.norm(x, "nuc"), "norm"),
        (lambda x: F.argmax(x, axis=(0, 1)), "argmax"),
        (lambda x: F.argmax(x, axis=2), "argmax"),
        (lambda x: F.max(x[:, :0], axis=1), "max"),
        (lambda x: F.argmin(x[:, :0]), "argmin"),
        (lambda x: F.var(x.astype("int64")), "var"),
        (lambda x: F.var(x, ddof=1, correction=1), "var"),
        (lambda x: F.sum(x, axis=(0, -2)), "sum"),
    ],
)
def test_user_errors(call, where):
    with pytest.raises(BpcliError) as info:
        call(bp.tensor(X))
    assert info.value.where == where


def test_var_correction_spellings_agree():
    x = bp.tensor(X)
    want = np.var(X, axis=1, ddof=1)
    for y in (F.var(x, 1), F.var(x, 1, correction=1), F.var(x, dim=1, unbiased=True),
              x.var(axis=1, ddof=1)):  # fmt: skip
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(F.var(x, unbiased=False).numpy(), np.var(X), rtol=1e-6)


def test_arg_reductions_are_int64_and_not_tracked():
    x = bp.tensor(X, requires_grad=True)
    i = x.argmax(dim=1, keepdim=True)
    assert i.dtype == np.int64 and i.shape == (2, 1) and not i.requires_grad
    assert x.argmin().item() == 0 and F.argmax(bp.tensor(2.0)).item() == 0


def test_norm_p_alias_and_fro():
    x = bp.tensor(X)
    np.testing.assert_allclose(F.norm(x, p="fro").item(), np.linalg.norm(X), rtol=1e-6)
    np.testing.assert_allclose(x.norm(1, axis=0).numpy(), np.abs(X).sum(0), rtol=1e-6)
    assert F.norm(x, 0).item() == 5


def test_clip_keeps_integer_tensors_integer():
    y = F.clip(bp.tensor(np.arange(5)), 1, 3)
    assert y.dtype == np.int64 and y.tolist() == [1, 1, 2, 3, 3]


def test_activation_gradients_stay_float32():
    x = bp.tensor(X, requires_grad=True)
    y = (x.gelu() + x.elu() + x.selu() + x.silu() + x.softplus() + x.erf() + x.leaky_relu()
         + x.clip(-1, 1) + F.hardtanh(x) + F.gelu(x, approximate="tanh"))  # fmt: skip
    (y.sum() + x.logsumexp() + x.norm() + x.norm(3) + x.max() + x.min() + x.var()).backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
