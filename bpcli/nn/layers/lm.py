"""Character language models for specs: ``forward(x, state=None) -> (logits, state)``.

``x`` is ``(N, T)`` int token ids, ``logits`` ``(N, T, vocab_size)``. ``stateful`` says whether
the returned state should be carried (detached) into the next truncated-BPTT window.
``vocab_size`` may be left out of a spec: the builder takes it from the dataset.
"""

from __future__ import annotations

import numpy as np

from bpcli.errors import BpcliError
from bpcli.nn import init
from bpcli.nn.layers.dropout import Dropout
from bpcli.nn.layers.embedding import Embedding
from bpcli.nn.layers.linear import Linear
from bpcli.nn.layers.norm import LayerNorm
from bpcli.nn.layers.recurrent import GRU, LSTM
from bpcli.nn.layers.transformer import TransformerEncoder, TransformerEncoderLayer
from bpcli.nn.module import Module, Parameter

__all__ = ["LAYERS", "CharRNN", "CharTransformer", "detach_state"]


def detach_state(state):
    """The state cut from the graph (tensors, tuples of tensors, or None)."""
    if state is None:
        return None
    if isinstance(state, tuple | list):
        return type(state)(detach_state(s) for s in state)
    return state.detach()


class CharRNN(Module):
    """Embedding -> LSTM or GRU (batch first) -> dropout -> Linear head over the vocabulary."""

    language_model = True
    stateful = True

    def __init__(
        self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
        cell: str = "lstm", dropout: float = 0.0,
    ):  # fmt: skip
        super().__init__()
        rnn = {"lstm": LSTM, "gru": GRU}.get(cell)
        if rnn is None:
            raise BpcliError(f"cell must be 'lstm' or 'gru', not {cell!r}", "CharRNN")
        self.vocab_size, self.cell = vocab_size, cell
        self.embed = Embedding(vocab_size, embed_dim)
        self.rnn = rnn(embed_dim, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.drop = Dropout(dropout)
        self.head = Linear(hidden_size, vocab_size)

    def forward(self, x, state=None):
        out, state = self.rnn(self.embed(x), state)
        return self.head(self.drop(out)), state


class CharTransformer(Module):
    """Token embedding + learned positions -> pre-norm causal TransformerEncoder -> LayerNorm
    -> Linear head (a small GPT). Each window is attended to on its own (no state)."""

    language_model = True
    stateful = False

    def __init__(
        self, vocab_size: int, d_model: int = 64, nhead: int = 4, num_layers: int = 2,
        dim_feedforward: int = 256, dropout: float = 0.1, max_len: int = 256,
        activation: str = "gelu",
    ):  # fmt: skip
        super().__init__()
        self.vocab_size, self.max_len = vocab_size, max_len
        self.embed = Embedding(vocab_size, d_model)
        # GPT-2's N(0, 0.02) for both tables: N(0, 1) token rows would drown the positions.
        init.normal_(self.embed.weight, 0.0, 0.02)
        self.pos = Parameter(np.zeros((max_len, d_model), np.float32))
        init.normal_(self.pos, 0.0, 0.02)
        self.drop = Dropout(dropout)
        layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
                                        batch_first=True, norm_first=True)  # fmt: skip
        self.encoder = TransformerEncoder(layer, num_layers, norm=LayerNorm(d_model))
        self.head = Linear(d_model, vocab_size)

    def forward(self, x, state=None):
        t = x.shape[1]
        if t > self.max_len:
            raise BpcliError(f"a window of {t} tokens is longer than max_len {self.max_len}",
                             "CharTransformer")  # fmt: skip
        h = self.drop(self.embed(x) + self.pos[:t])
        return self.head(self.encoder(h, is_causal=True)), None


LAYERS = {"char_rnn": CharRNN, "char_transformer": CharTransformer}
