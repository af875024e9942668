"""User mistakes in the newer activations and losses are one-line BpcliErrors naming the
function; and the torch rules that the op cases cannot draw (implicit softmin dim, kl_div
log_target equivalence, BCE reductions on empty input)."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
P = np.full((3, 4), 0.5, np.float32)


def t(a):
    return bp.tensor(a)


MISTAKES = [
    ("binary_cross_entropy", lambda: F.binary_cross_entropy(t(X), t(P)), "between 0 and 1"),
    ("binary_cross_entropy", lambda: F.binary_cross_entropy(t(P), t(P[:2])), "target size"),
    ("binary_cross_entropy", lambda: F.binary_cross_entropy(t(P), t(P), reduction="avg"),
     "reduction"),
    ("binary_cross_entropy", lambda: F.binary_cross_entropy(t(P), t(P), t(np.ones(3, np.float32))),
     "weight"),
    ("glu", lambda: F.glu(t(X[:, :3])), "even"),
    ("glu", lambda: F.glu(t(X), dim=2), "out of range"),
    ("glu", lambda: F.glu(t(np.float32(1.0))), "0-d"),
    ("prelu", lambda: F.prelu(t(X), t(np.ones(3, np.float32))), "1 or 4"),
    ("prelu", lambda: F.prelu(t(X), t(np.ones(1))), "dtype"),
    ("celu", lambda: F.celu(t(X), 0.0), "alpha"),
    ("softsign", lambda: F.softsign(t(np.array([1, 2]))), "float"),
    ("normalize", lambda: F.normalize(t(np.array([[1, 2]]))), "float"),
    ("multi_margin_loss", lambda: F.multi_margin_loss(t(X), t(np.array([0, 1, 2])), p=3), "p == 1"),
    ("multi_margin_loss", lambda: F.multi_margin_loss(t(X), t(np.array([0, 1, 4]))),
     "out of range"),
    ("multi_margin_loss", lambda: F.multi_margin_loss(t(X), t(np.array([0, 1]))), "3 class"),
    ("triplet_margin_loss", lambda: F.triplet_margin_loss(t(X), t(X), t(X[0])), "1-d or 2-d"),
    ("cosine_similarity", lambda: F.cosine_similarity(t(X), t(X), dim=3), "out of range"),
    ("cosine_similarity", lambda: F.cosine_similarity(t(X), t(X[:2])), "broadcast"),
    ("cosine_embedding_loss", lambda: F.cosine_embedding_loss(t(X), t(X[:2]), t(np.ones(3))),
     "one shape"),
    ("hinge_embedding_loss", lambda: F.hinge_embedding_loss(t(X), t(X), reduction="x"),
     "reduction"),
]  # fmt: skip


@pytest.mark.parametrize("where, fn, match", MISTAKES, ids=[f"{m[0]}-{i}" for i, m in
                                                             enumerate(MISTAKES)])  # fmt: skip
def test_mistakes_are_one_line_errors(where, fn, match):
    with pytest.raises(BpcliError, match=match) as e:
        fn()
    assert where in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 2)])
def test_softmin_implicit_dim_is_torchs(shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with pytest.warns(UserWarning):
        want = torch.nn.functional.softmin(torch.tensor(x)).numpy()
    np.testing.assert_allclose(F.softmin(t(x)).numpy(), want, rtol=1e-6)


def test_kl_div_log_target_equals_plain_target():
    x = np.log(np.random.default_rng(2).dirichlet(np.ones(4), 3)).astype(np.float64)
    y = np.random.default_rng(3).dirichlet(np.ones(4), 3)
    for red in ("batchmean", "sum", "mean", "none"):
        a = F.kl_div(t(x), t(np.log(y)), reduction=red, log_target=True).numpy()
        b = F.kl_div(t(x), t(y), reduction=red).numpy()
        want = torch.nn.functional.kl_div(torch.tensor(x), torch.tensor(np.log(y)),
                                          reduction=red, log_target=True).numpy()  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(a, want, rtol=1e-12)


def test_bce_of_empty_input_is_torchs():
    e = np.zeros((0, 3), np.float32)
    for red in ("mean", "sum", "none"):
        got = F.binary_cross_entropy(t(e), t(e), reduction=red).numpy()
        want = torch.nn.functional.binary_cross_entropy(torch.tensor(e), torch.tensor(e),
                                                        reduction=red).numpy()  # fmt: skip
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_cosine_similarity_of_zero_vectors_is_zero_with_finite_gradient():
    z = bp.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    y = F.cosine_similarity(z, bp.tensor(X[:2, :3]))
    np.testing.assert_array_equal(y.numpy(), 0)
    y.sum().backward()
    assert np.isfinite(z.grad).all()
