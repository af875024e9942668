"""Module hooks as PyTorch has them: forward pre-hooks, forward hooks, full backward hooks.

``Module.__call__`` hands over to :func:`call_with_hooks` only when a module has a hook (or the
ONNX tracer observes calls), so a model without hooks pays one attribute test per call.

Full backward hooks follow ``torch.utils.hooks.BackwardHook``: the tensor inputs that need a
gradient pass through one identity node and the outputs through another. The output node's
backward keeps ``grad_output``; the input node's backward then holds exactly this call's
``grad_input`` (not the sum over every use of the input tensor, which a tensor hook on the
input would see) and calls ``hook(module, grad_input, grad_output)``; a returned tuple
replaces ``grad_input``. Entries are Tensors, or None for an argument that is not a tensor or
needs no gradient. When no input needs a gradient the hook fires with all-None ``grad_input``
as soon as ``grad_output`` is known, as in torch.
"""

from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict

import numpy as np

from bpcli.engine import grad_mode
from bpcli.engine import op as op_module
from bpcli.engine.convert import const
from bpcli.engine.op import Op
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

_ids = itertools.count()


class RemovableHandle:
    """Returned by every ``register_*_hook``: ``handle.remove()`` takes the hook off again.

    Calling the handle itself also removes it (bpcli's earlier API returned a function), and
    it works as a context manager, as torch's does.
    """

    def __init__(self, hooks: ModuleHooks, key: int):
        self._hooks, self.id = hooks, key

    def remove(self) -> None:
        self._hooks.discard(self.id)

    __call__ = remove

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class ModuleHooks:
    """The hooks of one module, each table in registration order (``prepend`` puts first)."""

    __slots__ = ("always", "backward", "forward", "kwargs", "owner", "pre")

    def __init__(self, owner):
        self.owner = owner
        self.pre: OrderedDict = OrderedDict()
        self.forward: OrderedDict = OrderedDict()
        self.backward: OrderedDict = OrderedDict()
        self.kwargs: set[int] = set()  # ids of hooks registered with_kwargs=True
        self.always: set[int] = set()  # forward hooks with always_call=True

    def add(self, table: OrderedDict, hook, prepend: bool = False) -> RemovableHandle:
        if not callable(hook):
            raise BpcliError(f"a hook must be callable, got {type(hook).__name__}", "hook")
        key = next(_ids)
        table[key] = hook
        if prepend:
            table.move_to_end(key, last=False)
        return RemovableHandle(self, key)

    def discard(self, key: int) -> None:
        for table in (self.pre, self.forward, self.backward):
            table.pop(key, None)
        self.kwargs.discard(key)
        self.always.discard(key)
        if not (self.pre or self.forward or self.backward):
            # back to the fast path of Module.__call__
            self.owner.__dict__.pop("_hooks", None)


def hooks_of(module) -> ModuleHooks:
    h = module.__dict__.get("_hooks")
    if h is None:
        h = ModuleHooks(module)
        object.__setattr__(module, "_hooks", h)
    return h


def call_with_hooks(module, args: tuple, kwargs: dict, observers: list):
    """``module.forward(*args, **kwargs)`` with its hooks, in the order of torch's _call_impl."""
    h = module.__dict__.get("_hooks")
    if h is not None:
        args, kwargs = _run_pre_hooks(module, h, args, kwargs)
    bw = None
    # NOTE: no identity nodes while the ONNX exporter traces (op observers set): they have no
    # ONNX form, and a trace never runs backward, so the hooks could not fire anyway.
    if h is not None and h.backward and grad_mode.enabled and not op_module.observers:
        bw = _BackwardState(module, list(h.backward.values()))
        args = bw.wrap_inputs(args)
    out = None
    try:
        for fn in observers:
            fn(module, True)
        try:
            out = module.forward(*args, **kwargs)
        finally:
            for fn in observers:
                fn(module, False)
    except Exception:
        if h is not None:
            _run_always_hooks(module, h, args, kwargs, out)
        raise
    if h is not None:
        for key, hook in list(h.forward.items()):
            r = hook(module, args, kwargs, out) if key in h.kwargs else hook(module, args, out)
            if r is not None:
                out = r
    if bw is not None:
        out = bw.wrap_outputs(out)
    return out


