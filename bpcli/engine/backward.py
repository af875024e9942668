"""The backward walk: reverse topological order, each node's VJP run exactly once.

Iterative (no recursion), so a 100,000-op chain, such as a long truncated-BPTT window, walks
as well as a short one. Gradients flowing into one tensor from several consumers are summed
before its node runs, so every intermediate gradient is computed once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bpcli.errors import BpcliError

if TYPE_CHECKING:  # NOTE: only for annotations: tensor.py imports this module to run backward()
    from bpcli.engine.op import Op
    from bpcli.engine.tensor import Tensor


def topo_order(root: Op) -> list[Op]:
    """Nodes reachable from ``root``, every node after all the nodes that consume it."""
    order: list[Op] = []
    seen: set[int] = set()
    stack: list[tuple[Op, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node.freed:
            raise BpcliError(
                "backward through a graph that was already freed by an earlier backward(); "
                "pass retain_graph=True to the first call to walk it twice",
                "backward",
            )
        for p_op, _ in node.edges:
            if p_op is not None and id(p_op) not in seen:
                stack.append((p_op, False))
    order.reverse()
    return order


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape``: the backward of numpy broadcasting, in one place."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _seed(root: Tensor, grad) -> np.ndarray:
    if grad is None:
        if root._data.size != 1:
            raise BpcliError(
                f"backward() of a non-scalar tensor of shape {root.shape} needs a gradient "
                "argument of the same shape (or reduce it with .sum() / .mean() first)",
                "backward",
            )
        return np.ones(root.shape, dtype=root.dtype)
    g = np.array(grad, dtype=root.dtype)  # a Tensor gradient arrives as its array
    if g.shape != root.shape:
        raise BpcliError(
            f"gradient of shape {g.shape} for a tensor of shape {root.shape}", "backward"
        )
    return g


def run_backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    if not root._requires_grad:
        raise BpcliError(
            "tensor does not require grad and has no graph: set requires_grad=True on a leaf it "
            "depends on, and do not build it under no_grad()",
            "backward",
        )
    g = _seed(root, grad)
    if root._op is None:
        _accumulate_leaves({id(root): (root, g)})
        return
    order = topo_order(root._op)  # raises first if the graph was freed
    root._op.out_grads[root._idx] = g
    leaves: dict[int, tuple[Tensor, np.ndarray]] = {}
    for node in order:
        grads = node.out_grads
        if all(x is None for x in grads):
            continue  # reached only through outputs that got no gradient
        grads = _complete(node, grads)
        _check_versions(node)
        in_grads = node.backward(*grads)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for p, (p_op, p_idx), need, gi in zip(node.parents, node.edges, node.needs, in_grads):
            if not need or gi is None:
                continue
            gi = unbroadcast(gi, p._data.shape)
            if gi.dtype != p._data.dtype:
                gi = gi.astype(p._data.dtype)
            if p_op is None:
                prev = leaves.get(id(p))
                leaves[id(p)] = (p, gi if prev is None else prev[1] + gi)
            else:
                slot = p_op.out_grads
                slot[p_idx] = gi if slot[p_idx] is None else slot[p_idx] + gi
        if retain_graph:
            node.out_grads = [None] * len(node.out_grads)
        else:
            node.release()
    _accumulate_leaves(leaves)


def _complete(node: Op, grads: list) -> list:
    """Zeros for outputs that got no gradient, then hooks and retained grads per output."""
    out = list(grads)
    for i, g in enumerate(out):
        if g is None:
            shape, dtype = node.out_meta[i]
            out[i] = np.zeros(shape, dtype=dtype)
    if node.hooks:
        for i, hooks in node.hooks.items():
            for h in hooks:
                r = h(out[i])
                if r is not None:
                    out[i] = np.asarray(r, dtype=out[i].dtype)
    if node.retained:
        for i, ref in node.retained.items():
            t = ref()
            if t is not None:
                t.grad = out[i] if t.grad is None else t.grad + out[i]
    return out


def _check_versions(node: Op) -> None:
    if not node.saves_inputs:
        return
    for j, (p, v) in enumerate(zip(node.parents, node.versions)):
        if p._version != v:
            if node.reads_others_only and not any(n for i, n in enumerate(node.needs) if i != j):
                continue  # no gradient reads this input's saved value (y * 2, then y.mul_)
            raise BpcliError(
                f"an input of shape {p.shape} was changed in place after the forward pass "
                "saved it; its gradient would be wrong (clone it before changing it)",
                node.name,
            )


def _accumulate_leaves(leaves: dict[int, tuple[Tensor, np.ndarray]]) -> None:
    handed: set[int] = set()
    for leaf, g in leaves.values():
        if leaf._hooks:
            for h in leaf._hooks:
                r = h(g)
                if r is not None:
                    g = np.asarray(r, dtype=leaf.dtype)
        if leaf.grad is None:
            # NOTE: own the array: a view or an array handed to another leaf would let an
            # in-place update of one .grad (clipping, accumulation) change another.
            if g.base is not None or not g.flags.writeable or id(g) in handed:
                g = g.copy()
            handed.add(id(g))
            leaf.grad = g
        else:
            if leaf.grad.shape != g.shape:
                raise BpcliError(
                    f".grad has shape {leaf.grad.shape} but the gradient has shape {g.shape}",
                    "backward",
                )
            leaf.grad += g
