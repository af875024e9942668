"""TransformerEncoderLayer and TransformerEncoder with PyTorch's submodule names, so state
dicts move between the two."""

from __future__ import annotations

import copy

import numpy as np

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn.layers.attention import MultiheadAttention
from bpcli.nn.layers.dropout import Dropout
from bpcli.nn.layers.linear import Linear
from bpcli.nn.layers.norm import LayerNorm
from bpcli.nn.module import Module

__all__ = ["LAYERS", "TransformerEncoder", "TransformerEncoderLayer"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout, a residual and LayerNorm
    (torch.nn.TransformerEncoderLayer): post-norm by default, pre-norm with ``norm_first``.

    ``activation`` is ``"relu"``, ``"gelu"`` or a callable on tensors.
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
        activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
        norm_first: bool = False, bias: bool = True, dtype=None,
    ):  # fmt: skip
        super().__init__()
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise BpcliError(f"activation must be 'relu' or 'gelu', not {activation!r}",
                                 "TransformerEncoderLayer")  # fmt: skip
            self.activation_fn = _ACTIVATIONS[activation]
        elif callable(activation):
            self.activation_fn = activation
        else:
            raise BpcliError(f"activation must be a name or a callable, got {activation!r}",
                             "TransformerEncoderLayer")  # fmt: skip
        self.activation = activation
        self.norm_first, self.batch_first = bool(norm_first), bool(batch_first)
        self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, dim_feedforward
        self.dropout_p, self.layer_norm_eps, self.use_bias = float(dropout), layer_norm_eps, bias
        self.dtype = np.dtype(dtype or np.float32)
        dt = self.dtype
        # NOTE: created in torch's order so named_parameters() lists the same names in turn.
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dt)  # fmt: skip
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dt)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dt)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dt)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dt)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def get_config(self) -> dict:
        act = self.activation if isinstance(self.activation, str) else repr(self.activation)
        return {"d_model": self.d_model, "nhead": self.nhead,
                "dim_feedforward": self.dim_feedforward, "dropout": self.dropout_p,
                "activation": act, "layer_norm_eps": self.layer_norm_eps,
                "batch_first": self.batch_first, "norm_first": self.norm_first,
                "bias": self.use_bias, "dtype": self.dtype.name}  # fmt: skip

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]  # fmt: skip
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation_fn(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """``num_layers`` encoder layers in turn, then an optional ``norm``
    (torch.nn.TransformerEncoder); children named ``layers.0``, ``layers.1``, ...

    ``encoder_layer`` is a layer, deep-copied ``num_layers`` times (all start with the same
    weights, as torch), or a callable that returns a fresh layer each time it is called.
    """

    def __init__(self, encoder_layer, num_layers: int, norm: Module | None = None):
        super().__init__()
        from bpcli.nn.layers.container import Sequential

        if not isinstance(num_layers, int) or num_layers <= 0:
            raise BpcliError(f"num_layers must be a positive int, got {num_layers!r}",
                             "TransformerEncoder")  # fmt: skip
        if isinstance(encoder_layer, Module):
            layers = [copy.deepcopy(encoder_layer) for _ in range(num_layers)]
        elif callable(encoder_layer):
            layers = [encoder_layer() for _ in range(num_layers)]
        else:
            raise BpcliError(f"encoder_layer must be a Module or a factory, got "
                             f"{type(encoder_layer).__name__}", "TransformerEncoder")  # fmt: skip
        self.num_layers = num_layers
        self.layers = Sequential(*layers)
        self.norm = norm

    def get_config(self) -> dict:
        norm = None if self.norm is None else {"type": type(self.norm).__name__,
                                               **self.norm.get_config()}  # fmt: skip
        return {"encoder_layer": self.layers[0].get_config(), "num_layers": self.num_layers,
                "norm": norm}  # fmt: skip

    @classmethod
    def from_config(cls, config: dict) -> TransformerEncoder:
        cfg = dict(config)
        layer = cfg.pop("encoder_layer")
        if isinstance(layer, dict):
            layer = TransformerEncoderLayer.from_config(layer)
        norm = cfg.pop("norm", None)
        if isinstance(norm, dict):
            norm = dict(norm)
            if norm.pop("type") != "LayerNorm":
                raise BpcliError("only a LayerNorm norm can be rebuilt from a config",
                                 "TransformerEncoder")  # fmt: skip
            norm = LayerNorm.from_config(norm)
        return cls(layer, norm=norm, **cfg)

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal: bool | None = None):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))  # fmt: skip
        return x if self.norm is None else self.norm(x)


LAYERS = {"transformer_encoder_layer": TransformerEncoderLayer,
          "transformer_encoder": TransformerEncoder}  # fmt: skip