def _run_pre_hooks(module, h: ModuleHooks, args: tuple, kwargs: dict):
    for key, hook in list(h.pre.items()):
        if key in h.kwargs:
            r = hook(module, args, kwargs)
            if r is not None:
                if not (isinstance(r, tuple) and len(r) == 2):
                    raise BpcliError(
                        "a forward pre-hook registered with_kwargs=True must return None or "
                        f"(args, kwargs), got {type(r).__name__}",
                        type(module).__name__,
                    )
                args, kwargs = r
        else:
            r = hook(module, args)
            if r is not None:
                args = r if isinstance(r, tuple) else (r,)
    return args, kwargs


def _run_always_hooks(module, h: ModuleHooks, args, kwargs, out) -> None:
    # torch runs always_call hooks when forward raised, silencing their own errors
    for key in list(h.always):
        hook = h.forward.get(key)
        if hook is None:
            continue
        try:
            hook(module, args, kwargs, out) if key in h.kwargs else hook(module, args, out)
        except Exception as e:
            warnings.warn(f"forward hook with always_call=True raised {e!r}", stacklevel=3)


class _BackwardState:
    """One call's link between the gradients of its outputs and those of its inputs."""

    def __init__(self, module, hooks: list):
        self.module, self.hooks = module, hooks
        self.grad_outputs: tuple | None = None
        self.n_inputs = 0
        self.input_index: list[int] | None = None  # positions of the inputs that were wrapped
        self.n_outputs = 0
        self.output_index: list[int] = []

    def wrap_inputs(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        idx = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not idx:
            return args
        self.input_index = idx
        new = _HookIn.apply(*[args[i] for i in idx], state=self)
        args = list(args)
        for i, t in zip(idx, new):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, out):
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        if not all(isinstance(o, Tensor) or o is None for o in outs):
            warnings.warn(
                f"{type(self.module).__name__}: backward hooks need a Tensor or a tuple of "
                f"Tensors as the module's output, got {type(out).__name__}; they will not run",
                stacklevel=3,
            )
            return out
        self.n_outputs = len(outs)
        idx = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        self.output_index = idx
        if not idx:
            return out
        new = _HookOut.apply(*[outs[i] for i in idx], state=self)
        outs = list(outs)
        for i, t in zip(idx, new):
            outs[i] = t
        return outs[0] if single else tuple(outs)

    def got_output_grads(self, grads: tuple, reached: list) -> None:
        gs = [const(g) if r is not None else None for g, r in zip(grads, reached)]
        self.grad_outputs = _pack(self.output_index, gs, self.n_outputs)
        if self.input_index is None:
            grad_inputs = (None,) * self.n_inputs
            for hook in self.hooks:
                r = hook(self.module, grad_inputs, self.grad_outputs)
                if r is not None and not all(x is None for x in r):
                    raise BpcliError(
                        "a backward hook of a module whose inputs need no gradient must "
                        "return None (or only Nones)",
                        type(self.module).__name__,
                    )
            self.grad_outputs = None

    def got_input_grads(self, grads: tuple, reached: list) -> tuple:
        if self.grad_outputs is None:
            return grads
        gs = [const(g) if r is not None else None for g, r in zip(grads, reached)]
        res = _pack(self.input_index, gs, self.n_inputs)
        for hook in self.hooks:
            r = hook(self.module, res, self.grad_outputs)
            if r is None:
                continue
            r = tuple(r) if isinstance(r, list | tuple) else (r,)
            if len(r) != len(res):
                raise BpcliError(
                    f"backward hook returned {len(r)} grad_input entries, expected {len(res)}",
                    type(self.module).__name__,
                )
            res = r
        self.grad_outputs = None
        out = []
        for i, g_old in zip(self.input_index, grads):
            g = res[i]
            out.append(None if g is None else np.asarray(g, dtype=g_old.dtype))
        return tuple(out)


def _pack(index: list[int], values: list, size: int) -> tuple:
    res = [None] * size
    for i, v in zip(index, values):
        res[i] = v
    return tuple(res)


class _HookIn(Op):
    """y_i = x_i; dx = backward hooks(g). Unregistered (no name): it exists only on the tape."""

    n_outputs = 2  # a tuple of any length
    saves_inputs = False

    def forward(self, *xs, state):
        return xs

    def backward(self, *grads):
        # NOTE: out_grads still holds None where no gradient arrived (the engine passes
        # zeros there); torch hands the hook None for those, so do we
        return self.attrs["state"].got_input_grads(grads, self.out_grads)


class _HookOut(Op):
    """y_i = x_i; dx = g, after keeping g as the module's grad_output."""

    n_outputs = 2
    saves_inputs = False

    def forward(self, *xs, state):
        return xs

    def backward(self, *grads):
        self.attrs["state"].got_output_grads(grads, self.out_grads)
        return grads
