"""``x[index] = value`` inside a recorded graph, and in-place changes of a tensor that other
ops consumed before the change: values and gradients equal torch's (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")

X0 = np.random.default_rng(0).standard_normal((3, 4))
V0 = np.array([1.5, 2.0, -1.0, 0.5])


def _writes(y, v):
    y[y > 0.5] = 0.0  # a mask made from the tensor itself
    y[1] = v * 3  # a row from another tensor of the graph
    y[:, 2] = y[:, 1] * 3  # a column from the tensor's own new value
    y[[0, 2], [1, 3]] = v[:2]  # advanced indexing
    y[0, 1:3] = -2.0
    return y


def _run(lib, fn):
    if lib == "torch":
        x = torch.tensor(X0, requires_grad=True)
        v = torch.tensor(V0, requires_grad=True)
    else:
        x, v = bp.tensor(X0, requires_grad=True), bp.tensor(V0, requires_grad=True)
    y = fn(x * 2, v)
    (y.sum() + (y * y * y).sum()).backward()
    out = y.detach().numpy() if lib == "torch" else y.numpy()
    return out, np.asarray(x.grad), np.asarray(v.grad)


def test_setitem_in_a_graph_equals_torch():
    for a, b in zip(_run("torch", _writes), _run("bp", _writes), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def _consumed_then_changed(y, v):
    z = y[0:3] * 3  # consumed before the change: keeps the old value's gradient path
    w = -y
    y.mul_(2)
    y.add_(v)
    return z + w + y


def test_a_consumer_before_an_in_place_change_keeps_the_old_value():
    for a, b in zip(_run("torch", _consumed_then_changed), _run("bp", _consumed_then_changed),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_setitem_on_a_leaf_that_requires_grad_is_refused_in_one_line():
    x = bp.tensor(X0, requires_grad=True)
    with pytest.raises(BpcliError, match="leaf tensor that requires grad"):
        x[0] = 1.0
    with bp.no_grad():
        x[0] = 1.0  # torch's rule: allowed outside the graph
    assert np.all(x.numpy()[0] == 1.0)


def test_setitem_outside_a_graph_writes_in_place():
    t = bp.zeros(2, 3)
    t[:, 1] = bp.tensor([4.0, 5.0])
    t[t > 4.5] = -1.0
    np.testing.assert_array_equal(t.numpy(), [[0, 4, 0], [0, -1, 0]])
