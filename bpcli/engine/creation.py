"""torch's creation functions that ``bp.zeros``/``bp.randn`` (engine/api.py) lack: eye, empty,
linspace, logspace, *_like, random sampling with a ``generator=`` (``bp.Generator``), and the
conversions from numpy (``from_numpy`` shares memory, ``as_tensor`` shares when it can).

Random numbers come from numpy's PCG64, so a seed gives the same numbers run after run but not
torch's numbers. Sampling functions return tensors without a graph: torch's gradients of
``normal``/``bernoulli`` with respect to their parameters are zero.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.dtype_names import as_dtype
from bpcli.engine.ops.join import concat
from bpcli.engine.random import default_rng
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = [
    "Generator", "as_tensor", "bernoulli", "cat", "empty", "empty_like", "eye", "from_numpy",
    "full_like", "is_tensor", "linspace", "logspace", "multinomial", "normal", "rand_like",
    "randint", "randint_like", "randn_like", "randperm",
]  # fmt: skip


class Generator(np.random.Generator):
    """``bp.Generator()``: a random generator to pass as ``generator=``, as torch.Generator.

    It is a numpy Generator, so every bpcli function taking a generator accepts it.
    """

    def __init__(self, device="cpu"):
        from bpcli.engine.dtype_names import device as _device

        _device(device)
        self._seed = int(np.random.SeedSequence().entropy % 2**63)
        super().__init__(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self.bit_generator.state = np.random.PCG64(self._seed).state
        return self

    def seed(self) -> int:
        return self.manual_seed(int(np.random.SeedSequence().entropy % 2**63))._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        self.bit_generator.state = state
        return self


def _size(size, where: str) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = size[0]
    try:
        out = tuple(int(s) for s in size)
    except (TypeError, ValueError):
        raise BpcliError(f"size must be ints, got {size!r}", where) from None
    if any(s < 0 for s in out):
        raise BpcliError(f"negative dimension in size {out}", where)
    return out


def _dt(dtype, where: str, default=np.float32) -> np.dtype:
    return np.dtype(default) if dtype is None else as_dtype(dtype, where)


def _leaf(arr: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, requires_grad: bool = False) -> Tensor:
    if n < 0 or (m is not None and m < 0):
        raise BpcliError(f"n and m must be >= 0, got {n}, {m}", "eye")
    return _leaf(np.eye(n, m, dtype=_dt(dtype, "eye")), requires_grad)


def empty(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uninitialised memory of ``size`` (its values are whatever was there, as in torch)."""
    return _leaf(np.empty(_size(size, "empty"), _dt(dtype, "empty")), requires_grad)


