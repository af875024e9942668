"""Float64 central finite differences against the engine's gradients.

Checks the VJP of a random cotangent: for L(x) = sum(f(x) * R), <dL/dx, v> must equal
(L(x + eps v) - L(x - eps v)) / (2 eps) for random directions v, and for every coordinate
of small inputs (the full Jacobian-vector product).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bpcli.engine import grad_mode
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError


@dataclass
class GradcheckResult:
    """Worst errors found, per input, and whether every check passed."""

    passed: bool
    max_abs_error: list[float] = field(default_factory=list)
    max_rel_error: list[float] = field(default_factory=list)
    checks: int = 0


def _outputs(fn, inputs) -> tuple[Tensor, ...]:
    out = fn(*inputs)
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-7,
    rtol: float = 1e-5,
    directions: int = 4,
    full_below: int = 32,
    seed: int = 0,
    raise_on_fail: bool = False,
) -> GradcheckResult:
    """Compare the gradients of ``fn`` at ``inputs`` with central finite differences.

    Args:
        fn: maps the input tensors to a tensor (or tuple of tensors).
        inputs: float64 tensors; those with ``requires_grad`` are checked.
        eps: finite-difference step.
        atol, rtol: a check passes when |numeric - analytic| <= atol + rtol * max(1, |both|).
        directions: random directions per input.
        full_below: inputs with at most this many elements are also checked per coordinate.
        seed: seeds the cotangent and the directions.
        raise_on_fail: raise a BpcliError naming the input instead of returning a failure.
    """
    for i, t in enumerate(inputs):
        if t.requires_grad and t.dtype != np.float64:
            raise BpcliError(
                f"input {i} is {t.dtype}; finite differences need float64", "gradcheck"
            )
    rng = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    cot = [rng.standard_normal(o.shape) if o.requires_grad else None for o in outs]
    for t in inputs:
        t.grad = None
    total = None
    for o, r in zip(outs, cot):
        if r is not None:
            term = (o * Tensor(r)).sum()
            total = term if total is None else total + term
    if total is None:
        raise BpcliError("no output depends on an input that requires grad", "gradcheck")
    total.backward()

    def loss(arrays) -> float:
        with grad_mode.no_grad():
            o = _outputs(fn, [Tensor(a) for a in arrays])
        return float(sum((x.data * r).sum() for x, r in zip(o, cot) if r is not None))

    base = [t.data.copy() for t in inputs]
    result = GradcheckResult(passed=True)
    for k, t in enumerate(inputs):
        if not t.requires_grad:
            continue
        grad = t.grad if t.grad is not None else np.zeros_like(base[k])
        vs = [rng.standard_normal(t.shape) for _ in range(directions)]
        if t.numel() <= full_below:
            vs += [np.eye(t.numel())[i].reshape(t.shape) for i in range(t.numel())]
        worst_abs = worst_rel = 0.0
        for v in vs:
            plus = [a + eps * v if i == k else a for i, a in enumerate(base)]
            minus = [a - eps * v if i == k else a for i, a in enumerate(base)]
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            analytic = float((grad * v).sum())
            err = abs(numeric - analytic)
            scale = max(1.0, abs(numeric), abs(analytic))
            worst_abs, worst_rel = max(worst_abs, err), max(worst_rel, err / scale)
            result.checks += 1
            if err > atol + rtol * scale:
                result.passed = False
                if raise_on_fail:
                    raise BpcliError(
                        f"input {k} of shape {t.shape}: finite difference {numeric:.8g} "
                        f"!= gradient {analytic:.8g}",
                        "gradcheck",
                    )
        result.max_abs_error.append(worst_abs)
        result.max_rel_error.append(worst_rel)
    return result
