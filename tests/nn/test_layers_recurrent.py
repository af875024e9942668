"""RNN, LSTM, GRU against torch.nn: names, outputs, gradients, truncated BPTT."""

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError
from bpcli.nn.layers.recurrent import GRU, LSTM, RNN

torch = pytest.importorskip("torch")

T, N, I, H = 6, 3, 5, 4
TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-8, "atol": 1e-10}}
KINDS = {
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
    "rnn_tanh": (RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
}


def pair(kind, dtype, **kw):
    """Our module and torch's with the same weights (copied through the state dict)."""
    ours_cls, torch_cls, extra = KINDS[kind]
    ours = ours_cls(I, H, dtype=dtype, **extra, **kw)
    theirs = torch_cls(I, H, **extra, **kw).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def close(got, want, dtype, what):
    want = want.detach().numpy() if hasattr(want, "detach") else want
    assert got.dtype == dtype, what
    np.testing.assert_allclose(got, want, err_msg=what, **TOL[dtype])


def run_both(kind, dtype, num_layers=1, batch_first=False, with_state=True, bidirectional=False):
    rng = np.random.default_rng(0)
    ours, theirs = pair(kind, dtype, num_layers=num_layers, batch_first=batch_first,
                        bidirectional=bidirectional)  # fmt: skip
    d = 2 if bidirectional else 1
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(dtype)
    n_states = 2 if kind == "lstm" else 1
    states = [rng.standard_normal((num_layers * d, N, H)).astype(dtype) for _ in range(n_states)]
    r_out = rng.standard_normal((*x.shape[:2], d * H)).astype(dtype)
    r_fin = [rng.standard_normal(s.shape).astype(dtype) for s in states]

    def loss(out, fin, lib):
        total = (out * lib(r_out)).sum()
        for f, r in zip(fin, r_fin, strict=True):
            total = total + (f * lib(r)).sum()
        return total

    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    bx = bp.tensor(x, requires_grad=True)
    bs = [bp.tensor(s, requires_grad=True) for s in states]
    if kind == "lstm":
        t_out, t_fin = theirs(tx, tuple(ts) if with_state else None)
        b_out, b_fin = ours(bx, tuple(bs) if with_state else None)
    else:
        t_out, t_fin = theirs(tx, ts[0] if with_state else None)
        b_out, b_fin = ours(bx, bs[0] if with_state else None)
        t_fin, b_fin = (t_fin,), (b_fin,)
    loss(t_out, t_fin, torch.tensor).backward()
    loss(b_out, b_fin, bp.tensor).backward()
    close(b_out.numpy(), t_out, dtype, "output")
    for k, (b, t) in enumerate(zip(b_fin, t_fin, strict=True)):
        close(b.numpy(), t, dtype, f"final state {k}")
    close(bx.grad, tx.grad, dtype, "d input")
    if with_state:
        for k, (b, t) in enumerate(zip(bs, ts, strict=True)):
            close(b.grad, t.grad, dtype, f"d initial state {k}")
    ours_p = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        close(ours_p[name].grad, p.grad, dtype, "d " + name)


@pytest.mark.torch
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_torch(kind, dtype, num_layers, batch_first, with_state):
    run_both(kind, dtype, num_layers, batch_first, with_state)


@pytest.mark.torch
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bidirectional_matches_torch(kind, dtype):
    run_both(kind, dtype, num_layers=2, batch_first=True, bidirectional=True)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_state_dict_keys_equal_torch(kind, bidirectional, bias):
    ours, theirs = pair(kind, np.float32, num_layers=2, bidirectional=bidirectional, bias=bias)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_truncated_bptt_matches_torch(kind, dtype):
    """64 steps in windows of 16, the state carried across windows detached, the gradient
    accumulated window by window: same gradients and final states as torch."""
    steps, window, layers = 64, 16, 2
    rng = np.random.default_rng(1)
    ours, theirs = pair(kind, dtype, num_layers=layers)
    x = rng.standard_normal((steps, N, I)).astype(dtype)
    target = rng.standard_normal((steps, N, H)).astype(dtype)
    n_states = 2 if kind == "lstm" else 1
    t_state = b_state = None
    for start in range(0, steps, window):
        sl = slice(start, start + window)
        t_out, t_state = theirs(torch.tensor(x[sl]), t_state)
        b_out, b_state = ours(bp.tensor(x[sl]), b_state)
        ((t_out - torch.tensor(target[sl])) ** 2).mean().backward()
        diff = b_out - bp.tensor(target[sl])
        (diff * diff).mean().backward()
        if n_states == 2:
            t_state = tuple(s.detach() for s in t_state)
            b_state = tuple(s.detach() for s in b_state)
        else:
            t_state, b_state = t_state.detach(), b_state.detach()
    finals = zip(b_state, t_state, strict=True) if n_states == 2 else [(b_state, t_state)]
    for k, (b, t) in enumerate(finals):
        close(b.numpy(), t, dtype, f"final state {k}")
    ours_p = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        close(ours_p[name].grad, p.grad, dtype, "d " + name)


@pytest.mark.torch
def test_unbatched_input_matches_torch():
    ours, theirs = pair("lstm", np.float64)
    x = np.random.default_rng(2).standard_normal((T, I))
    h0, c0 = np.ones((1, H)) * 0.1, np.ones((1, H)) * -0.2
    b_out, (b_h, b_c) = ours(bp.tensor(x), (bp.tensor(h0), bp.tensor(c0)))
    t_out, (_, t_c) = theirs(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    assert b_out.shape == (T, H) and b_h.shape == (1, H)
    close(b_out.numpy(), t_out, np.float64, "output")
    close(b_c.numpy(), t_c, np.float64, "c_n")


def test_lazy_input_size_and_config_round_trip():
    gru = GRU(None, 6, num_layers=2, batch_first=True)
    out, h = gru(bp.tensor(np.ones((2, 3, 7), np.float32)))
    assert out.shape == (2, 3, 6) and h.shape == (2, 2, 6)
    assert gru.weight_ih_l0.shape == (18, 7) and gru.weight_ih_l1.shape == (18, 6)
    again = GRU.from_config(gru.get_config())
    assert again.state_dict().keys() == gru.state_dict().keys()
    rnn = RNN(3, 4, nonlinearity="relu")
    assert RNN.from_config(rnn.get_config()).nonlinearity == "relu"


def test_default_init_bounds_match_pytorch():
    lstm = LSTM(10, 100)
    for name, p in lstm.named_parameters():
        assert np.abs(p.data).max() <= 0.1, name
        assert p.data.std() == pytest.approx(0.1 / np.sqrt(3), rel=0.15), name


def test_dropout_between_layers_only_in_training():
    bp.manual_seed(0)
    lstm = LSTM(3, 5, num_layers=2, dropout=0.5)
    x = bp.tensor(np.random.default_rng(3).standard_normal((4, 2, 3)).astype(np.float32))
    lstm.eval()
    a, b = lstm(x)[0].numpy(), lstm(x)[0].numpy()
    np.testing.assert_array_equal(a, b)
    lstm.train()
    assert not np.allclose(lstm(x)[0].numpy(), a)


def test_float32_stays_float32():
    lstm = LSTM(3, 4)
    x = bp.tensor(np.ones((5, 2, 3), np.float32), requires_grad=True)
    out, (h, c) = lstm(x)
    (out.sum() + c.sum()).backward()
    assert out.dtype == h.dtype == c.dtype == x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in lstm.parameters())


def test_errors_name_the_shapes():
    lstm = LSTM(3, 4, num_layers=2)
    with pytest.raises(BpcliError, match="input_size 3"):
        lstm(bp.tensor(np.ones((5, 2, 7), np.float32)))
    with pytest.raises(BpcliError, match=r"h_0 has shape \(1, 2, 4\), expected \(2, 2, 4\)"):
        lstm(bp.tensor(np.ones((5, 2, 3), np.float32)), (np.zeros((1, 2, 4), np.float32),) * 2)
    with pytest.raises(BpcliError, match="tuple"):
        lstm(bp.tensor(np.ones((5, 2, 3), np.float32)), np.zeros((2, 2, 4), np.float32))
    with pytest.raises(BpcliError, match="3-d"):
        lstm(bp.tensor(np.ones((5,), np.float32)))
    with pytest.raises(BpcliError, match="float64"):
        lstm(bp.tensor(np.ones((5, 2, 3))))
    with pytest.raises(BpcliError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
