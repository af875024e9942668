"""The creation functions, dtype names, tensor methods and in-place methods issue 11 added,
each against torch: values, dtypes and shapes, and for in-place changes the gradient too."""

from __future__ import annotations

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")

NAMES = ("float16", "half", "float32", "float", "float64", "double", "complex64", "cfloat",
         "complex128", "cdouble", "uint8", "int8", "int16", "short", "int32", "int", "int64",
         "long", "bool")  # fmt: skip


def same(b, t):
    t = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    b = b.numpy() if isinstance(b, bp.Tensor) else np.asarray(b)
    assert b.dtype == t.dtype, (b.dtype, t.dtype)
    assert b.shape == t.shape, (b.shape, t.shape)
    np.testing.assert_allclose(b, t, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_dtype_names_are_torchs(name):
    assert np.dtype(getattr(bp, name)) == torch.empty(0, dtype=getattr(torch, name)).numpy().dtype
    t = bp.zeros(2, dtype=getattr(bp, name))
    assert t.dtype == getattr(bp, name)


CREATION = {
    "eye": (lambda m: m.eye(3), lambda m: m.eye(2, 4)),
    "linspace": (lambda m: m.linspace(-1, 2, 7), lambda m: m.linspace(0, 1, 1),
                 lambda m: m.linspace(3, -3, 4, dtype=m.float64)),
    "logspace": (lambda m: m.logspace(0, 2, 5), lambda m: m.logspace(-1, 1, 3, base=2.0)),
    "full_like": (lambda m: m.full_like(m.zeros(2, 3), 1.5),
                  lambda m: m.full_like(m.zeros(2, dtype=m.int64), 7)),
    "arange": (lambda m: m.arange(5), lambda m: m.arange(5.5, 8, 1.0), lambda m: m.arange(1, 4)),
    "full": (lambda m: m.full((2,), 4), lambda m: m.full((2,), 4.0), lambda m: m.full((1,), True)),
    "cat": (lambda m: m.cat([m.ones(2, 1), m.zeros(2, 3)], dim=1),),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CREATION))
def test_creation_equals_torch(name):
    for make in CREATION[name]:
        same(make(bp), make(torch))


def test_like_functions_keep_shape_and_dtype():
    x = bp.zeros(2, 3, dtype=bp.float64)
    for t in (bp.empty_like(x), bp.rand_like(x), bp.randn_like(x)):
        assert t.shape == (2, 3) and t.dtype == bp.float64
    r = bp.rand_like(x).numpy()
    assert ((r >= 0) & (r < 1)).all()


def test_random_creation_respects_ranges_and_generators():
    g1, g2 = bp.Generator().manual_seed(3), bp.Generator().manual_seed(3)
    a, b = bp.randint(2, 9, (50,), generator=g1), bp.randint(2, 9, (50,), generator=g2)
    assert a.dtype == bp.int64 and np.array_equal(a.numpy(), b.numpy())
    assert a.numpy().min() >= 2 and a.numpy().max() < 9
    p = bp.randperm(10).numpy()
    assert sorted(p.tolist()) == list(range(10)) and p.dtype == np.int64
    n = bp.normal(bp.zeros(1000), bp.ones(1000) * 2).numpy()
    assert abs(n.std() - 2) < 0.2
    ber = bp.bernoulli(bp.full((2000,), 0.25)).numpy()
    assert abs(ber.mean() - 0.25) < 0.05
    draws = bp.multinomial(bp.tensor([0.0, 1.0, 3.0]), 400, replacement=True).numpy()
    assert draws.min() >= 1 and abs((draws == 2).mean() - 0.75) < 0.08


def test_from_numpy_and_as_tensor_share_memory_as_torch():
    arr = np.arange(4.0)
    t = bp.from_numpy(arr)
    arr[0] = 9
    assert t.numpy()[0] == 9 and bp.is_tensor(t) and not bp.is_tensor(arr)
    assert bp.as_tensor(t) is t and bp.as_tensor(arr).numpy()[0] == 9


METHODS = {
    "casts": lambda m, x: [x.int(), x.long(), x.double(), x.half().float(), x.bool(), x.byte()],
    "to": lambda m, x: [x.to(m.float64), x.to(dtype=m.int32), x.type_as(m.zeros(1, dtype=m.int16))],
    "new": lambda m, x: [x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2, 2), 3.5),
                         x.new_tensor([1, 2]), x.new_zeros(1, dtype=m.int64)],
    "queries": lambda m, x: [x.dim(), x.ndimension(), x.nelement(), x.element_size(),
                             x.is_floating_point(), x.is_complex(), x.is_contiguous(), x.numel()],
    "unfold": lambda m, x: [x.unfold(1, 2, 1), x.contiguous()],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(METHODS))
def test_tensor_methods_equal_torch(name):
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    for b, t in zip(METHODS[name](bp, bp.tensor(x)), METHODS[name](torch, torch.tensor(x)),
                    strict=True):  # fmt: skip
        if isinstance(t, torch.Tensor):
            same(b, t)
        else:
            assert b == t


INPLACE = {
    "add_": lambda y, v: y.add_(v, alpha=2), "sub_": lambda y, v: y.sub_(v),
    "mul_": lambda y, v: y.mul_(v), "div_": lambda y, v: y.div_(v + 3),
    "pow_": lambda y, v: y.pow_(2), "clamp_": lambda y, v: y.clamp_(-0.5, 0.7),
    "iadd": lambda y, v: y.__iadd__(v), "imul": lambda y, v: y.__imul__(v),
    "itruediv": lambda y, v: y.__itruediv__(2.0), "exp_": lambda y, v: y.exp_(),
    "tanh_": lambda y, v: y.tanh_(), "sigmoid_": lambda y, v: y.sigmoid_(),
    "masked_fill_": lambda y, v: y.masked_fill_(y > 0, 0.25),
    "copy_": lambda y, v: y.copy_(v * 3),
    "fill_": lambda y, v: y.fill_(2.0), "zero_": lambda y, v: y.zero_(),
}  # fmt: skip


def _inplace_run(lib, change):
    rng = np.random.default_rng(1)
    x0, v0 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    if lib is torch:
        x, v = torch.tensor(x0, requires_grad=True), torch.tensor(v0, requires_grad=True)
    else:
        x, v = bp.tensor(x0, requires_grad=True), bp.tensor(v0, requires_grad=True)
    y = x * 1.5  # a non-leaf: torch lets it change in place inside the graph
    before = y * 1.0
    out = change(y, v)
    assert out is y  # in-place methods return the tensor itself
    (y * y + before).sum().backward()
    grads = [np.zeros((3, 4)) if t.grad is None else np.asarray(t.grad) for t in (x, v)]
    return [y.detach().numpy() if lib is torch else y.numpy(), *grads]


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_in_place_methods_equal_torch_values_and_gradients(name):
    for b, t in zip(_inplace_run(bp, INPLACE[name]), _inplace_run(torch, INPLACE[name]),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(b, t, rtol=1e-10, atol=1e-12)


def test_in_place_change_of_a_leaf_or_a_saved_input_is_a_clear_error():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(BpcliError, match="leaf tensor"):
        x.add_(1)
    for lib, error in ((bp, BpcliError), (torch, RuntimeError)):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 1
        z = y.sin()  # sin saves its input for the backward: both refuse, as torch
        y.mul_(2)
        with pytest.raises(error, match="changed in place|modified by an inplace"):
            z.sum().backward()
