"""MultiheadAttention, TransformerEncoderLayer and TransformerEncoder against torch.nn."""

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError
from bpcli.nn.layers.attention import MultiheadAttention
from bpcli.nn.layers.norm import LayerNorm
from bpcli.nn.layers.transformer import TransformerEncoder, TransformerEncoderLayer

torch = pytest.importorskip("torch")

E, HEADS, L, S, N = 8, 2, 5, 6, 3
TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-8, "atol": 1e-10}}


def tdt(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def load_into_torch(ours, theirs, dtype):
    theirs = theirs.to(tdt(dtype))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return theirs


def close(got, want, dtype, what):
    want = want.detach().numpy() if hasattr(want, "detach") else want
    assert got.dtype == dtype, what
    np.testing.assert_allclose(got, want, err_msg=what, **TOL[dtype])


def check_grads(ours, theirs, inputs, dtype):
    for k, (b, t) in enumerate(inputs):
        close(b.grad, t.grad, dtype, f"d input {k}")
    ours_p = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        close(ours_p[name].grad, p.grad, dtype, "d " + name)


def leaves(rng, dtype, *shapes):
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    return [(bp.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)) for a in arrays]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("self_attention", [False, True])
@pytest.mark.parametrize("average", [False, True])
def test_mha_with_padding_and_causal_masks_matches_torch(dtype, batch_first, self_attention,
                                                         average):  # fmt: skip
    rng = np.random.default_rng(0)
    ours = MultiheadAttention(E, HEADS, batch_first=batch_first, dtype=dtype)
    theirs = load_into_torch(ours, torch.nn.MultiheadAttention(E, HEADS, batch_first=batch_first),
                             dtype)  # fmt: skip
    src = S if not self_attention else L

    def shape(length):
        return (N, length, E) if batch_first else (length, N, E)

    shapes = [shape(L)] if self_attention else [shape(L), shape(S), shape(S)]
    ins = leaves(rng, dtype, *shapes)
    q, k, v = (ins * 3) if self_attention else ins
    kpm = np.zeros((N, src), bool)
    kpm[0, -2:] = True
    kpm[2, 0] = True
    causal = np.triu(np.ones((L, src), bool), 1)
    b_out, b_w = ours(q[0], k[0], v[0], key_padding_mask=kpm, attn_mask=causal,
                      average_attn_weights=average)  # fmt: skip
    t_out, t_w = theirs(q[1], k[1], v[1], key_padding_mask=torch.tensor(kpm),
                        attn_mask=torch.tensor(causal), average_attn_weights=average)  # fmt: skip
    close(b_out.numpy(), t_out, dtype, "output")
    close(b_w.numpy(), t_w, dtype, "weights")
    r = rng.standard_normal(b_w.shape).astype(dtype)
    (b_out.sum() + (b_w * r).sum()).backward()
    (t_out.sum() + (t_w * torch.tensor(r)).sum()).backward()
    check_grads(ours, theirs, ins, dtype)


@pytest.mark.torch
def test_mha_kdim_vdim_float_mask_no_bias_matches_torch():
    dtype, rng = np.float64, np.random.default_rng(1)
    ours = MultiheadAttention(E, HEADS, bias=False, kdim=3, vdim=7, dtype=dtype)
    theirs = load_into_torch(ours, torch.nn.MultiheadAttention(E, HEADS, bias=False, kdim=3,
                                                               vdim=7), dtype)  # fmt: skip
    assert ours.in_proj_weight is None and ours.k_proj_weight.shape == (E, 3)
    ins = leaves(rng, dtype, (L, N, E), (S, N, 3), (S, N, 7))
    mask = rng.standard_normal((N * HEADS, L, S))
    b_out, b_w = ours(*(b for b, _ in ins), attn_mask=mask)
    t_out, t_w = theirs(*(t for _, t in ins), attn_mask=torch.tensor(mask))
    close(b_out.numpy(), t_out, dtype, "output")
    close(b_w.numpy(), t_w, dtype, "weights")
    b_out.sum().backward()
    t_out.sum().backward()
    check_grads(ours, theirs, ins, dtype)


@pytest.mark.torch
def test_mha_unbatched_and_is_causal():
    dtype = np.float64
    ours = MultiheadAttention(E, HEADS, dtype=dtype)
    theirs = load_into_torch(ours, torch.nn.MultiheadAttention(E, HEADS), dtype)
    x = np.random.default_rng(2).standard_normal((L, E))
    causal = np.triu(np.ones((L, L), bool), 1)
    b_out, b_w = ours(x, x, x, is_causal=True)
    t_out, t_w = theirs(*[torch.tensor(x)] * 3, attn_mask=torch.tensor(causal), is_causal=True)
    assert b_out.shape == (L, E) and b_w.shape == (L, L)
    close(b_out.numpy(), t_out, dtype, "output")
    close(b_w.numpy(), t_w, dtype, "weights")
    out, w = ours(x, x, x, need_weights=False)
    assert w is None and out.shape == (L, E)


