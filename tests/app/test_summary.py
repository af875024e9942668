"""summarize(): exact parameter counts, output shapes and FLOPs per sample of small nets."""

from __future__ import annotations

import numpy as np

from bpcli import nn
from bpcli.app.info.summary import summarize


def test_mlp_numbers():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    s = summarize(m, (4,))
    assert [r.name for r in s.rows] == ["0", "1", "2", "3"]
    assert [r.params for r in s.rows] == [40, 0, 0, 27]
    assert [r.flops for r in s.rows] == [2 * 4 * 8, 8, 0, 2 * 8 * 3]
    assert [r.output_shape for r in s.rows] == [(1, 8), (1, 8), (1, 8), (1, 3)]
    assert s.params == s.trainable_params == 67 and s.flops == 64 + 8 + 48
    assert s.output_shape == (3,) and m.training  # mode restored


def test_conv_and_nesting():
    body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.ReLU())
    m = nn.Sequential(nn.Conv2d(None, 4, 3), nn.Residual(body), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(None, 5))  # fmt: skip
    s = summarize(m, (1, 10, 10))
    rows = {r.name: r for r in s.rows}
    conv0 = 2 * 1 * 9 * 4 * 8 * 8
    conv1 = 2 * (4 // 2) * 9 * 4 * 8 * 8
    assert rows["0"].flops == conv0 and rows["0"].output_shape == (1, 4, 8, 8)
    assert rows["1.body.0"].flops == conv1 and rows["1.body"].flops == conv1 + 256
    assert rows["1"].flops == conv1 + 256 and rows["1"].depth == 0
    assert rows["1.body.1"].depth == 2 and rows["1"].params == 2 * 9 * 4 + 4
    assert rows["2"].flops == 64 and rows["4"].flops == 2 * 64 * 5
    assert s.flops == conv0 + conv1 + 256 + 64 + 640
    assert s.params == 40 + 76 + 325


def test_recurrent_and_attention():
    lstm = nn.LSTM(3, 5, num_layers=2, batch_first=True)
    s = summarize(lstm, (7, 3))
    step = 2 * 4 * 5 * (3 + 5) + 2 * 4 * 5 * (5 + 5)
    assert s.flops == 7 * step and s.params == 4 * 5 * (3 + 5 + 2) + 4 * 5 * (5 + 5 + 2)
    lstmp = nn.LSTM(3, 5, num_layers=2, batch_first=True, proj_size=2)
    s = summarize(lstmp, (7, 3))
    step = 2 * 4 * 5 * (3 + 2) + 2 * 2 * 5 + 2 * 4 * 5 * (2 + 2) + 2 * 2 * 5
    assert s.flops == 7 * step and s.params == 4 * 5 * (3 + 2 + 2) + 10 + 4 * 5 * (2 + 2 + 2) + 10
    mha = nn.MultiheadAttention(8, 2, batch_first=True)

    class Self(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, x):
            return self.attn(x, x, x)[0]

    s = summarize(Self(), (6, 8))
    rows = {r.name: r for r in s.rows}
    own = 2 * 6 * 8 * 24 + 4 * 6 * 6 * 8
    assert rows["attn.out_proj"].flops == 2 * 6 * 8 * 8
    assert rows["attn"].flops == own + 2 * 6 * 8 * 8 == s.flops


def test_language_model_int_input():
    from bpcli.nn.layers.lm import CharRNN

    m = CharRNN(11, embed_dim=4, hidden_size=6, cell="gru")
    s = summarize(m, (5,), dtype=np.int64)
    assert s.output_shape == (5, 11)
    rows = {r.name: r for r in s.rows}
    assert rows["embed"].flops == 0 and rows["rnn"].flops == 5 * 2 * 3 * 6 * (4 + 6)
    assert rows["head"].flops == 5 * 2 * 6 * 11
