"""LSTM with proj_size (torch's LSTMP) against torch.nn.LSTM(proj_size=...): parameter names
and shapes, outputs, final states, every gradient, truncated BPTT and state_dict both ways."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn.layers.recurrent import LSTM

torch = pytest.importorskip("torch")
# torch runs LSTMs with projections without oneDNN, and says so once
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")

T, N, I, H, P = 6, 3, 5, 4, 2
TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-8, "atol": 1e-10}}


def tdtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def pair(dtype, proj=P, **kw):
    """Our LSTM and torch's with the same weights (copied through the state dict)."""
    ours = LSTM(I, H, proj_size=proj, dtype=dtype, **kw)
    theirs = torch.nn.LSTM(I, H, proj_size=proj, **kw).to(tdtype(dtype))
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def close(got, want, dtype, what):
    want = want.detach().numpy() if hasattr(want, "detach") else want
    assert got.shape == want.shape, what
    assert got.dtype == dtype, what
    np.testing.assert_allclose(got, want, err_msg=what, **TOL[dtype])


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_torch(dtype, num_layers, bidirectional, batch_first, with_state):
    rng = np.random.default_rng(0)
    ours, theirs = pair(dtype, num_layers=num_layers, bidirectional=bidirectional,
                        batch_first=batch_first)  # fmt: skip
    d = 2 if bidirectional else 1
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(dtype)
    h0 = rng.standard_normal((num_layers * d, N, P)).astype(dtype)
    c0 = rng.standard_normal((num_layers * d, N, H)).astype(dtype)
    r_out = rng.standard_normal((*x.shape[:2], d * P)).astype(dtype)
    r_h, r_c = rng.standard_normal(h0.shape).astype(dtype), rng.standard_normal(c0.shape)

    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    bx, bh, bc = (bp.tensor(a, requires_grad=True) for a in (x, h0, c0))
    t_out, (t_h, t_c) = theirs(tx, (th, tc) if with_state else None)
    b_out, (b_h, b_c) = ours(bx, (bh, bc) if with_state else None)
    r_c = r_c.astype(dtype)
    t_loss = (t_out * torch.tensor(r_out)).sum() + (t_h * torch.tensor(r_h)).sum()
    (t_loss + (t_c * torch.tensor(r_c)).sum()).backward()
    b_loss = (b_out * bp.tensor(r_out)).sum() + (b_h * bp.tensor(r_h)).sum()
    (b_loss + (b_c * bp.tensor(r_c)).sum()).backward()

    close(b_out.numpy(), t_out, dtype, "output")
    close(b_h.numpy(), t_h, dtype, "h_n")
    close(b_c.numpy(), t_c, dtype, "c_n")
    close(bx.grad, tx.grad, dtype, "d input")
    if with_state:
        close(bh.grad, th.grad, dtype, "d h_0")
        close(bc.grad, tc.grad, dtype, "d c_0")
    ours_p = dict(ours.named_parameters())
    assert list(ours_p) == [n for n, _ in theirs.named_parameters()]
    for name, p in theirs.named_parameters():
        close(ours_p[name].grad, p.grad, dtype, "d " + name)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_truncated_bptt_matches_torch(dtype):
    """64 steps in windows of 16, (h, c) carried across windows detached, the gradient
    accumulated window by window: same final states and gradients as torch."""
    steps, window = 64, 16
    rng = np.random.default_rng(1)
    ours, theirs = pair(dtype, num_layers=2, bidirectional=False)
    x = rng.standard_normal((steps, N, I)).astype(dtype)
    target = rng.standard_normal((steps, N, P)).astype(dtype)
    t_state = b_state = None
    for start in range(0, steps, window):
        sl = slice(start, start + window)
        t_out, t_state = theirs(torch.tensor(x[sl]), t_state)
        b_out, b_state = ours(bp.tensor(x[sl]), b_state)
        ((t_out - torch.tensor(target[sl])) ** 2).mean().backward()
        diff = b_out - bp.tensor(target[sl])
        (diff * diff).mean().backward()
        t_state = tuple(s.detach() for s in t_state)
        b_state = tuple(s.detach() for s in b_state)
    for name, b, t in zip(("h_n", "c_n"), b_state, t_state, strict=True):
        close(b.numpy(), t, dtype, name)
    ours_p = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        close(ours_p[name].grad, p.grad, dtype, "d " + name)


@pytest.mark.torch
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_state_dict_names_and_shapes_equal_torch(bidirectional, bias):
    ours = LSTM(I, H, num_layers=2, bias=bias, bidirectional=bidirectional, proj_size=P)
    theirs = torch.nn.LSTM(I, H, num_layers=2, bias=bias, bidirectional=bidirectional,
                           proj_size=P)  # fmt: skip
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]


