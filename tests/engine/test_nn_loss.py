"""nn/loss behaviour the torch-oracle cases cannot show: dropout randomness, errors, dtypes."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keep_rate_and_scale(p):
    x = bp.tensor(np.ones(200_000, np.float32), requires_grad=True)
    y = F.dropout(x, p, generator=np.random.default_rng(0))
    kept = y.numpy() != 0
    # 200k Bernoulli draws: the kept fraction is within 5 standard deviations of 1 - p.
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / kept.size)
    np.testing.assert_allclose(y.numpy()[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(y.numpy().mean() - 1) < 0.02  # inverted dropout keeps the expectation
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.numpy())  # dx = g * mask / (1 - p), g = 1
    assert x.grad.dtype == np.float32


def test_dropout_sources_of_randomness():
    x = np.ones((50, 50), np.float32)
    a = F.dropout(x, 0.5, seed=3).numpy()
    np.testing.assert_array_equal(a, F.dropout(x, 0.5, seed=3).numpy())
    assert not np.array_equal(a, F.dropout(x, 0.5, seed=4).numpy())
    b = F.dropout(x, 0.5, generator=np.random.default_rng(9)).numpy()
    np.testing.assert_array_equal(b, F.dropout(x, 0.5, generator=np.random.default_rng(9)).numpy())
    bp.manual_seed(5)
    c = F.dropout(x, 0.5).numpy()
    bp.manual_seed(5)
    np.testing.assert_array_equal(c, F.dropout(x, 0.5).numpy())


def test_dropout_identity_and_all_dropped():
    x = bp.tensor(np.arange(6, dtype=np.float32))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0)
    with pytest.raises(BpcliError, match="between 0 and 1"):
        F.dropout(x, 1.5)


def test_softmax_methods_and_dtype():
    x = bp.tensor(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))
    np.testing.assert_allclose(x.softmax().numpy().sum(-1), 1, rtol=1e-6)
    np.testing.assert_allclose(x.log_softmax(dim=0).numpy(), F.log_softmax(x, axis=0).numpy())
    assert x.softmax().dtype == np.float32
    with pytest.raises(BpcliError, match="out of range"):
        F.softmax(x, axis=2)


def test_cross_entropy_float32_end_to_end():
    rng = np.random.default_rng(0)
    x = bp.tensor(rng.standard_normal((8, 5)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(x, rng.integers(0, 5, 8))
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: F.cross_entropy(x, np.array([0, 5, 1, 2])), "target 5 is out of range"),
        (lambda x: F.cross_entropy(x, np.array([0, 1])), r"target of shape \(4,\)"),
        (lambda x: F.cross_entropy(x, np.zeros(4, np.int64), reduction="avg"), "reduction"),
        (
            lambda x: F.cross_entropy(x, np.zeros(4, np.int64), weight=np.ones(3, np.float32)),
            r"weight must have shape \(5,\)",
        ),
        (lambda x: F.cross_entropy(x, np.zeros((4, 3), np.float32)), "probability targets"),
        (lambda x: F.nll_loss(x, np.array([0, -1, 1, 2])), "target -1 is out of range"),
        (lambda x: F.mse_loss(x, np.zeros((3, 5), np.float32)), "do not broadcast"),
        (lambda x: F.embedding(np.array([0, 9]), x), r"index out of range \[0, 4\)"),
        (lambda x: F.embedding(np.array([0.5]), x), "indices must be integers"),
        (lambda x: F.kl_div(x, x, reduction="batch"), "reduction"),
    ],
)
def test_user_errors_name_the_problem(call, match):
    x = bp.tensor(np.zeros((4, 5), np.float32))
    with pytest.raises(BpcliError, match=match):
        call(x)


def test_cross_entropy_all_ignored_is_nan_with_zero_grad():
    x = bp.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    loss = F.cross_entropy(x, np.array([-100, -100]))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad, 0)


def test_attention_dropout_runs_and_is_seeded():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3))
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=np.random.default_rng(1))
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.shape == (2, 3, 4) and a.dtype == np.float32
