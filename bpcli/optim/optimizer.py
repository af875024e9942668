"""Optimizer base: parameter groups, per-parameter state, state dicts for exact resume.

Semantics follow ``torch.optim.Optimizer``: ``params`` is an iterable of tensors or of dicts
with ``"params"`` and per-group options; missing options come from ``defaults``. Subclasses
implement ``_update(p, g, state, group)`` on numpy arrays (``p`` is updated in place) and
``_check(options)`` that raises on a bad option value.

A state dict holds only numpy arrays, numbers, strings, lists and dicts, so the trainer can
save it without pickle: ``flatten_state`` splits it into a JSON tree and a ``{key: array}``
dict for ``np.savez``; ``unflatten_state`` is its inverse.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from bpcli.engine import grad_mode
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

ARRAY_TAG = "__array__"


class Optimizer:
    """Updates parameters from their ``.grad``; see the module docstring.

    Args:
        params: tensors, or dicts ``{"params": [...], "lr": ..., ...}`` (one per group).
        defaults: the option values a group gets when it does not set them.
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = {
            k: v.item() if isinstance(v, np.generic) else v for k, v in defaults.items()
        }
        self._check(self.defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise BpcliError(
                "params must be an iterable of tensors or of dicts, got a single Tensor "
                "(wrap it in a list)",
                self._name,
            )
        groups = list(params)
        if not groups:
            raise BpcliError("got an empty parameter list", self._name)
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={v!r}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {opts}")
        return "\n".join([*lines, ")"])

    # -- groups -------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. a new layer to fine-tune)."""
        if not isinstance(param_group, dict):
            raise BpcliError(
                f"a param group must be a dict, got {type(param_group).__name__}", self._name
            )
        # NOTE: numpy scalars as options would turn float32 updates into float64 temporaries.
        group = {k: v.item() if isinstance(v, np.generic) else v for k, v in param_group.items()}
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise BpcliError(
                "a group's params must be an ordered sequence, not a set "
                "(the order must be the same on every run)",
                self._name,
            )
        params = list(params) if params is not None else []
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise BpcliError(f"params[{i}] is a {type(p).__name__}, not a Tensor", self._name)
            if not p.is_leaf:
                raise BpcliError(
                    f"params[{i}] is not a leaf tensor and cannot be optimized", self._name
                )
        if len({id(p) for p in params}) != len(params):
            raise BpcliError("a param group lists the same tensor twice", self._name)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise BpcliError("some parameters appear in more than one param group", self._name)
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check(group)
        self.param_groups.append(group)

    def _check(self, options: dict[str, Any]) -> None:
        """Raise BpcliError on a bad option value (subclasses)."""

    def _bad(self, option: str, value, need: str) -> BpcliError:
        return BpcliError(f"{option}={value!r} is invalid: {need}", self._name)

    def _nonneg(self, options: dict[str, Any], *names: str) -> None:
        for name in names:
            value = options.get(name, 0.0)
            if not (isinstance(value, int | float) and value >= 0 and not math.isnan(value)):
                raise self._bad(name, value, "it must be a number >= 0")

    # -- stepping -----------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``None``), or fill them with zeros if ``set_to_none=False``."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        with grad_mode.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = np.asarray(p.grad)
                    if g.shape != p.shape:
                        raise BpcliError(
                            f"a parameter of shape {p.shape} has a .grad of shape {g.shape}",
                            self._name,
                        )
                    if group.get("maximize", False):
                        g = -g
                    self._update(p.data, g, self.state.setdefault(p, {}), group)
                    # NOTE: re-assigning the same array bumps the tensor's version, so a graph
                    # that saved the old values refuses to backpropagate through them.
                    p.data = p.data
        return loss

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    # -- state dicts --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {"0": {...}, ...}, "param_groups": [{..., "params": [0, 1]}]}``:
        parameters are numbered in group order; arrays are copies."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            saved = {k: _plain(v) for k, v in group.items() if k != "params"}
            saved["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(saved)
        state = {}
        for p, st in self.state.items():
            if id(p) in index and st:
                state[str(index[id(p)])] = {k: _plain(v) for k, v in st.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by ``state_dict`` (same groups, same shapes)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise BpcliError(
                f"the state dict has {len(saved_groups)} param groups, this "
                f"optimizer has {len(self.param_groups)}",
                self._name,
            )
        params: dict[int, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise BpcliError(
                    f"param group {i} has {len(group['params'])} parameters, the "
                    f"state dict has {len(saved['params'])}",
                    self._name,
                )
            params.update(zip(saved["params"], group["params"], strict=True))
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, st in state_dict["state"].items():
            p = params.get(int(key))
            if p is None:
                raise BpcliError(
                    f"the state dict has state for parameter {key}, which no param group lists",
                    self._name,
                )
            new_state[p] = {k: self._load_value(p, k, v) for k, v in st.items()}
        for i, saved in enumerate(saved_groups):
            group = {k: _restore(k, v) for k, v in saved.items() if k != "params"}
            group["params"] = self.param_groups[i]["params"]
            self._check(group)
            self.param_groups[i] = group
        self.state = new_state

    def _load_value(self, p: Tensor, key: str, value):
        if isinstance(value, np.ndarray):
            if value.shape != p.shape:
                raise BpcliError(
                    f"state {key!r} has shape {value.shape}, the parameter has shape {p.shape}",
                    self._name,
                )
            return np.array(value, dtype=p.dtype, copy=True)
        return value


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _restore(key: str, value):
    # JSON has no tuples; torch keeps betas as a tuple, and so do the optimizers here.
    return tuple(value) if key == "betas" and isinstance(value, list) else value


def flatten_state(state_dict: dict[str, Any]) -> tuple[Any, dict[str, np.ndarray]]:
    """Split a state dict into a JSON-able tree and its arrays.

    Each array is replaced by ``{"__array__": key}``; keys are dotted paths
    (``"state.0.exp_avg"``), usable as ``np.savez`` names.
    """
    arrays: dict[str, np.ndarray] = {}

    def walk(node, path: str):
        if isinstance(node, np.ndarray):
            arrays[path] = node
            return {ARRAY_TAG: path}
        if isinstance(node, np.generic):
            return node.item()
        if isinstance(node, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node)]
        if node is None or isinstance(node, bool | int | float | str):
            return node
        raise BpcliError(
            f"cannot save a {type(node).__name__} at {path or 'the root'}", "state_dict"
        )

    return walk(state_dict, ""), arrays


def unflatten_state(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of ``flatten_state``."""
    if isinstance(tree, dict):
        if set(tree) == {ARRAY_TAG}:
            key = tree[ARRAY_TAG]
            if key not in arrays:
                raise BpcliError(f"array {key!r} is missing", "state_dict")
            return np.asarray(arrays[key])
        return {k: unflatten_state(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten_state(v, arrays) for v in tree]
    return tree
