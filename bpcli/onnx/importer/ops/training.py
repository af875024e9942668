"""Import of the ``ai.onnx.preview.training`` ops (opset 1, the only one): the optimizer steps
Adagrad, Adam and Momentum (standard and Nesterov), and Gradient.

The optimizer steps are computed in numpy (float64, each result rounded once to its input's
type): they update weights, they are not part of a loss, so their outputs carry no gradient.
Each takes ``R`` (learning rate), ``T`` (update count), then n tensors ``X``, their gradients
``G`` and their state tensors (``H``; ``V``; ``V`` and ``H``), grouped by kind; the outputs
are the n new ``X`` then the new states, by kind.

Gradient computes dy/dx for the ``xs`` named by its attributes with the engine itself: the
nodes of its graph that lead from ``xs`` and ``zs`` to ``y`` are run again on fresh leaf
tensors holding the Gradient's inputs (every other value read from the scope, detached), then
``y.backward()`` fills the leaves' ``.grad``. Gradients are first order, so a Gradient of a
Gradient's output (a second derivative) is refused rather than answered with zeros.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping

import numpy as np

from bpcli.engine.grad_mode import enable_grad
from bpcli.engine.tensor import Tensor
from bpcli.onnx.importer.graph import Subgraph, needs, run_nodes, subgraphs_of
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.table import Context, NodeView, register, scalar, wrap

DOMAIN = "ai.onnx.preview.training"

# -- optimizer steps ----------------------------------------------------------------------------


def _step_inputs(ctx, node: NodeView, inputs, kinds: int):
    """``r``, ``t`` and ``kinds`` lists of n float64 arrays (X, G, then the states)."""
    if len(inputs) < 2 + kinds or (len(inputs) - 2) % kinds:
        raise node.fail(f"expected R, T and {kinds} inputs per optimized tensor, "
                        f"got {len(inputs)} inputs")  # fmt: skip
    if any(t is None for t in inputs):
        raise node.fail("no input of an optimizer step is optional")
    for what, t in (("R", inputs[0]), ("T", inputs[1])):
        if t.numel() != 1:
            raise node.fail(f"{what} must be a scalar, got shape {t.shape}")
    if grad(*inputs):
        ctx.module._note_nograd(node)  # an optimizer step is not differentiated through
    n = (len(inputs) - 2) // kinds
    groups = [[t.data.astype(np.float64) for t in inputs[2 + k * n : 2 + (k + 1) * n]]
              for k in range(kinds)]  # fmt: skip
    dtypes = [[t.dtype for t in inputs[2 + k * n : 2 + (k + 1) * n]] for k in range(kinds)]
    return float(scalar(inputs[0])), int(scalar(inputs[1])), groups, dtypes


def _outputs(groups: list[list[np.ndarray]], dtypes) -> tuple:
    return tuple(wrap(a.astype(d)) for g, ds in zip(groups, dtypes) for a, d in zip(g, ds))


@register("Adagrad", domain=DOMAIN)
def adagrad(ctx, node: NodeView, inputs):
    """r = R / (1 + T decay); g = norm X + G; H' = H + g^2; X' = X - r g / (sqrt(H') + eps)"""
    r, t, (xs, gs, hs), dtypes = _step_inputs(ctx, node, inputs, 3)
    norm, eps = node.attr("norm_coefficient", 0.0), node.attr("epsilon", 1e-6)
    r = r / (1 + t * node.attr("decay_factor", 0.0))
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs):
        g = norm * x + g
        h = h + g * g
        new_x.append(x - r * g / (np.sqrt(h) + eps))
        new_h.append(h)
    return _outputs([new_x, new_h], [dtypes[0], dtypes[2]])


@register("Adam", domain=DOMAIN)
def adam(ctx, node: NodeView, inputs):
    """g = norm X + G; V' = a V + (1-a) g; H' = b H + (1-b) g^2;
    X' = (1 - norm_post) (X - R sqrt(1-b^T)/(1-a^T) V' / (sqrt(H') + eps)), no correction at T=0
    """
    r, t, (xs, gs, vs, hs), dtypes = _step_inputs(ctx, node, inputs, 4)
    a, b = node.attr("alpha", 0.9), node.attr("beta", 0.999)
    norm, post = node.attr("norm_coefficient", 0.0), node.attr("norm_coefficient_post", 0.0)
    eps = node.attr("epsilon", 1e-6)
    if t > 0:  # bias correction of both moments, folded into the learning rate
        r = r * np.sqrt(1 - b**t) / (1 - a**t)
    new_x, new_v, new_h = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs):
        g = norm * x + g
        v = a * v + (1 - a) * g
        h = b * h + (1 - b) * g * g
        new_x.append((1 - post) * (x - r * v / (np.sqrt(h) + eps)))
        new_v.append(v)
        new_h.append(h)
    return _outputs([new_x, new_v, new_h], [dtypes[0], dtypes[2], dtypes[3]])


