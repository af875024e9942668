"""The backward walk: shared subexpressions, fan-out, long chains, hooks, freeing, errors."""

import gc
import weakref

import numpy as np
import pytest

import bpcli as bp
from bpcli.engine.op import Op
from bpcli.errors import BpcliError


def leaf(values, dtype=np.float64):
    return bp.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def test_diamond_sums_both_paths():
    x = leaf([1.0, 2.0, 3.0])
    a = x * 2
    b = x.exp()
    y = (a * b).sum()  # d/dx (2x e^x) = 2 e^x + 2x e^x
    y.backward()
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(x.grad, 2 * np.exp(v) * (1 + v))


def test_shared_subexpression_backward_runs_once():
    calls = []

    x = leaf([0.5, -1.0])
    s = x.tanh()
    orig = type(s._op).backward

    def counting(self, g):
        calls.append(1)
        return orig(self, g)

    type(s._op).backward = counting
    try:
        y = (s * s + s * 3 + s).sum()
        y.backward()
    finally:
        type(s._op).backward = orig
    assert len(calls) == 1
    t = np.tanh([0.5, -1.0])
    np.testing.assert_allclose(x.grad, (2 * t + 4) * (1 - t**2))


def test_tensor_used_a_thousand_times():
    x = leaf([1.5])
    total = x * 0
    for _ in range(1000):
        total = total + x
    total.sum().backward()
    np.testing.assert_allclose(x.grad, [1000.0])


def test_hundred_thousand_node_chain_does_not_recurse():
    x = leaf([1.0])
    y = x
    for _ in range(100_000):
        y = y + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [2 + 3, 4 + 3])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3, 3])


def test_leaf_grads_never_alias():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    a.grad *= 10
    np.testing.assert_allclose(b.grad, [1, 1])


def test_leaf_grad_is_writable_and_owned_even_from_a_broadcast():
    w = leaf(np.ones((3, 1)))
    (w * np.ones((3, 4))).sum().backward()
    w.grad += 1
    np.testing.assert_allclose(w.grad, np.full((3, 1), 5.0))


def test_no_grad_builds_no_graph():
    x = leaf([1.0])
    with bp.no_grad():
        y = x * 2
    assert not y.requires_grad and y._op is None

    @bp.no_grad()
    def f(t):
        return t.exp()

    assert not f(x).requires_grad
    assert bp.is_grad_enabled()


def test_tensor_hook_sees_and_replaces_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    y = x * 3
    y.register_hook(lambda g: seen.append(g.copy()))
    remove = x.register_hook(lambda g: g * 0 + 7)
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [1, 1])
    np.testing.assert_allclose(x.grad, [7, 7])
    remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3, 3])


def test_retain_grad_on_intermediate():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad, [4.0, 8.0])


def test_second_backward_through_freed_graph_is_an_error():
    x = leaf([1.0])
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(BpcliError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp()).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp([1.0, 2.0]))


def test_backward_frees_saved_arrays():
    x = leaf(np.random.rand(1000))
    e = x.exp()
    saved = weakref.ref(e._op.y)  # Exp saves its output
    loss = (e * 2).sum()
    del e
    gc.collect()
    assert saved() is not None
    loss.backward()
    gc.collect()
    assert saved() is None


def test_non_scalar_backward_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(BpcliError, match=r"non-scalar tensor of shape \(2,\)"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 0.5]))
    np.testing.assert_allclose(x.grad, [2.0, 1.0])


def test_backward_of_tensor_without_graph_is_an_error():
    with pytest.raises(BpcliError, match="does not require grad"):
        bp.tensor([1.0]).sum().backward()


def test_in_place_change_of_saved_input_is_caught():
    x = bp.tensor(np.array([1.0, 2.0]))
    w = leaf([3.0, 4.0])
    y = (w * x).sum()
    x.fill_(0.0)
    with pytest.raises(BpcliError, match="mul: an input of shape"):
        y.backward()


def test_in_place_change_of_a_leaf_that_requires_grad_is_refused():
    w = leaf([1.0])
    with pytest.raises(BpcliError, match="in-place"):
        w.fill_(0.0)
    with bp.no_grad():
        w.fill_(2.0)
    np.testing.assert_allclose(w.data, [2.0])


def test_mixed_float_precisions_promote_as_torch():
    a = bp.tensor(np.ones(2, np.float32), requires_grad=True)
    b = bp.tensor(np.ones(2, np.float64))
    y = a + b
    assert y.dtype == np.float64  # two dimensioned tensors: the wider float
    y.sum().backward()
    assert a.grad.dtype == np.float32  # the gradient comes back in the input's dtype
    assert (a + bp.tensor(1.0, dtype=np.float64)).dtype == np.float32  # a 0-d one ranks lower


def test_int_and_float_mix_to_float():
    a = bp.tensor(np.ones(2, np.float32), requires_grad=True)
    m = bp.tensor(np.array([1, 0]))
    (a * m).sum().backward()
    assert (a * m).dtype == np.float32
    np.testing.assert_allclose(a.grad, [1, 0])


def test_only_float_tensors_require_grad():
    with pytest.raises(BpcliError, match="only float tensors"):
        bp.tensor([1, 2], requires_grad=True)


def test_tensor_dtype_rules():
    assert bp.tensor(1.0).dtype == np.float32
    assert bp.tensor([1.0, 2.0]).dtype == np.float32
    assert bp.tensor(np.ones(2)).dtype == np.float64
    assert bp.tensor(3).dtype == np.int64
    assert bp.tensor([True]).dtype == np.bool_
    assert bp.tensor([1, 2], dtype=np.float64).dtype == np.float64


def test_data_is_the_array_and_updates_in_place():
    arr = np.zeros(3, np.float32)
    t = bp.tensor(arr)
    assert t.data is arr
    with bp.no_grad():
        t.data += 1
    np.testing.assert_allclose(arr, 1)


def test_multi_output_op_gets_zero_for_unused_output():
    class TwoOut(Op):
        """y1 = 2x, y2 = 3x; dx = 2 g1 + 3 g2"""

        name = "_test_two_out"
        n_outputs = 2

        def forward(self, x):
            return 2 * x, 3 * x

        def backward(self, g1, g2):
            return 2 * g1 + 3 * g2

    try:
        x = leaf([1.0, 2.0])
        a, b = TwoOut.apply(x)
        (a.sum() + b.sum() * 0 + a.sum()).backward()
        np.testing.assert_allclose(x.grad, [4.0, 4.0])
        x.grad = None
        _, b = TwoOut.apply(x)
        b.sum().backward()
        np.testing.assert_allclose(x.grad, [3.0, 3.0])
    finally:
        from bpcli.engine.op import OPS

        OPS.pop("_test_two_out")


def test_shapes_that_do_not_broadcast_name_the_op_and_shapes():
    with pytest.raises(BpcliError, match=r"add: .*\(2, 3\) float64, \(4,\) float64"):
        bp.tensor(np.ones((2, 3))) + bp.tensor(np.ones(4))
