"""bpcli: train neural networks with a backpropagation engine of its own.

The public API (``bp.tensor``, ``bp.Tensor``, ``bp.no_grad``, ``bp.functional``, ...) loads on
first use, so ``import bpcli.cli`` (and ``bpcli --help``) pulls in neither numpy nor Numba.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY = {
    "Tensor": ("bpcli.engine.tensor", "Tensor"),
    "tensor": ("bpcli.engine.api", "tensor"),
    "no_grad": ("bpcli.engine.grad_mode", "no_grad"),
    "enable_grad": ("bpcli.engine.grad_mode", "enable_grad"),
    "is_grad_enabled": ("bpcli.engine.grad_mode", "is_grad_enabled"),
    "set_num_threads": ("bpcli.engine.threads", "set_num_threads"),
    "get_num_threads": ("bpcli.engine.threads", "get_num_threads"),
    "BpcliError": ("bpcli.errors", "BpcliError"),
    "OPS": ("bpcli.engine.api", "OPS"),
    "functional": ("bpcli.functional", None),
    "F": ("bpcli.functional", None),
    "gradcheck": ("bpcli.engine.gradcheck", "gradcheck"),
    "nn": ("bpcli.nn", None),
    "optim": ("bpcli.optim", None),
    "data": ("bpcli.data", None),
    "onnx": ("bpcli.onnx", None),
    "save": ("bpcli.serialization", "save"),
    "load": ("bpcli.serialization", "load"),
}
for _name in ("concat", "stack", "where", "zeros", "ones", "zeros_like", "ones_like",
              "randn", "rand", "arange", "full", "manual_seed"):  # fmt: skip
    _LAZY[_name] = ("bpcli.engine.api", _name)

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'bpcli' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
