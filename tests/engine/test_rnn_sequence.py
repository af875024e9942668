"""lstm_cell / gru_cell unrolled over 20 steps against torch.nn.LSTM / GRU (one layer)."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F

torch = pytest.importorskip("torch")

T, N, I, H = 20, 3, 5, 4


def _run(kind: str, dtype):
    rng = np.random.default_rng(0)
    mod = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(I, H).to(torch.float64)
    params = {n: p.detach().numpy().astype(dtype) for n, p in mod.named_parameters()}
    x = rng.standard_normal((T, N, I)).astype(dtype)
    states = [
        rng.standard_normal((1, N, H)).astype(dtype) for _ in range(2 if kind == "lstm" else 1)
    ]
    r_out = rng.standard_normal((T, N, H)).astype(dtype)
    r_last = rng.standard_normal((N, H)).astype(dtype)

    # torch
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    mod = mod.to(tdt)
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    out, last = mod(tx, tuple(ts) if kind == "lstm" else ts[0])
    last_c = last[1][0] if kind == "lstm" else last[0]
    loss = (out * torch.tensor(r_out)).sum() + (last_c * torch.tensor(r_last)).sum()
    loss.backward()
    want = {n: p.grad.numpy() for n, p in mod.named_parameters()}
    want.update(x=tx.grad.numpy(), **{f"s{k}": t.grad.numpy()[0] for k, t in enumerate(ts)})

    # bpcli
    w = {n: bp.tensor(a, requires_grad=True) for n, a in params.items()}
    bx = bp.tensor(x, requires_grad=True)
    bs = [bp.tensor(s[0], requires_grad=True) for s in states]
    h, c = bs[0], (bs[1] if kind == "lstm" else None)
    total = None
    args = (w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"])
    for t in range(T):
        xt = bx[t]
        if kind == "lstm":
            h, c = F.lstm_cell(xt, h, c, *args)
        else:
            h = F.gru_cell(xt, h, *args)
        term = (h * r_out[t]).sum()
        total = term if total is None else total + term
    total = total + ((c if kind == "lstm" else h) * r_last).sum()
    total.backward()
    got = {n: t.grad for n, t in w.items()}
    got.update(x=bx.grad, **{f"s{k}": t.grad for k, t in enumerate(bs)})
    return got, want


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unrolled_matches_torch(kind, dtype):
    got, want = _run(kind, dtype)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}
    assert set(got) == set(want)
    for name in want:
        assert got[name].dtype == dtype, name
        np.testing.assert_allclose(got[name], want[name], err_msg=name, **tol)