@pytest.mark.torch
def test_state_dict_torch_to_bpcli_to_torch():
    torch.manual_seed(0)
    src = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P).double()
    ours = LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P, dtype=np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in src.state_dict().items()})
    back = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P).double()
    back.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    x = np.random.default_rng(2).standard_normal((T, N, I))
    b_out, (b_h, b_c) = ours(bp.tensor(x))
    t_out, (t_h, t_c) = src(torch.tensor(x))
    close(b_out.numpy(), t_out, np.float64, "output")
    close(b_h.numpy(), t_h, np.float64, "h_n")
    close(b_c.numpy(), t_c, np.float64, "c_n")


@pytest.mark.torch
def test_unbatched_input_matches_torch():
    ours, theirs = pair(np.float64)
    x = np.random.default_rng(3).standard_normal((T, I))
    h0, c0 = np.full((1, P), 0.1), np.full((1, H), -0.2)
    b_out, (b_h, b_c) = ours(bp.tensor(x), (bp.tensor(h0), bp.tensor(c0)))
    t_out, (t_h, t_c) = theirs(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    assert b_out.shape == (T, P) and b_h.shape == (1, P) and b_c.shape == (1, H)
    close(b_out.numpy(), t_out, np.float64, "output")
    close(b_h.numpy(), t_h, np.float64, "h_n")
    close(b_c.numpy(), t_c, np.float64, "c_n")


def test_init_bounds_as_torch_including_weight_hr():
    lstm = LSTM(10, 100, proj_size=30)
    for name, p in lstm.named_parameters():
        assert np.abs(p.data).max() <= 0.1, name
        assert p.data.std() == pytest.approx(0.1 / np.sqrt(3), rel=0.15), name
    assert lstm.weight_hr_l0.shape == (30, 100) and lstm.weight_hh_l0.shape == (400, 30)


def test_lazy_input_size_and_config_round_trip():
    lstm = LSTM(None, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
    out, (h, c) = lstm(bp.tensor(np.ones((2, 5, 7), np.float32)))
    assert out.shape == (2, 5, 6) and h.shape == (4, 2, 3) and c.shape == (4, 2, 6)
    assert lstm.weight_ih_l1.shape == (24, 6)
    again = LSTM.from_config(lstm.get_config())
    assert again.proj_size == 3
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in lstm.state_dict().items()
    }
    assert LSTM(3, 4).get_config()["proj_size"] == 0


@pytest.mark.parametrize(
    "proj, match",
    [(-1, "proj_size should be a positive integer or zero"), (4, "smaller than hidden_size"),
     (5, "smaller than hidden_size"), (1.5, "positive integer or zero")],
)  # fmt: skip
def test_bad_proj_size_is_one_line_error(proj, match):
    with pytest.raises(BpcliError, match=match) as e:
        LSTM(3, 4, proj_size=proj)
    assert "\n" not in str(e.value)


def test_state_shapes_are_checked():
    lstm = LSTM(3, 4, proj_size=2)
    x = bp.tensor(np.ones((5, 2, 3), np.float32))
    h, c = np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 4), np.float32)
    assert lstm(x, (h, c))[0].shape == (5, 2, 2)
    with pytest.raises(BpcliError, match=r"h_0 has shape \(1, 2, 4\), expected \(1, 2, 2\)"):
        lstm(x, (c, c))
    with pytest.raises(BpcliError, match=r"c_0 has shape \(1, 2, 2\), expected \(1, 2, 4\)"):
        lstm(x, (h, h))


def test_op_checks_projection_shapes():
    xg, w_hr = np.zeros((3, 2, 16), np.float32), np.zeros((2, 4), np.float32)
    out, h, c = F.lstm_seq(xg, None, None, np.zeros((16, 2), np.float32), w_hr=w_hr)
    assert out.shape == (3, 2, 2) and h.shape == (2, 2) and c.shape == (2, 4)
    with pytest.raises(BpcliError, match=r"w_hh must be \(4\*hidden, proj\) = \(16, 2\)"):
        F.lstm_seq(xg, None, None, np.zeros((16, 4), np.float32), w_hr=w_hr)
    with pytest.raises(BpcliError, match=r"h0 has shape \(2, 4\), expected \(2, 2\)"):
        F.lstm_seq(xg, np.zeros((2, 4), np.float32), None, np.zeros((16, 2), np.float32),
                   w_hr=w_hr)  # fmt: skip
