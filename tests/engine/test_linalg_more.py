"""Edge cases and user errors of einsum, the fixed-rank products, bpcli.linalg, embedding_bag
and attention, each against torch where torch defines the result."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")
TF = torch.nn.functional
RNG = np.random.default_rng(0)


def rn(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda: F.einsum("ij,jk", rn(2, 3), rn(4, 5)), "subscript j has size 4"),
        (lambda: F.einsum("ij", rn(2, 3, 4)), "names 2"),
        (lambda: F.einsum("ij,jk", rn(2, 3)), "2 operand(s) but 1"),
        (lambda: F.einsum("ij->jj", rn(3, 3)), "more than once"),
        (lambda: F.einsum("ij->k", rn(3, 3)), "does not appear"),
        (lambda: F.einsum("i1", rn(3, 3)), "invalid subscript"),
        (lambda: F.einsum("ii", rn(3, 4)), "subscript i has size 4"),
        (lambda: F.einsum("ii", rn(1, 4)), "sizes [1, 4] differ"),
        (lambda: F.einsum("ij,jk", rn(2, 3), rn(3, 2, dtype=np.float32)), "different dtypes"),
        (lambda: F.einsum(rn(2), [0]), "sublist"),
        (lambda: F.mm(rn(2, 3), rn(3)), "mat2 must be a 2-D"),
        (lambda: F.mm(rn(2, 3), rn(2, 3)), "cannot be multiplied"),
        (lambda: F.bmm(rn(2, 2, 3), rn(1, 3, 2)), "does not broadcast"),
        (lambda: F.mv(rn(2, 3), rn(2)), "cannot be multiplied"),
        (lambda: F.dot(rn(2), rn(3)), "different sizes"),
        (lambda: F.dot(rn(2), rn(2, dtype=np.float32)), "different dtypes"),
        (lambda: F.outer(rn(2, 2), rn(2)), "input must be a 1-D"),
        (lambda: F.addmm(rn(3, 3), rn(2, 3), rn(3, 4)), "does not broadcast to (2, 4)"),
        (lambda: F.addmm(rn(2, 4), rn(2, 3), rn(3, 4), beta="x"), "beta must be a number"),
        (lambda: F.cross(rn(2, 4), rn(2, 4)), "no dimension of size 3"),
        (lambda: F.cross(rn(3, 4), rn(3, 4), dim=1), "size 3 in dim 1"),
        (lambda: bp.linalg.cross(rn(3), rn(2, 3)), "same number of dims"),
        (lambda: F.bilinear(rn(2, 3), rn(3, 4), rn(5, 3, 4)), "same leading dims"),
        (lambda: F.bilinear(rn(2, 3), rn(2, 4), rn(5, 4, 3)), "do not fit weight"),
        (lambda: bp.linalg.matrix_norm(rn(3, 3), 3), "ord must be one of"),
        (lambda: bp.linalg.matrix_norm(rn(3), "fro"), "at least 2 dims"),
        (lambda: bp.linalg.matrix_norm(rn(3, 3), dim=(1, -1)), "dims must be different"),
        (lambda: bp.linalg.vector_norm(np.ones(3, np.int64)), "floating point"),
        (lambda: bp.linalg.norm(rn(2, 2, 2), 2), "1-D or 2-D"),
        (lambda: bp.linalg.norm(rn(4), "fro", dim=0), "matrix norm"),
        (lambda: F.scaled_dot_product_attention(rn(1, 3, 2, 4), rn(1, 2, 2, 4), rn(1, 2, 2, 4),
                                                enable_gqa=True), "must divide"),
        (lambda: F.scaled_dot_product_attention(rn(2, 4), rn(2, 4), rn(2, 4),
                                                attn_mask=np.ones((2, 2), bool), is_causal=True),
         "is_causal"),
        (lambda: F.scaled_dot_product_attention(rn(2, 4), rn(3, 4), rn(3, 4),
                                                attn_mask=rn(2, 2)), "does not broadcast"),
        (lambda: F.scaled_dot_product_attention(rn(2, 4), rn(2, 4), rn(2, 4), dropout_p=1.5),
         "dropout_p"),
    ],
)  # fmt: skip
def test_user_errors_are_one_line(call, needle):
    with pytest.raises(BpcliError) as e:
        call()
    msg = str(e.value)
    assert needle in msg and "\n" not in msg, msg


def test_einsum_of_integers_and_list_operands_match_torch():
    a, b = RNG.integers(-3, 3, (2, 3)), RNG.integers(-3, 3, (3, 4))
    got = F.einsum("ij,jk", [bp.tensor(a), bp.tensor(b)])
    want = torch.einsum("ij,jk", torch.tensor(a), torch.tensor(b))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_top_level_and_method_names():
    a, b = rn(2, 3), rn(3, 4)
    for name in ("einsum", "mm", "bmm", "mv", "dot", "outer", "addmm", "cross", "bilinear",
                 "embedding_bag", "linalg"):  # fmt: skip
        assert hasattr(bp, name), name
    np.testing.assert_allclose(bp.tensor(a).mm(b).numpy(), a @ b)
    np.testing.assert_allclose(bp.mm(a, b).numpy(), a @ b)
    assert bp.linalg.norm is bp.linalg.norm and callable(bp.linalg.vector_norm)


def test_addmm_beta_zero_ignores_nan_in_input():
    inp = np.full((2, 4), np.nan)
    a, b = rn(2, 3), rn(3, 4)
    got = F.addmm(inp, a, b, beta=0, alpha=2).numpy()
    want = torch.addmm(torch.tensor(inp), torch.tensor(a), torch.tensor(b), beta=0, alpha=2)
    np.testing.assert_allclose(got, want.numpy())


@pytest.mark.parametrize(
    "args, kw",
    [
        ((rn(2, 3),), {}),
        ((rn(2, 3),), {"keepdim": True}),
        ((rn(2, 3), 1), {}),
        ((rn(2, 3), -np.inf), {}),
        ((rn(5), 0), {}),
        ((rn(5), -1.5), {}),
        ((rn(2, 3, 4), None, (0, 2)), {}),
        ((rn(2, 3, 4), "nuc", (0, 2)), {"keepdim": True}),
        ((rn(2, 3, 4), 3.0, 1), {}),
        ((np.asarray(2.5),), {}),
    ],
)  # fmt: skip
def test_linalg_norm_dispatch_matches_torch(args, kw):
    got = bp.linalg.norm(*args, **kw)
    want = torch.linalg.norm(torch.tensor(args[0]), *args[1:], **kw)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10)


def test_vector_norm_dtype_argument_casts_first():
    x = rn(4, dtype=np.float32)
    got = bp.linalg.vector_norm(x, dtype=np.float64)
    want = torch.linalg.vector_norm(torch.tensor(x), dtype=torch.float64)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def test_norm_gradient_at_zero_is_zero_as_torch():
    x = bp.tensor(np.zeros((2, 3)), requires_grad=True)
    bp.linalg.matrix_norm(x).backward()
    xt = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    torch.linalg.matrix_norm(xt).backward()
    np.testing.assert_array_equal(x.grad, xt.grad.numpy())


def _bag_both(idx, w, offsets=None, **kw):
    wb, wt = bp.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    yb = F.embedding_bag(idx, wb, offsets, **kw)
    yt = TF.embedding_bag(torch.tensor(idx), wt,
                          None if offsets is None else torch.tensor(offsets), **kw)  # fmt: skip
    return yb, yt, wb, wt


def test_embedding_bag_include_last_offset_and_empty_bags():
    idx, w = RNG.integers(0, 5, 7), rn(5, 3)
    for off in ([0, 2, 2, 7], [0, 0, 3, 5]):
        yb, yt, _, _ = _bag_both(idx, w, np.array(off), include_last_offset=True, mode="sum")
        np.testing.assert_allclose(yb.numpy(), yt.detach().numpy())
    yb, yt, _, _ = _bag_both(np.zeros(0, np.int64), w, np.array([0, 0]), mode="max")
    np.testing.assert_array_equal(yb.numpy(), yt.detach().numpy())


def test_embedding_bag_max_ties_send_the_gradient_to_the_first():
    w = np.array([[1.0, 2.0], [1.0, 0.0], [0.0, 2.0]])
    yb, yt, wb, wt = _bag_both(np.array([0, 1, 2]), w, np.array([0]), mode="max")
    yb.sum().backward()
    yt.sum().backward()
    np.testing.assert_array_equal(wb.grad, wt.grad.numpy())


def test_embedding_bag_scale_grad_by_freq_divides_by_the_count():
    # NOTE: not compared with torch: its CPU kernel scales rows by a neighbour's count
    # (torch 2.x); the documented rule is each row's gradient over its count in the batch.
    idx, w = np.array([1, 2, 4, 4, 2, 2]), rn(5, 2)
    wb = bp.tensor(w, requires_grad=True)
    F.embedding_bag(idx, wb, np.array([0, 3]), mode="sum", scale_grad_by_freq=True).sum().backward()
    np.testing.assert_allclose(wb.grad[:, 0], [0, 1, 1, 0, 1])


def test_embedding_bag_max_norm_renormalises_rows_in_place_as_torch():
    idx, w = np.array([0, 2, 2]), rn(4, 3) * 3
    wb, wt = w.copy(), torch.tensor(w)
    F.embedding_bag(idx, bp.tensor(wb), np.array([0]), max_norm=1.0)
    TF.embedding_bag(torch.tensor(idx), wt, torch.tensor([0]), max_norm=1.0)
    np.testing.assert_allclose(wb, wt.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda w: F.embedding_bag(np.array([0, 1]), w), "offsets has to be a 1-D"),
        (lambda w: F.embedding_bag(np.array([[0, 1]]), w, np.array([0])), "offsets has to be None"),
        (lambda w: F.embedding_bag(np.array([0, 1]), w, np.array([1])), "offsets[0] has to be 0"),
        (lambda w: F.embedding_bag(np.array([0, 1]), w, np.array([0, 3])), "greater than"),
        (lambda w: F.embedding_bag(np.array([0, 1]), w, np.array([0, 2, 1])), "not decrease"),
        (lambda w: F.embedding_bag(np.array([0, 9]), w, np.array([0])), "out of range"),
        (lambda w: F.embedding_bag(np.array([0, 1]), w, np.array([0]), mode="prod"), "mode"),
        (lambda w: F.embedding_bag(np.array([0, 1]), w, np.array([0]), mode="max",
                                   scale_grad_by_freq=True), "max mode"),
        (lambda w: F.embedding_bag(np.array([0, 1]), w, np.array([0]),
                                   per_sample_weights=np.ones(2)), "only supported for mode='sum'"),
        (lambda w: F.embedding_bag(np.array([0.5]), w, np.array([0])), "integer indices"),
    ],
)  # fmt: skip
def test_embedding_bag_errors(call, needle):
    with pytest.raises(BpcliError) as e:
        call(rn(3, 2))
    assert needle in str(e.value), str(e.value)


def test_sdpa_fully_masked_rows_give_zeros_and_no_nan_gradient():
    q = bp.tensor(rn(3, 2), requires_grad=True)
    m = np.zeros((3, 3), bool)
    m[1:, :2] = True
    out = F.scaled_dot_product_attention(q, rn(3, 2), rn(3, 2), attn_mask=m)
    np.testing.assert_array_equal(out.numpy()[0], 0)
    out.sum().backward()
    assert np.isfinite(q.grad).all() and not q.grad[0].any()


def test_sdpa_dropout_keeps_the_expectation():
    q, k, v = rn(1, 4, 2), rn(1, 6, 2), np.ones((1, 6, 3))
    outs = [F.scaled_dot_product_attention(q, k, v, dropout_p=0.25).numpy() for _ in range(400)]
    np.testing.assert_allclose(np.mean(outs), 1.0, atol=0.03)


def test_ops_command_lists_the_new_primitives():
    from tests.cli_helpers import run

    result = run("ops")
    assert result.exit_code == 0
    for name in ("einsum", "svdvals", "embedding_bag"):
        assert name in result.output, name
