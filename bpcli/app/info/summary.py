"""``bpcli info``: per layer output shape, parameter count and FLOPs per sample.

Shapes come from one forward pass of a batch of one with every module's ``forward`` wrapped
(the module tree may nest: residual blocks, transformer layers). FLOPs count a multiply-add as
two and are per sample:

- linear: ``2 * in * out`` per position;
- convolution: ``2 * C_in/groups * prod(kernel) * C_out * prod(output spatial)`` (transposed:
  over the input's spatial positions);
- RNN/LSTM/GRU: per step, layer and direction ``2 * gates * H * (input + H)``; an LSTM with
  ``proj_size`` P: ``2 * gates * H * (input + P) + 2 * P * H``;
- multi-head attention: the q/k/v projections ``2 * L * E * 3E`` plus ``4 * L * S * E`` for
  ``q k^T`` and ``attn v`` (the output projection is its own Linear row);
- any other leaf layer (activations, norms, pooling): one per output element;
- embedding lookups, dropout, flatten, identity: none.
A row's FLOPs are its own plus its children's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from bpcli.engine.grad_mode import no_grad
from bpcli.engine.tensor import Tensor
from bpcli.nn.layers.attention import MultiheadAttention
from bpcli.nn.layers.conv import Conv1d, Conv2d, ConvTranspose2d
from bpcli.nn.layers.dropout import Dropout
from bpcli.nn.layers.embedding import Embedding
from bpcli.nn.layers.linear import Flatten, Identity, Linear
from bpcli.nn.layers.recurrent import _RNNBase
from bpcli.nn.module import Module


@dataclass
class LayerRow:
    name: str  # dotted path in the model, as in state dicts
    type: str  # class name
    depth: int
    output_shape: tuple[int, ...] | None  # batch of one; None if the layer was not called
    params: int  # this module and everything under it
    flops: int  # per sample, this module and everything under it


@dataclass
class ModelSummary:
    rows: list[LayerRow]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    params: int
    trainable_params: int
    flops: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _first(t):
    while isinstance(t, tuple | list) and t:
        t = t[0]
    return t if isinstance(t, Tensor) else None


def _prod(xs) -> int:
    return int(math.prod(xs))


def _own_flops(m: Module, x, y) -> int:
    """FLOPs of one sample inside ``m`` itself (not its children); shapes include batch 1."""
    if y is None:
        return 0
    if isinstance(m, Linear):
        return 2 * m.in_features * m.out_features * _prod(y.shape[1:-1])
    if isinstance(m, Conv1d | Conv2d | ConvTranspose2d):
        k = _prod(m.kernel_size)
        per = 2 * (m.in_channels // m.groups) * k * m.out_channels
        spatial = x.shape[2:] if isinstance(m, ConvTranspose2d) else y.shape[2:]
        return per * _prod(spatial)
    if isinstance(m, _RNNBase):
        steps = x.shape[1] if m.batch_first and x.ndim == 3 else x.shape[0]
        h, p, total = m.hidden_size, m.output_size, 0
        for k in range(m.num_layers):
            inp = m.input_size if k == 0 else p * m.num_directions
            proj = 2 * p * h if m.proj_size else 0
            total += (2 * m.gates * h * (inp + p) + proj) * m.num_directions
        return total * steps
    if isinstance(m, MultiheadAttention):
        e = m.embed_dim
        length = y.shape[1] if m.batch_first else y.shape[0]
        return 2 * length * e * 3 * e + 4 * length * length * e
    if isinstance(m, Embedding | Dropout | Flatten | Identity) or m._modules:
        return 0  # lookups and reshapes; dropout is off at inference
    return _prod(y.shape[1:])


def summarize(model: Module, input_shape, dtype=None) -> ModelSummary:
    """Run a batch of one of ``input_shape`` (one sample's shape) and tabulate every module.

    ``dtype`` defaults to int64 token ids (zeros) for language models, else float32.
    """
    if dtype is None:
        dtype = np.int64 if getattr(model, "language_model", False) else np.float32
    input_shape = tuple(input_shape)
    seen: dict[int, tuple] = {}
    wrapped = []
    for m in model.modules():
        original = m.forward

        def hook(*args, _m=m, _f=original, **kwargs):
            out = _f(*args, **kwargs)
            seen.setdefault(id(_m), (_first(args), _first(out)))
            return out

        object.__setattr__(m, "forward", hook)
        wrapped.append(m)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out = model(Tensor(np.zeros((1, *input_shape), dtype=dtype)))
    finally:
        for m in wrapped:
            object.__delattr__(m, "forward")
        model.train(was_training)
    own = {id(m): _own_flops(m, *seen[id(m)]) if id(m) in seen else 0 for m in wrapped}
    rows = []
    for name, m in model.named_modules():
        if not name:
            continue
        flops = sum(own[id(sub)] for sub in m.modules())
        y = seen.get(id(m), (None, None))[1]
        rows.append(LayerRow(name, type(m).__name__, name.count("."),
                             None if y is None else tuple(y.shape), m.num_parameters(),
                             flops))  # fmt: skip
    y = _first(out)
    return ModelSummary(rows, input_shape, None if y is None else tuple(y.shape[1:]),
                        model.num_parameters(), model.num_parameters(trainable_only=True),
                        sum(own.values()))  # fmt: skip
