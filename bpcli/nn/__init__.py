"""Layers, losses and initialisers (``bp.nn``), with PyTorch's names and defaults.

``get_layer``/``get_loss``/... look parts up in the plugin registry, so a layer added by an
installed plugin is found by name exactly like a built-in one.
"""

from bpcli.nn import init
from bpcli.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList
from bpcli.nn.hooks import RemovableHandle
from bpcli.nn.layers.activation import (
    ELU,
    GELU,
    SELU,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)  # fmt: skip
from bpcli.nn.layers.activation_more import (
    CELU,
    GLU,
    Hardsigmoid,
    Hardswish,
    LogSigmoid,
    Mish,
    PReLU,
    ReLU6,
    Softmin,
    Softsign,
)  # fmt: skip
from bpcli.nn.layers.attention import MultiheadAttention
from bpcli.nn.layers.bilinear import Bilinear
from bpcli.nn.layers.container import Residual, Sequential
from bpcli.nn.layers.conv import Conv1d, Conv2d, ConvTranspose2d
from bpcli.nn.layers.dropout import Dropout
from bpcli.nn.layers.embedding import Embedding
from bpcli.nn.layers.linear import Flatten, Identity, Linear
from bpcli.nn.layers.norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from bpcli.nn.layers.pool import (
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    GlobalAvgPool,
    MaxPool1d,
    MaxPool2d,
)  # fmt: skip
from bpcli.nn.layers.recurrent import GRU, LSTM, RNN
from bpcli.nn.layers.shaping import PixelShuffle, PixelUnshuffle, Unflatten, Upsample
from bpcli.nn.layers.transformer import TransformerEncoder, TransformerEncoderLayer
from bpcli.nn.losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)  # fmt: skip
from bpcli.nn.losses_more import (
    BCELoss,
    CosineEmbeddingLoss,
    CosineSimilarity,
    HingeEmbeddingLoss,
    MarginRankingLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    PairwiseDistance,
    SoftMarginLoss,
    TripletMarginLoss,
)  # fmt: skip
from bpcli.nn.module import Module, Parameter


def _lookup(kind: str, name: str):
    from bpcli.plugins.manager import registry

    return registry(kind).get(name)


def get_layer(name: str):
    """The layer class registered as ``name`` (built-in or from a plugin)."""
    return _lookup("layer", name)


def get_loss(name: str):
    return _lookup("loss", name)


def get_initializer(name: str):
    return _lookup("initializer", name)


__all__ = [
    "ELU",
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "SELU",
    "AdaptiveAvgPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Bilinear",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GlobalAvgPool",
    "GroupNorm",
    "Hardtanh",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiheadAttention",
    "NLLLoss",
    "Parameter",
    "ParameterDict",
    "ParameterList",
    "PixelShuffle",
    "PixelUnshuffle",
    "ReLU",
    "RemovableHandle",
    "Residual",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "Unflatten",
    "Upsample",
    "get_initializer",
    "get_layer",
    "get_loss",
    "init",
]  # fmt: skip
# the activation layers and losses of issue 11 (kept apart so merges stay line-additions)
__all__ += [
    "CELU", "GLU", "BCELoss", "CosineEmbeddingLoss", "CosineSimilarity", "Hardsigmoid",
    "Hardswish", "HingeEmbeddingLoss", "LogSigmoid", "MarginRankingLoss", "Mish",
    "MultiLabelSoftMarginLoss", "MultiMarginLoss", "PReLU", "PairwiseDistance", "ReLU6",
    "SoftMarginLoss", "Softmin", "Softsign", "TripletMarginLoss",
]  # fmt: skip
