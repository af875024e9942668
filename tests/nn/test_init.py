"""Initialisers: statistics match the formulas."""

import math

import numpy as np
import pytest

from bpcli.engine.tensor import Tensor
from bpcli.nn import init


def empty(*shape):
    return Tensor(np.empty(shape, np.float32))


def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize(
    "fn, shape, std",
    [
        (lambda t: init.xavier_uniform_(t, generator=rng()), (300, 200), math.sqrt(2 / 500)),
        (lambda t: init.xavier_normal_(t, generator=rng()), (300, 200), math.sqrt(2 / 500)),
        (
            lambda t: init.kaiming_uniform_(t, nonlinearity="relu", generator=rng()),
            (300, 200),
            math.sqrt(2 / 200),
        ),
        (
            lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=rng()),
            (300, 200),
            math.sqrt(2 / 300),
        ),
        (lambda t: init.lecun_normal_(t, generator=rng()), (64, 32, 3, 3), math.sqrt(1 / 288)),
        (lambda t: init.lecun_uniform_(t, generator=rng()), (64, 32, 3, 3), math.sqrt(1 / 288)),
        (lambda t: init.normal_(t, 0, 0.5, generator=rng()), (200, 200), 0.5),
    ],
)
def test_std_matches_formula(fn, shape, std):
    t = fn(empty(*shape))
    assert t.dtype == np.float32
    assert abs(t.data.mean()) < 4 * std / math.sqrt(t.numel())
    assert t.data.std() == pytest.approx(std, rel=0.03)


def test_uniform_bounds():
    t = init.kaiming_uniform_(empty(50, 40), a=math.sqrt(5), generator=rng())
    assert np.abs(t.data).max() <= 1 / math.sqrt(40) + 1e-7


def test_trunc_normal_stays_in_bounds():
    t = init.trunc_normal_(empty(10000), std=1.0, a=-0.5, b=0.5, generator=rng())
    assert t.data.min() >= -0.5 and t.data.max() <= 0.5


def test_orthogonal_rows_and_columns():
    wide = init.orthogonal_(Tensor(np.empty((20, 50))), generator=rng())
    np.testing.assert_allclose(wide.data @ wide.data.T, np.eye(20), atol=1e-10)
    tall = init.orthogonal_(Tensor(np.empty((50, 20))), gain=2.0, generator=rng())
    np.testing.assert_allclose(tall.data.T @ tall.data, 4 * np.eye(20), atol=1e-10)


def test_constants_and_gain():
    assert (init.constant_(empty(3), 2.5).data == 2.5).all()
    assert (init.zeros_(empty(3)).data == 0).all() and (init.ones_(empty(3)).data == 1).all()
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
