"""Edge rules of the issue-11 ops that the op cases do not draw: named-tuple results, returned
dtypes, 0-d and empty tensors, torch's tie and nan rules, and one-line errors for misuse."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")


def _t(a):
    return torch.tensor(np.asarray(a))


def test_named_tuples_as_torch():
    x = bp.tensor([[3.0, 1.0, 2.0]])
    r = x.sort(1)
    assert type(r).__name__ == "sort" and r._fields == ("values", "indices")
    v, i = r
    assert v is r.values and i.dtype == np.int64
    assert type(F.sort(x)) is type(r)  # one type per op name
    for name, res in {"cummax": F.cummax(x, 1), "cummin": F.cummin(x, 1), "median": x.median(1),
                      "mode": x.mode(1), "kthvalue": x.kthvalue(1, 1)}.items():  # fmt: skip
        assert type(res).__name__ == name and res.indices.dtype == np.int64
    back = pickle.loads(pickle.dumps(F.cummax(x, 1)))
    assert type(back).__name__ == "cummax"


def test_returned_dtypes():
    ints = bp.tensor(np.array([1, 2, 3], np.int32))
    assert F.sum(ints).dtype == np.int64 == F.prod(ints).dtype == F.cumsum(ints, 0).dtype
    assert F.sum(bp.tensor([True, True])).numpy() == 2
    assert F.sum(ints, dtype=np.float64).dtype == np.float64
    assert F.cumprod(ints, 0, dtype=np.float32).dtype == np.float32
    assert F.any(bp.tensor(np.array([0, 2], np.uint8))).dtype == np.uint8  # as torch
    assert F.all(bp.tensor([1.0, 0.0])).dtype == np.bool_
    assert F.count_nonzero(bp.tensor([[1.0, 0.0]]), 1).dtype == np.int64
    assert F.bucketize(bp.tensor([1.0]), bp.tensor([0.0, 2.0]), out_int32=True).dtype == np.int32
    assert F.one_hot(bp.tensor([1, 0])).dtype == np.int64


def test_zero_dim_scans_and_picks():
    s = bp.tensor(2.5, requires_grad=True)
    for fn, tfn in [(lambda a: F.cumsum(a, 0), lambda a: torch.cumsum(a, 0)),
                    (lambda a: F.cumprod(a, -1), lambda a: torch.cumprod(a, -1)),
                    (lambda a: F.logcumsumexp(a, 0), lambda a: torch.logcumsumexp(a, 0)),
                    (lambda a: F.cummax(a, 0).values, lambda a: torch.cummax(a, 0).values),
                    (lambda a: F.sort(a).values, lambda a: torch.sort(a).values),
                    (lambda a: F.median(a, 0).values, lambda a: torch.median(a, 0).values),
                    ]:  # fmt: skip
        y = fn(s)
        assert y.shape == () and float(y.numpy()) == pytest.approx(float(tfn(_t(2.5))))
    with pytest.raises(BpcliError, match="cumsum"):
        F.cumsum(s, 1)


def test_gradients_at_special_points():
    x = bp.tensor([2.0, 2.0, 2.0], requires_grad=True)
    F.std(x).backward()  # constant input: std 0, gradient 0 (not nan), as torch
    assert np.array_equal(x.grad, [0.0, 0.0, 0.0])
    x = bp.tensor([0.0, 3.0, 0.0, 2.0], requires_grad=True)
    F.prod(x).backward()  # two zeros: every partial product has a zero
    assert np.array_equal(x.grad, [0.0, 0.0, 0.0, 0.0])
    x = bp.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    F.median(x).backward()  # lower median 2 of [1, 2, 3, 3]; all-dims median spreads ties
    assert np.array_equal(x.grad, [0.0, 0.0, 0.0, 1.0])
    x = bp.tensor([3.0, 1.0, 3.0], requires_grad=True)
    F.median(x).backward()
    assert np.array_equal(x.grad, [0.5, 0.0, 0.5])


def test_empty_and_nan():
    assert np.isnan(F.median(bp.tensor(np.zeros(0, np.float32))).numpy())
    assert np.isnan(F.median(bp.tensor([1.0, np.nan, 0.0])).numpy())
    assert F.nonzero(bp.tensor(np.zeros((0, 3)))).shape == (0, 2)
    assert F.nonzero(bp.tensor(0.0)).shape == (0, 0)
    assert F.prod(bp.tensor(np.zeros((2, 0)))).numpy() == 1.0
    assert F.sort(bp.tensor(np.zeros((2, 0))), 1).values.shape == (2, 0)
    assert F.nanmean(bp.tensor([np.nan, 1.0, 3.0])).numpy() == 2.0
    assert F.nansum(bp.tensor([np.nan, np.nan])).numpy() == 0.0
    v = F.sort(bp.tensor([1.0, np.nan, 0.0]), descending=True)
    tv = torch.sort(_t([1.0, np.nan, 0.0]), descending=True)
    assert v.indices.numpy().tolist() == tv.indices.tolist()
    with pytest.raises(BpcliError, match="median"):
        F.median(bp.tensor(np.zeros((2, 0))), 1)


def test_where_one_argument_and_three():
    c = bp.tensor([[True, False], [False, True]])
    rows, cols = bp.where(c)
    assert rows.numpy().tolist() == [0, 1] and cols.numpy().tolist() == [0, 1]
    assert bp.where(c, 1.0, 0.0).numpy().tolist() == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(BpcliError, match="where"):
        bp.where(c, 1.0)


def test_searchsorted_sorter_and_scalar():
    seq = np.array([3.0, 1.0, 2.0])
    order = np.argsort(seq)
    got = F.searchsorted(bp.tensor(seq), bp.tensor([2.0, 0.5]), sorter=bp.tensor(order))
    want = torch.searchsorted(_t(seq), _t([2.0, 0.5]), sorter=_t(order))
    assert got.numpy().tolist() == want.tolist()
    assert F.searchsorted(bp.tensor([1.0, 2.0]), bp.tensor(1.5)).shape == ()


def test_methods_and_top_level_names():
    x = bp.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert x.prod(1).numpy().tolist() == [5.0, 6.0]
    assert x.argsort(1).numpy().tolist() == [[0, 1], [1, 0]]
    assert x.masked_fill(x > 2, 0.0).numpy().tolist() == [[1.0, 0.0], [0.0, 2.0]]
    assert x.take(bp.tensor([3])).numpy().tolist() == [2.0]
    for name in ("std_mean", "var_mean", "bucketize", "searchsorted", "scatter_reduce", "msort"):
        assert callable(getattr(bp, name))


@pytest.mark.parametrize("call, where", [
    (lambda: F.kthvalue(bp.tensor([1.0, 2.0]), 3), "kthvalue"),
    (lambda: F.scatter_reduce(bp.tensor([1.0]), 0, [0], bp.tensor([1.0]), "max"),
     "scatter_reduce"),
    (lambda: F.scatter(bp.tensor([1.0]), 0, [5], bp.tensor([1.0])), "scatter"),
    (lambda: F.scatter(bp.tensor([1.0]), 0, [0]), "scatter"),
    (lambda: F.masked_fill(bp.tensor([1.0]), bp.tensor([1]), 0.0), "masked_fill"),
    (lambda: F.masked_fill(bp.tensor([1.0]), bp.tensor([[True, False]]), 0.0), "masked_fill"),
    (lambda: F.masked_scatter(bp.tensor([1.0, 2.0]), bp.tensor([True, True]),
                              bp.tensor([1.0])), "masked_scatter"),
    (lambda: F.one_hot(bp.tensor([0, 3]), 3), "one_hot"),
    (lambda: F.one_hot(bp.tensor([0.0])), "one_hot"),
    (lambda: F.searchsorted(bp.tensor([1.0]), bp.tensor([1.0]), side="left", right=True),
     "searchsorted"),
    (lambda: F.bucketize(bp.tensor([1.0]), bp.tensor([[1.0]])), "bucketize"),
    (lambda: F.index_put(bp.tensor([1.0, 2.0]), (bp.tensor([0]),), bp.tensor([1.0, 2.0, 3.0])),
     "index_put"),
    (lambda: F.take(bp.tensor([1.0, 2.0]), bp.tensor([2])), "index_select"),
    (lambda: F.std(bp.tensor([1, 2])), "std"),
    (lambda: F.prod(bp.tensor([1.0]), (0,)), "prod"),
])  # fmt: skip
def test_misuse_is_one_line(call, where):
    with pytest.raises(BpcliError) as e:
        call()
    assert where in str(e.value) and "\n" not in str(e.value)
