"""Module hooks against torch: call order, arguments, replaced values, removal, and the
numbers a full backward hook sees."""

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")


def shapes(*grads):
    return [[None if g is None else tuple(g.shape) for g in gs] for gs in grads]


def record_calls(nn, lib):
    """Hooks of every kind on a two-layer model; returns the log of (event, module, detail)."""
    log = []
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    for name, m in model.named_modules():
        tag = name or "root"
        m.register_forward_pre_hook(lambda mod, args, t=tag: log.append(("pre", t, len(args))))
        m.register_forward_hook(
            lambda mod, args, out, t=tag: log.append(("fwd", t, tuple(out.shape)))
        )
        m.register_full_backward_hook(
            lambda mod, gi, go, t=tag: log.append(("bwd", t, *shapes(gi, go)))
        )
    m = model[0]
    m.register_forward_pre_hook(lambda mod, args: log.append(("pre-first", "0", 0)), prepend=True)
    x = lib.ones((5, 3)) if lib is bp else torch.ones(5, 3)
    model(x).sum().backward()
    return log


def test_call_order_and_arguments_match_torch():
    with pytest.warns(UserWarning):  # torch warns for the input layer's all-None grad_input
        theirs = record_calls(torch.nn, torch)
    ours = record_calls(bp.nn, bp)
    assert ours == theirs


def test_forward_hooks_replace_inputs_and_outputs():
    def run(nn, mk, state=None):
        lin = nn.Linear(2, 2)
        if state is not None:
            lin.load_state_dict(state)
        with_kw = []
        lin.register_forward_pre_hook(lambda m, args: args[0] * 2)  # one value: wrapped
        lin.register_forward_hook(lambda m, args, out: out + 1)
        lin.register_forward_hook(lambda m, args, kw, out: with_kw.append(kw), with_kwargs=True)
        h = lin.register_forward_hook(lambda m, args, out: out * 0)
        h.remove()
        return lin, lin(mk(np.ones((1, 2), np.float32))), with_kw

    ours, y, kw = run(bp.nn, bp.tensor)
    state = {k: torch.tensor(v) for k, v in ours.state_dict().items()}
    _, yt, kwt = run(torch.nn, torch.tensor, state)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-6)
    w, b = ours.weight.numpy(), ours.bias.numpy()
    np.testing.assert_allclose(y.numpy()[0], 2 * w.sum(1) + b + 1, rtol=1e-6)
    assert kw == kwt == [{}]


def test_pre_hook_with_kwargs_rewrites_both():
    class Scale(bp.nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    m.register_forward_pre_hook(lambda mod, a, k: (a, {"factor": 3.0}), with_kwargs=True)
    assert m(bp.ones(2)).tolist() == [3.0, 3.0]
    m2 = Scale()
    m2.register_forward_pre_hook(lambda mod, a, k: a, with_kwargs=True)
    with pytest.raises(BpcliError, match="must return None or"):
        m2(bp.ones(2))


def mix_module(nn):
    class Mix(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, a, scale, b):
            return self.lin(a) * b * scale, a.sum()

    return Mix()


def run_mix(m, x1, x2):
    """Backward through a two-input module whose hook scales grad_input[0] by 10."""
    seen = []

    def hook(mod, gi, go):
        seen.append(([None if g is None else g.detach().numpy().copy() for g in gi],
                     [None if g is None else g.detach().numpy().copy() for g in go]))  # fmt: skip
        return (gi[0] * 10, None, gi[2])

    m.register_full_backward_hook(hook)
    y, _ = m(x1, 2.0, x2)
    (y * y).sum().backward()
    return seen


def test_full_backward_hook_numbers_and_replacement_match_torch():
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2))
    ours, theirs = mix_module(bp.nn), mix_module(torch.nn)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    xa, xb = bp.tensor(a, requires_grad=True), bp.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    [(gi, go)], [(gi_t, go_t)] = run_mix(ours, xa, xb), run_mix(theirs, ta, tb)
    assert [g is None for g in gi] == [g is None for g in gi_t] == [False, True, False]
    assert len(go) == len(go_t) == 2 and go[1] is None and go_t[1] is None  # a.sum() unused
    for g, gt in zip([gi[0], gi[2], go[0]], [gi_t[0], gi_t[2], go_t[0]]):
        np.testing.assert_allclose(g, gt, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xa.grad, ta.grad.numpy(), rtol=1e-5, atol=1e-6)  # x10 applied
    np.testing.assert_allclose(xb.grad, tb.grad.numpy(), rtol=1e-5, atol=1e-6)
    gw = dict(theirs.named_parameters())["lin.weight"].grad.numpy()
    np.testing.assert_allclose(ours.lin.weight.grad, gw, rtol=1e-5, atol=1e-6)


def test_backward_hook_sees_this_calls_gradient_not_the_inputs_total():
    lin = bp.nn.Linear(2, 2)
    got = []
    lin.register_full_backward_hook(lambda m, gi, go: got.append(gi[0].numpy().copy()))
    x = bp.tensor(np.ones((1, 2), np.float32), requires_grad=True)
    (lin(x).sum() + (x * 5).sum()).backward()
    np.testing.assert_allclose(got[0], lin.weight.data.sum(0, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(x.grad, got[0] + 5, rtol=1e-6)


def test_handles_remove_and_restore_the_fast_path():
    lin = bp.nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_hook(lambda *a: calls.append(1))
    with lin.register_forward_pre_hook(lambda *a: calls.append(0)):
        lin(bp.ones((1, 2)))
    h1()  # bpcli's earlier API: the handle is callable
    lin(bp.ones((1, 2)))
    assert calls == [0, 1] and "_hooks" not in lin.__dict__
    with pytest.raises(BpcliError, match="must be callable"):
        lin.register_forward_hook(3)


def test_always_call_hook_runs_when_forward_raises():
    lin = bp.nn.Linear(2, 2)
    calls = []
    lin.register_forward_hook(lambda m, a, out: calls.append(out), always_call=True)
    with pytest.raises(BpcliError):
        lin(bp.ones((1, 3)))
    assert calls == [None]