def _momentum_mode(node: NodeView) -> str | None:
    mode = node.attr("mode")
    if mode not in ("standard", "nesterov"):
        return f"mode {mode!r} is not 'standard' or 'nesterov'"
    for key in ("alpha", "beta", "norm_coefficient"):  # required: the schema has no defaults
        if node.attr(key) is None:
            return f"the required attribute {key} is missing"
    return None


@register("Momentum", domain=DOMAIN, check=_momentum_mode)
def momentum(ctx, node: NodeView, inputs):
    """g = norm X + G; V' = a V + (T > 0 ? b : 1) g;
    X' = X - R V' (standard) or X - R (g + a V') (nesterov)"""
    r, t, (xs, gs, vs), dtypes = _step_inputs(ctx, node, inputs, 3)
    a, b, norm = node.attr("alpha"), node.attr("beta"), node.attr("norm_coefficient")
    b = b if t > 0 else 1.0  # the first step takes the whole gradient
    nesterov = node.attr("mode") == "nesterov"
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs):
        g = norm * x + g
        v = a * v + b * g
        new_x.append(x - r * (g + a * v if nesterov else v))
        new_v.append(v)
    return _outputs([new_x, new_v], [dtypes[0], dtypes[2]])


# -- Gradient -----------------------------------------------------------------------------------

RANDOM_OPS = {"RandomUniformLike", "RandomNormalLike", "Bernoulli", "Multinomial"}


def _gradient_attrs(node: NodeView) -> str | None:
    if not node.attr("xs") or not node.attr("y"):
        return "the attributes xs and y are required"
    return None


def _home(module, node: NodeView) -> tuple[list[NodeView], Subgraph | None]:
    """The sorted nodes of the graph that holds ``node`` and that graph (None: the main one)."""
    stack: list[tuple[list[NodeView], Subgraph | None]] = [(module._nodes, None)]
    while stack:
        nodes, sub = stack.pop()
        if any(v is node for v in nodes):
            return nodes, sub
        stack += [(s.nodes, s) for v in nodes for s in subgraphs_of(v)]
    raise node.fail("the node is in none of the model's graphs")


def _plan(ctx, node: NodeView) -> list[tuple[NodeView, bool]]:
    """The nodes ``y`` is computed by, back to ``xs`` and ``zs``, in run order, each with
    whether it depends on them (then it must run again; else its value may be reused)."""
    nodes, sub = _home(ctx.module, node)
    xs, zs, y = node.attr("xs"), node.attr("zs") or [], node.attr("y")
    leaves = set(xs) | set(zs)
    if sub is not None:
        own = set(sub.inputs) | set(sub.consts) | {o for v in sub.views for o in v.outputs}
        outer = sorted(leaves - own)
        if outer:  # the path to y could pass through the enclosing graph's nodes
            raise node.fail(f"xs/zs name values of an enclosing graph: {', '.join(outer)}")
    producer = {o: v for v in nodes for o in v.outputs if o}
    needed, todo = set(), [y]
    while todo:
        name = todo.pop()
        v = producer.get(name)
        if name in leaves or v is None or id(v) in needed:
            continue
        needed.add(id(v))
        todo += needs(v)
    if id(node) in needed:
        raise node.fail(f"y ({y}) depends on this Gradient's own outputs")
    plan, moved = [], set(leaves)
    for v in nodes:
        if id(v) not in needed:
            continue
        clash = sorted(leaves & set(v.outputs))
        if clash:  # running it again would overwrite the values the Gradient was given
            raise node.fail(f"xs/zs value {clash[0]} comes from a node y also needs another "
                            "output of")  # fmt: skip
        dep = any(n in moved for n in needs(v))
        if dep:
            moved.update(v.outputs)
            if v.domain == DOMAIN and v.op_type == "Gradient":
                raise node.fail(f"y ({y}) depends on xs through the Gradient node "
                                f"{v.name or '#' + str(v.index)}: second derivatives are not "
                                "supported (the engine's gradients are first order)")  # fmt: skip
        plan.append((v, dep))
    return plan


