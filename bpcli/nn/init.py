"""Initialisers with PyTorch's names, formulas and defaults (``bp.nn.init.kaiming_uniform_``).

Each fills a tensor in place (under no_grad) and returns it; ``generator`` (a numpy Generator)
makes it reproducible, else the engine's default generator (``bp.manual_seed``) is used.
"""

from __future__ import annotations

import math

import numpy as np

from bpcli.engine.random import resolve
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "INITIALIZERS",
    "calculate_gain",
    "constant_",
    "fan_in_and_fan_out",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]  # fmt: skip


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    linear = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid", "identity"}  # fmt: skip
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise BpcliError(f"unknown nonlinearity {nonlinearity!r}", "calculate_gain")


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """fan_in = in_features * receptive field, fan_out = out_features * receptive field."""
    if len(shape) < 2:
        raise BpcliError(f"fan in/out needs at least 2 dims, the tensor has shape {shape}", "init")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.data[...] = values.astype(t.dtype, copy=False)
    t._version += 1
    return t


def zeros_(t: Tensor) -> Tensor:
    return _fill(t, np.zeros(t.shape))


def ones_(t: Tensor) -> Tensor:
    return _fill(t, np.ones(t.shape))


def constant_(t: Tensor, val: float) -> Tensor:
    return _fill(t, np.full(t.shape, val))


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    return _fill(t, resolve(generator).uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    return _fill(t, resolve(generator).normal(mean, std, t.shape))


def trunc_normal_(t: Tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None) -> Tensor:
    """Normal(mean, std) redrawn until inside [a, b] (absolute bounds, as torch)."""
    rng = resolve(generator)
    out = rng.normal(mean, std, t.shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < a) | (out > b)
    return _fill(t, out)


def xavier_uniform_(t: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = fan_in_and_fan_out(t.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound, generator)


def xavier_normal_(t: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = fan_in_and_fan_out(t.shape)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise BpcliError(f"mode must be 'fan_in' or 'fan_out', not {mode!r}", "kaiming")
    fan_in, fan_out = fan_in_and_fan_out(t.shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None) -> Tensor:
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None) -> Tensor:
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity), generator)


def lecun_uniform_(t: Tensor, generator=None) -> Tensor:
    """U(-sqrt(3 / fan_in), sqrt(3 / fan_in)): variance 1 / fan_in (LeCun 1998)."""
    return kaiming_uniform_(t, mode="fan_in", nonlinearity="linear", generator=generator)


def lecun_normal_(t: Tensor, generator=None) -> Tensor:
    """N(0, 1 / fan_in), the initialisation SELU networks assume."""
    return kaiming_normal_(t, mode="fan_in", nonlinearity="linear", generator=generator)


def orthogonal_(t: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR of a Gaussian, with torch's sign correction."""
    if t.ndim < 2:
        raise BpcliError(
            f"orthogonal init needs at least 2 dims, got shape {t.shape}", "orthogonal_"
        )
    rows, cols = t.shape[0], t.numel() // t.shape[0]
    flat = resolve(generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, gain * q.reshape(t.shape))


# Registry names (used by specs and the initializer plugin hook).
INITIALIZERS = {
    "zeros": zeros_, "ones": ones_, "constant": constant_, "uniform": uniform_,
    "normal": normal_, "trunc_normal": trunc_normal_, "xavier_uniform": xavier_uniform_,
    "xavier_normal": xavier_normal_, "glorot_uniform": xavier_uniform_,
    "glorot_normal": xavier_normal_, "kaiming_uniform": kaiming_uniform_,
    "kaiming_normal": kaiming_normal_, "he_uniform": kaiming_uniform_,
    "he_normal": kaiming_normal_, "lecun_uniform": lecun_uniform_,
    "lecun_normal": lecun_normal_, "orthogonal": orthogonal_,
}  # fmt: skip