def test_mha_default_init_and_errors():
    m = MultiheadAttention(16, 4)
    assert not m.in_proj_bias.data.any() and not m.out_proj.bias.data.any()
    assert np.abs(m.in_proj_weight.data).max() <= np.sqrt(6 / (16 + 48))
    with pytest.raises(BpcliError, match="multiple of num_heads"):
        MultiheadAttention(10, 4)
    x = np.ones((5, 2, 16), np.float32)
    with pytest.raises(BpcliError, match="key_padding_mask has shape"):
        m(x, x, x, key_padding_mask=np.zeros((3, 5), bool))
    with pytest.raises(BpcliError, match="embed_dim 16"):
        m(np.ones((5, 2, 8), np.float32), x, x)
    again = MultiheadAttention.from_config(m.get_config())
    assert list(again.state_dict()) == list(m.state_dict())


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mode", ["eval", "train_p0"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_torch(dtype, norm_first, mode, batch_first):
    rng = np.random.default_rng(3)
    p = 0.1 if mode == "eval" else 0.0
    kw = dict(dim_feedforward=16, dropout=p, norm_first=norm_first, batch_first=batch_first)
    act = "gelu" if norm_first else "relu"
    ours = TransformerEncoderLayer(E, HEADS, activation=act, dtype=dtype, **kw)
    theirs = load_into_torch(ours, torch.nn.TransformerEncoderLayer(E, HEADS, activation=act,
                                                                    **kw), dtype)  # fmt: skip
    if mode == "eval":
        ours.eval(), theirs.eval()
    ins = leaves(rng, dtype, (N, L, E) if batch_first else (L, N, E))
    kpm = np.zeros((N, L), bool)
    kpm[1, -1] = True
    mask = np.triu(np.ones((L, L), bool), 1)
    b_out = ours(ins[0][0], src_mask=mask, src_key_padding_mask=kpm)
    t_out = theirs(ins[0][1], src_mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(kpm))
    close(b_out.numpy(), t_out, dtype, "output")
    r = rng.standard_normal(b_out.shape).astype(dtype)
    (b_out * r).sum().backward()
    (t_out * torch.tensor(r)).sum().backward()
    check_grads(ours, theirs, ins, dtype)


@pytest.mark.torch
def test_encoder_stack_with_norm_matches_torch():
    dtype, rng = np.float64, np.random.default_rng(4)
    layer = TransformerEncoderLayer(E, HEADS, 16, dropout=0.0, dtype=dtype)
    ours = TransformerEncoder(layer, 2, norm=LayerNorm(E, dtype=dtype))
    t_layer = torch.nn.TransformerEncoderLayer(E, HEADS, 16, dropout=0.0)
    theirs = torch.nn.TransformerEncoder(t_layer, 2, norm=torch.nn.LayerNorm(E),
                                         enable_nested_tensor=False)  # fmt: skip
    theirs = load_into_torch(ours, theirs, dtype)
    assert np.array_equal(ours.layers[0].linear1.weight.data, ours.layers[1].linear1.weight.data)
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight
    ins = leaves(rng, dtype, (L, N, E))
    causal = np.triu(np.ones((L, L), bool), 1)
    b_out = ours(ins[0][0], mask=causal)
    t_out = theirs(ins[0][1], mask=torch.tensor(causal))
    close(b_out.numpy(), t_out, dtype, "output")
    b_out.sum().backward()
    t_out.sum().backward()
    check_grads(ours, theirs, ins, dtype)


def test_encoder_from_factory_and_bad_activation():
    enc = TransformerEncoder(lambda: TransformerEncoderLayer(8, 2, 16), 3)
    assert [n for n, _ in enc.named_children()] == ["layers"]
    assert "layers.2.norm2.bias" in enc.state_dict()
    assert not np.array_equal(enc.layers[0].linear1.weight.data, enc.layers[1].linear1.weight.data)
    with pytest.raises(BpcliError, match="activation"):
        TransformerEncoderLayer(8, 2, activation="swish")


def test_encoder_config_round_trip():
    enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16, norm_first=True), 2, LayerNorm(8))
    again = TransformerEncoder.from_config(enc.get_config())
    assert list(again.state_dict()) == list(enc.state_dict())
    assert again.layers[1].norm_first and again.get_config() == enc.get_config()