class _Detached(Mapping):
    """A read-only view of a scope whose tensors are detached, so that ``backward`` on the
    re-run stops at them (weights not in xs get no ``.grad`` from a Gradient node)."""

    def __init__(self, scope):
        self.scope = scope

    def __getitem__(self, name):
        v = self.scope[name]
        if isinstance(v, Tensor) and v.requires_grad:
            return v.detach()
        if isinstance(v, list):
            return [t.detach() if isinstance(t, Tensor) else t for t in v]
        return v

    def __contains__(self, name) -> bool:
        return name in self.scope

    def __iter__(self):
        return iter(self.scope)

    def __len__(self) -> int:
        return len(self.scope)


class _NoSideEffects:
    """The module as the re-run sees it: a node run again must not update buffers twice
    (BatchNormalization's running statistics in training mode)."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def _update_buffer(self, name: str, value) -> None:
        pass


def _random(ctx, v: NodeView, env) -> bool:
    """Whether running ``v`` again would draw new random numbers (unlike the first run)."""
    if v.op_type in RANDOM_OPS:
        return True
    if v.op_type != "Dropout":
        return False
    if v.opset < 12:
        return ctx.training and v.attr("ratio", 0.5) > 0
    get = [env[n] if n and n in env else None for n in v.inputs]
    ratio = scalar(get[1] if len(get) > 1 else None, 0.5)
    train = bool(scalar(get[2] if len(get) > 2 else None, False))
    return (ctx.training or train) and ratio > 0


def _leaf(t, name: str, node: NodeView) -> Tensor:
    if not isinstance(t, Tensor) or t.dtype.kind != "f":
        what = type(t).__name__ if not isinstance(t, Tensor) else t.dtype
        raise node.fail(f"xs value {name} must be a float tensor, got {what}")
    return Tensor(t.data, requires_grad=True)


@register("Gradient", domain=DOMAIN, check=_gradient_attrs)
def gradient(ctx, node: NodeView, inputs):
    """dy/dx for each x in xs, at the Gradient's inputs (xs then zs): the path to y run again."""
    xs, zs, y = node.attr("xs"), node.attr("zs") or [], node.attr("y")
    if len(inputs) != len(xs) + len(zs):
        raise node.fail(f"expected {len(xs) + len(zs)} inputs (xs then zs), got {len(inputs)}")
    if set(xs) & set(zs):
        raise node.fail(f"xs and zs share names: {', '.join(sorted(set(xs) & set(zs)))}")
    if "plan" not in node.state:
        node.state["plan"] = _plan(ctx, node)
    if grad(*inputs):
        ctx.module._note_nograd(node)  # first order: the gradients are constants
    local = {name: _leaf(t, name, node) for name, t in zip(xs, inputs)}
    local.update(_Detached(dict(zip(zs, inputs[len(xs) :]))))
    env = ChainMap(local, _Detached(ctx.scope))
    rerun = Context(_NoSideEffects(ctx.module), ctx.training)
    todo = []
    for v, dep in node.state["plan"]:
        if not dep and all(not o or o in env for o in v.outputs):
            continue  # independent of xs and zs and computed already: reuse its values
        if dep and _random(ctx, v, env):
            raise node.fail(f"y ({y}) depends on xs through the random node "
                            f"{v.name or '#' + str(v.index)} ({v.op_type}): running it again "
                            "would draw other values than the forward pass")  # fmt: skip
        todo.append(v)
    with enable_grad():
        run_nodes(rerun, todo, env)
        out = env.get(y)
        if not isinstance(out, Tensor):
            raise node.fail(f"y ({y}) names no tensor of the graph")
        if out.numel() != 1:
            raise node.fail(f"y ({y}) must hold one value, got shape {out.shape}")
        if out.requires_grad:
            out.backward()
    grads = [local[name].grad for name in xs]
    return tuple(wrap(np.zeros_like(local[n].data) if g is None else g) for n, g in zip(xs, grads))