def linspace(start, end, steps: int, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``steps`` values from start to end, computed as torch does (each half from its end)."""
    if steps < 0:
        raise BpcliError(f"number of steps must be non-negative, got {steps}", "linspace")
    dt = _dt(dtype, "linspace")
    # NOTE: torch fills the first half from start and the second half from end, with the step
    # rounded to the dtype and a fused multiply-add: one wider type reproduces it bit for bit.
    step_t = dt if dt.kind == "f" else np.dtype(np.float64)
    wide = np.longdouble if dt == np.float64 else np.float64
    s, e = (step_t.type(start), step_t.type(end)) if dt.kind == "f" else (int(start), int(end))
    step = wide((e - s) / step_t.type(max(steps - 1, 1)))
    s, e = step_t.type(s), step_t.type(e)
    i = np.arange(steps).astype(wide)
    out = np.where(i < steps // 2, wide(s) + step * i, wide(e) - step * (steps - 1 - i))
    if steps == 1:
        out = np.asarray([s])
    return _leaf(out.astype(dt), requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None,
             requires_grad: bool = False) -> Tensor:  # fmt: skip
    """``base ** linspace(start, end, steps)``."""
    dt = _dt(dtype, "logspace")
    exps = linspace(start, end, steps, dtype=np.float64)._data
    return _leaf(np.power(float(base), exps).astype(dt), requires_grad)


def _like(x, dtype, where):
    x = lift(x)
    return x, (x.dtype if dtype is None else as_dtype(dtype, where))


def full_like(x, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    x, dt = _like(x, dtype, "full_like")
    return _leaf(np.full(x.shape, fill_value, dt), requires_grad)


def empty_like(x, *, dtype=None, requires_grad: bool = False) -> Tensor:
    x, dt = _like(x, dtype, "empty_like")
    return _leaf(np.empty(x.shape, dt), requires_grad)


def _float_like(x, dtype, where):
    x, dt = _like(x, dtype, where)
    if dt.kind != "f":
        raise BpcliError(f"{where} needs a floating point dtype, got {dt}", where)
    return x, dt


def rand_like(x, *, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    x, dt = _float_like(x, dtype, "rand_like")
    return _leaf((generator or default_rng()).random(x.shape, dtype=_std(dt)).astype(dt),
                 requires_grad)  # fmt: skip


def randn_like(x, *, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    x, dt = _float_like(x, dtype, "randn_like")
    rng = generator or default_rng()
    return _leaf(rng.standard_normal(x.shape, dtype=_std(dt)).astype(dt), requires_grad)


def _std(dt: np.dtype) -> np.dtype:
    """numpy samples float32 and float64 only; float16 is drawn as float32 and rounded."""
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float32)


def randint(*args, size=None, generator=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """``randint(high, size)`` or ``randint(low, high, size)``: integers in [low, high)."""
    args = list(args)
    if size is None and args and isinstance(args[-1], tuple | list):
        size = args.pop()
    if size is None or len(args) not in (1, 2):
        raise BpcliError("call as randint(high, size) or randint(low, high, size)", "randint")
    low, high = (0, args[0]) if len(args) == 1 else args
    if not low < high:
        raise BpcliError(f"random_ expects 'from' ({low}) to be less than 'to' ({high})", "randint")
    dt = _dt(dtype, "randint", np.int64)
    vals = (generator or default_rng()).integers(int(low), int(high), _size((size,), "randint"))
    return _leaf(vals.astype(dt), requires_grad)


def randint_like(x, low=0, high=None, *, dtype=None, generator=None) -> Tensor:
    x, dt = _like(x, dtype, "randint_like")
    if high is None:
        low, high = 0, low
    return randint(low, high, x.shape, generator=generator, dtype=dt)


def randperm(n: int, *, generator=None, dtype=None, requires_grad: bool = False) -> Tensor:
    if n < 0:
        raise BpcliError(f"n must be non-negative, got {n}", "randperm")
    perm = (generator or default_rng()).permutation(int(n))
    return _leaf(perm.astype(_dt(dtype, "randperm", np.int64)), requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None) -> Tensor:
    """Normal samples: tensors ``mean``/``std`` broadcast, or numbers with a ``size``."""
    rng = generator or default_rng()
    tensors = [v for v in (mean, std) if isinstance(v, Tensor)]
    if not tensors and size is None:
        raise BpcliError("give mean or std as a tensor, or a size", "normal")
    m = np.asarray(mean._data if isinstance(mean, Tensor) else mean)
    s = np.asarray(std._data if isinstance(std, Tensor) else std)
    if (s < 0).any():
        raise BpcliError("std must be >= 0.0", "normal")
    if tensors:
        dt = np.result_type(*(t.dtype for t in tensors))
        shape = np.broadcast_shapes(m.shape, s.shape)
    else:
        dt, shape = _dt(dtype, "normal"), _size((size,), "normal")
    return const((m + s * rng.standard_normal(shape)).astype(dt))


def bernoulli(x, p=None, *, generator=None) -> Tensor:
    """1 with probability ``x`` (or the number ``p``) per element, in ``x``'s dtype."""
    x = lift(x)
    probs = x._data if p is None else np.full(x.shape, float(p))
    if probs.size and not ((probs >= 0) & (probs <= 1)).all():
        raise BpcliError("all probabilities must be in [0, 1]", "bernoulli")
    draw = (generator or default_rng()).random(x.shape) < probs
    return const(draw.astype(x.dtype))


def multinomial(x, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Indices drawn by the (unnormalised) weights of each row of a 1-D or 2-D ``x``."""
    x = lift(x)
    w = x._data.astype(np.float64)
    if x.ndim not in (1, 2):
        raise BpcliError(f"prob_dist must be 1 or 2 dim, got {x.ndim}", "multinomial")
    rows = w.reshape(-1, w.shape[-1])
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise BpcliError("probability tensor contains either inf, nan or element < 0", "multinomial")
    if num_samples <= 0:
        raise BpcliError(f"cannot sample {num_samples} <= 0 samples", "multinomial")
    nonzero = (rows > 0).sum(axis=1)
    if (rows.sum(axis=1) == 0).any():
        raise BpcliError("invalid multinomial distribution (sum of probabilities <= 0)",
                         "multinomial")  # fmt: skip
    if not replacement and (nonzero < num_samples).any():
        raise BpcliError("cannot sample n_sample > prob_dist.size(-1) samples without "
                         "replacement", "multinomial")  # fmt: skip
    rng = generator or default_rng()
    out = np.stack([
        rng.choice(len(r), num_samples, replace=replacement, p=r / r.sum()) for r in rows
    ]).astype(np.int64)  # fmt: skip
    return const(out.reshape(*x.shape[:-1], num_samples))


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing ``arr``'s memory and dtype: a change to one shows in the other."""
    if not isinstance(arr, np.ndarray):
        raise BpcliError(f"expected np.ndarray (got {type(arr).__name__})", "from_numpy")
    if arr.dtype == object:
        raise BpcliError("can't convert an array of objects", "from_numpy")
    return const(arr)


def as_tensor(data, dtype=None) -> Tensor:
    """``data`` itself when it is a tensor of ``dtype``, a tensor sharing a numpy array's
    memory when the dtype matches, else a new tensor (float lists become float32)."""
    dt = None if dtype is None else as_dtype(dtype, "as_tensor")
    if isinstance(data, Tensor):
        return data if dt is None or dt == data.dtype else data.to(dt)
    if isinstance(data, np.ndarray) and (dt is None or dt == data.dtype):
        return const(data)
    return Tensor(data, dtype=dt)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def cat(tensors, dim: int = 0, *, axis=None) -> Tensor:
    """torch.cat: join tensors along an existing dim."""
    return concat(tensors, axis=dim if axis is None else axis)
