"""Module: named parameters and buffers, train/eval mode, state dicts, configs.

A model built from a TOML spec and a model imported from ONNX are both Modules, so training,
diagnostics and export treat them alike. Names follow PyTorch (``0.weight`` inside a
Sequential, ``running_mean``, ...), so state moves between the two.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

# Callables f(module, entering: bool) told when a module's forward starts and ends (the ONNX
# exporter uses it to name the layer an op ran in); empty in normal runs.
call_observers: list = []


class Parameter(Tensor):
    """A tensor that a Module owns as a trainable weight (``requires_grad`` on by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__() + ")"


def _record_config(init):
    """Wrap a Module's ``__init__`` so the arguments it was built with are kept for get_config."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if "_config" not in self.__dict__:
            try:
                bound = inspect.signature(init).bind(self, *args, **kwargs)
                bound.apply_defaults()
                config = dict(bound.arguments)
                config.pop("self")
                var_kw = [n for n, p in inspect.signature(init).parameters.items()
                          if p.kind is p.VAR_KEYWORD]  # fmt: skip
                for n in var_kw:
                    config.update(config.pop(n))
            except TypeError:
                config = {}
            object.__setattr__(self, "_config", config)
        init(self, *args, **kwargs)

    wrapper._records_config = True
    return wrapper


class Module:
    """Base class of every layer and model. Subclasses define ``forward``."""

    training: bool

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_records_config", False):
            cls.__init__ = _record_config(init)

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- attribute bookkeeping --------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"call Module.__init__() in {type(self).__name__}.__init__ first")
        was_param, was_buffer = name in self._parameters, name in self._buffers
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter) or (value is None and was_param):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif was_buffer and (value is None or isinstance(value, Tensor)):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (``None`` keeps the name, as an absent bias)."""
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, value, persistent: bool = True) -> None:
        """Add state that is saved but not trained (BatchNorm's running statistics)."""
        t = value if isinstance(value, Tensor) or value is None else Tensor(np.asarray(value))
        object.__setattr__(self, name, t)
        self._buffers[name] = t
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        setattr(self, name, module)
        if module is None:
            self._modules[name] = None

    # -- calling --------------------------------------------------------------------------
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    # Class default: no instance pays for forward hooks until one is registered on it.
    _forward_hooks: dict | None = None

    def __call__(self, *args, **kwargs):
        if not call_observers and self._forward_hooks is None:
            return self.forward(*args, **kwargs)
        for fn in call_observers:
            fn(self, True)
        try:
            out = self.forward(*args, **kwargs)
        finally:
            for fn in call_observers:
                fn(self, False)
        for hook in list((self._forward_hooks or {}).values()):
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_hook(self, hook) -> Callable[[], None]:
        """Call ``hook(module, args, output)`` after each forward of this module; a returned
        value replaces the output (as PyTorch). Returns a function that removes the hook."""
        if self._forward_hooks is None:
            object.__setattr__(self, "_forward_hooks", {})
        key = object()
        self._forward_hooks[key] = hook

        def remove() -> None:
            hooks = self.__dict__.get("_forward_hooks")
            if hooks is not None:
                hooks.pop(key, None)
                if not hooks:
                    object.__setattr__(self, "_forward_hooks", None)

        return remove

    # -- traversal ------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [
                (f"{name}.{k}" if name else k, m) for k, m in mod._modules.items() if m is not None
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for k, m in self._modules.items():
            if m is not None:
                yield k, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, mod in mods:
            for k, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{k}" if mname else k), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, mod in mods:
            for k, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mname}.{k}" if mname else k), b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and freezing ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def freeze(self, *patterns: str) -> list[str]:
        """Stop training the parameters whose names match any glob; returns the names frozen."""
        frozen = []
        for name, p in self.named_parameters():
            if any(fnmatch.fnmatchcase(name, pat) for pat in patterns):
                p.requires_grad = False
                frozen.append(name)
        if patterns and not frozen:
            raise BpcliError(f"no parameter matches {', '.join(patterns)}", "freeze")
        return frozen

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, dtype) -> Module:
        """Cast the float parameters and buffers in place (integer buffers stay), and each
        module's ``dtype``, e.g. ``model.to(np.float64)`` for finite-difference checks."""
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise BpcliError(f"can only cast to a float dtype, got {dt}", "Module.to")
        for m in self.modules():
            for store in (m._parameters, m._buffers):
                for t in store.values():
                    if t is not None and t.dtype.kind == "f" and t.dtype != dt:
                        t.data = t.data.astype(dt)
                        t.grad = None
            # Layers check inputs against their own dtype (RNNs, attention) and build new
            # weights with it (lazy in_features), so it moves with the parameters.
            if isinstance(m.__dict__.get("dtype"), np.dtype):
                object.__setattr__(m, "dtype", dt)
            if "dtype" in m.__dict__.get("_config", {}):
                m._config["dtype"] = dt
        return self

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and persistent buffers by name, as numpy arrays (not copies)."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mname, mod in self.named_modules():
            skip = mod.__dict__.get("_non_persistent", set())
            for k, p in mod._parameters.items():
                if p is not None:
                    out[f"{mname}.{k}" if mname else k] = p.data
            for k, b in mod._buffers.items():
                if b is not None and k not in skip:
                    out[f"{mname}.{k}" if mname else k] = b.data
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy arrays in by name. Strict: missing, unexpected or mis-shaped keys are an error
        listing all of them; nothing is changed unless everything fits."""
        own = {}
        for mname, mod in self.named_modules():
            for store in (mod._parameters, mod._buffers):
                for k, t in store.items():
                    if t is not None:
                        own[f"{mname}.{k}" if mname else k] = t
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        bad_shape = [
            f"{k} {tuple(np.shape(state[k]))} vs {own[k].shape}"
            for k in own
            if k in state and tuple(np.shape(state[k])) != own[k].shape
        ]
        problems = []
        if missing and strict:
            problems.append("missing " + ", ".join(missing))
        if unexpected and strict:
            problems.append("unexpected " + ", ".join(unexpected))
        if bad_shape:
            problems.append("shape mismatch " + ", ".join(bad_shape))
        if problems:
            raise BpcliError("; ".join(problems), "load_state_dict")
        for k, t in own.items():
            if k in state:
                t.data[...] = np.asarray(state[k], dtype=t.dtype)
                t._version += 1
        return missing, unexpected

    # -- config -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments this module was built with (JSON-friendly values)."""
        cfg = {}
        for k, v in self.__dict__.get("_config", {}).items():
            if isinstance(v, np.dtype | type) and k == "dtype":
                v = np.dtype(v).name
            cfg[k] = v
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> Module:
        return cls(**config)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def extra_repr(self) -> str:
        return ", ".join(
            f"{k}={v!r}" for k, v in self.get_config().items() if not isinstance(v, Module)
        )

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        children = list(self.named_children())
        if not children:
            return lines[0] + ")"
        for k, m in children:
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({k}): {sub}")
        return "\n".join(lines) + "\n)"
