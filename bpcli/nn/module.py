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
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.nn import hooks as _hooks
from bpcli.nn import state_dict as _state
from bpcli.nn.hooks import RemovableHandle

# Callables f(module, entering: bool) told when a module's forward starts and ends (the ONNX
# exporter uses it to name the layer an op ran in); empty in normal runs.
call_observers: list = []


class Parameter(Tensor):
    """A tensor that a Module owns as a trainable weight (``requires_grad`` on by default)."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True, dtype=None):
        if data is None:  # torch: Parameter() is an empty float tensor
            data = np.empty(0, np.float32)
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
                # the instance, whatever the subclass calls its first argument
                config.pop(next(iter(inspect.signature(init).parameters)))
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
        if isinstance(value, Parameter) or (value is None and was_param):
            target = self._parameters
        elif isinstance(value, Module):
            target = self._modules
        elif was_buffer and (value is None or isinstance(value, Tensor)):
            target = self._buffers
        else:
            target = None
        # NOTE: replacing a set entry keeps its place, as in torch (ml[0] = ... stays first);
        # filling a None placeholder moves it last, which the built-in layers' orders rely on
        # (Linear's bias is registered as None before its weight is made).
        keep = target is not None and target.get(name) is not None
        for store in (self._parameters, self._buffers, self._modules):
            if not (keep and store is target):
                store.pop(name, None)
        if target is not None:
            target[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (``None`` keeps the name, as an absent bias)."""
        _state.check_name(self, name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise BpcliError(f"{type(param).__name__} is not a Parameter (or None)", name)
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add state that is not trained (BatchNorm's running statistics). Persistent buffers
        are in ``state_dict``; ``persistent=False`` ones are not (but are cast by ``to``)."""
        _state.check_name(self, name, "buffer", self._buffers)
        t = tensor if isinstance(tensor, Tensor) or tensor is None else Tensor(np.asarray(tensor))
        object.__setattr__(self, name, t)
        self._buffers[name] = t
        skip = self.__dict__.setdefault("_non_persistent", set())
        if persistent:
            skip.discard(name)
        else:
            skip.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise BpcliError(f"{type(module).__name__} is not a Module", f"add_module {name!r}")
        _state.check_name(self, name, "module", self._modules)
        setattr(self, name, module)
        if module is None:
            self._modules[name] = None

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The module at a dotted path (``"layers.0"``); ``""`` is this module."""
        mod = self
        for part in target.split(".") if target else ():
            child = mod._modules.get(part)
            if child is None:
                raise BpcliError(f"{type(mod).__name__} has no submodule {part!r}", target)
            mod = child
        return mod

    # -- calling --------------------------------------------------------------------------
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    # Class default: no instance pays for hooks until one is registered on it (nn/hooks.py).
    _hooks: _hooks.ModuleHooks | None = None

    def __call__(self, *args, **kwargs):
        if not call_observers and self._hooks is None:
            return self.forward(*args, **kwargs)
        return _hooks.call_with_hooks(self, args, kwargs, call_observers)

    def register_forward_pre_hook(
        self, hook, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward; a returned value (a tuple, or one
        value that is wrapped in one) replaces ``args``. ``with_kwargs=True``: ``hook(module,
        args, kwargs)`` returning None or ``(args, kwargs)``. As torch; returns a handle."""
        h = _hooks.hooks_of(self)
        handle = h.add(h.pre, hook, prepend)
        if with_kwargs:
            h.kwargs.add(handle.id)
        return handle

    def register_forward_hook(
        self, hook, *, prepend: bool = False, with_kwargs: bool = False, always_call: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward; a returned value replaces
        the output. ``with_kwargs=True``: ``hook(module, args, kwargs, output)``;
        ``always_call=True`` also runs it when forward raised. As torch; returns a handle
        (``handle.remove()``; calling the handle removes it too)."""
        h = _hooks.hooks_of(self)
        handle = h.add(h.forward, hook, prepend)
        if with_kwargs:
            h.kwargs.add(handle.id)
        if always_call:
            h.always.add(handle.id)
        return handle

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to
        this call's tensor inputs are computed (tuples of Tensors, None where an input is no
        tensor or needs no gradient); a returned tuple replaces ``grad_input``. As torch."""
        h = _hooks.hooks_of(self)
        return h.add(h.backward, hook, prepend)

    # -- traversal ------------------------------------------------------------------------
    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Every module below and including this one, depth first in registration order, each
        once unless ``remove_duplicate=False`` (torch's order and names)."""
        seen = memo if memo is not None else set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if remove_duplicate:
                if mod in seen:
                    continue
                seen.add(mod)
            yield name, mod
            children = [
                (f"{name}.{k}" if name else k, m) for k, m in mod._modules.items() if m is not None
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()  # a module held under two names is one child, as in torch
        for k, m in self._modules.items():
            if m is not None and m not in seen:
                seen.add(m)
                yield k, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """Buffers by name, persistent or not (torch lists both; state_dict only the first)."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool):
        # a tensor shared by two modules (tied weights) is listed once, under its first name
        seen = set()
        if recurse:
            mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            mods = [(prefix, self)]
        for mname, mod in mods:
            for k, t in getattr(mod, store).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f"{mname}.{k}" if mname else k), t

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

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule, children before their parent (torch's order, so an
        init function sees the leaves first); returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
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

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's ``.grad`` (or fill it with zeros: ``set_to_none=False``)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def to(self, *args, dtype=None, device=None, non_blocking: bool = False) -> Module:
        """Cast the float parameters and buffers in place (integer buffers stay), and each
        module's ``dtype``, e.g. ``model.to(np.float64)`` for finite-difference checks.

        As torch's: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(tensor)``
        (its dtype); the only device is the CPU."""
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif _state.as_dtype(a) is None and (isinstance(a, str) or _state.is_device(a)):
                device = a
            else:
                dtype = a
        if device is not None and str(device).split(":")[0] != "cpu":
            raise BpcliError(f"bpcli runs on the CPU only, got device {device!r}", "Module.to")
        if dtype is None:
            return self
        dt = _state.as_dtype(dtype)
        if dt is None:
            raise BpcliError(f"not a dtype: {dtype!r}", "Module.to")
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
    def state_dict(
        self, *, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Any]:
        """Parameters and persistent buffers by torch's names, as numpy arrays (not copies);
        ``keep_vars=True`` gives the Parameter/Tensor objects instead. NOTE: torch gives
        tensors; arrays are what checkpoints, the exporter and ``bp.save`` take, and
        ``torch.tensor(v)`` / ``load_state_dict`` accept them."""
        out = OrderedDict() if destination is None else destination
        for name, t in self._state_items(prefix):
            out[name] = t if keep_vars else t.data
        return out

    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        # torch keeps a shared module or tensor under each of its names in state_dict
        for mname, mod in self.named_modules(prefix=prefix, remove_duplicate=False):
            skip = mod.__dict__.get("_non_persistent", ())
            for k, p in mod._parameters.items():
                if p is not None:
                    yield (f"{mname}.{k}" if mname else k), p
            for k, b in mod._buffers.items():
                if b is not None and k not in skip:
                    yield (f"{mname}.{k}" if mname else k), b

    def load_state_dict(self, state_dict: Mapping, strict: bool = True) -> _state.IncompatibleKeys:
        """Copy arrays (numpy, bpcli or torch tensors) in by name, as torch: with ``strict``,
        missing or unexpected keys are an error; a shape mismatch always is. The error lists
        every problem in torch's words, and nothing is changed unless everything fits.
        Returns ``(missing_keys, unexpected_keys)``."""
        return _state.load(self, state_dict, strict)

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
