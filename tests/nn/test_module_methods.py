"""Module methods as torch has them: apply, to/float/double, requires_grad_, zero_grad,
buffers, traversal with shared modules, load_state_dict's result and errors."""

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")


def tied(nn):
    shared = nn.Linear(2, 2)
    return nn.Sequential(shared, nn.ReLU(), shared, nn.Sequential(nn.Tanh(), shared))


def test_apply_visits_children_before_parents_as_torch():
    def order(nn):
        seen = []
        tied(nn).apply(lambda m: seen.append(type(m).__name__))
        return seen

    assert order(bp.nn) == order(torch.nn)


def test_traversal_with_a_shared_module_matches_torch():
    ours, theirs = tied(bp.nn), tied(torch.nn)
    for kw in ({}, {"remove_duplicate": False}):
        assert [n for n, _ in ours.named_modules(**kw)] == [
            n for n, _ in theirs.named_modules(**kw)
        ]
        assert [n for n, _ in ours.named_parameters(**kw)] == [
            n for n, _ in theirs.named_parameters(**kw)
        ]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules(prefix="m")] == [
        n for n, _ in theirs.named_modules(prefix="m")
    ]
    assert ours.get_submodule("3.1") is ours[0]


def test_buffers_persistent_and_not():
    def make(nn, lib):
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(2, 2)
                self.register_buffer("mean", lib.zeros(2))
                self.register_buffer("cache", lib.ones(2), persistent=False)

        return M()

    ours, theirs = make(bp.nn, bp), make(torch.nn, torch)
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(list(ours.buffers())) == 2
    ours.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    ours.double()
    assert ours.cache.dtype == np.float64 and ours.lin.weight.dtype == np.float64
    ours.float()
    assert ours.cache.dtype == np.float32
    with pytest.raises(BpcliError, match="contain"):
        ours.register_buffer("a.b", bp.zeros(1))


def test_load_state_dict_result_and_messages_follow_torch():
    ours, theirs = bp.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    sd = {"weight": np.ones((2, 3), np.float32), "extra": np.zeros(1, np.float32)}
    r = ours.load_state_dict(sd, strict=False)
    rt = theirs.load_state_dict({k: torch.tensor(v) for k, v in sd.items()}, strict=False)
    assert (r.missing_keys, r.unexpected_keys) == (rt.missing_keys, rt.unexpected_keys)
    assert tuple(r) == (["bias"], ["extra"])
    np.testing.assert_array_equal(ours.weight.numpy(), 1)
    with pytest.raises(RuntimeError) as te:
        theirs.load_state_dict({"weight": torch.zeros(2, 2)})
    with pytest.raises(BpcliError) as be:
        ours.load_state_dict({"weight": np.zeros((2, 2))})
    # the same sentences as torch (shapes as tuples), on one line
    t_lines = str(te.value).replace("torch.Size([2, 2])", "(2, 2)")
    t_lines = t_lines.replace("torch.Size([2, 3])", "(2, 3)").split("\n\t")
    assert str(be.value) == "load_state_dict: " + " ".join(line.strip() for line in t_lines)
    with pytest.raises(BpcliError, match="size mismatch"):  # shapes are checked even when lax
        ours.load_state_dict({"weight": np.zeros((2, 2))}, strict=False)
    with pytest.raises(BpcliError, match="dict-like"):
        ours.load_state_dict([1, 2])


def test_to_float_double_and_devices():
    m = bp.nn.Sequential(bp.nn.Linear(2, 2), bp.nn.Embedding(3, 2))
    assert m.to(torch.float64) is m and m[0].weight.dtype == np.float64
    m.to("cpu", dtype="float32")
    assert m[0].weight.dtype == np.float32
    m.to(bp.zeros(1, dtype=np.float64))
    assert all(p.dtype == np.float64 for p in m.parameters())
    with pytest.raises(BpcliError, match="CPU only"):
        m.to("cuda")
    with pytest.raises(BpcliError, match="float dtype"):
        m.to(np.int32)
    y = m[0](bp.ones((1, 2), dtype=np.float64))
    assert y.dtype == np.float64


def test_requires_grad_and_zero_grad_as_torch():
    m = bp.nn.Linear(2, 1)
    assert m.requires_grad_(False) is m and not any(p.requires_grad for p in m.parameters())
    m.requires_grad_()
    m(bp.ones((1, 2))).sum().backward()
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is not None and not m.weight.grad.any()
    m.zero_grad()
    assert m.weight.grad is None


def test_init_with_another_name_than_self_records_its_config():
    class Odd(bp.nn.Module):
        def __init__(me, width, depth=2):  # noqa: N805 - the point of the test
            super().__init__()
            me.lin = bp.nn.Linear(width, width)

    m = Odd(3)
    assert m.get_config() == {"width": 3, "depth": 2}
    assert Odd.from_config(m.get_config()).lin.weight.shape == (3, 3)


def test_parameter_as_torch():
    p = bp.nn.Parameter(bp.ones(2))
    assert isinstance(p, bp.Tensor) and p.requires_grad and p.shape == (2,)
    assert bp.nn.Parameter().shape == tuple(torch.nn.Parameter().shape)
    assert not bp.nn.Parameter(np.ones(1, np.float32), requires_grad=False).requires_grad
    m = bp.nn.Module()
    m.w = bp.nn.Parameter(np.ones(1, np.float32))
    with pytest.raises(BpcliError, match="not a Parameter"):
        m.register_parameter("v", bp.ones(1))
