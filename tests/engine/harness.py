"""The op-test harness: each op case is checked against PyTorch and finite differences.

A ``Case`` says how to call one op in bpcli and in torch, which input shapes to draw, how to
fill the inputs and how close the results must be. ``tests/engine/test_ops.py`` runs every
case in ``tests/engine/cases/*.py`` (the ``CASES`` list of each module) and fails when an op of
the registry has no case.

For each drawn example:
  * forward outputs equal torch's (float32 and float64, tolerances per case);
  * the VJP of a random cotangent R equals torch's for every differentiable input;
  * in float64, <grad, v> equals the central difference (f(x+eps v) - f(x-eps v)) / 2 eps of
    L(x) = sum(out * R) for random directions v (and for every element of small inputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bpcli as bp

Arrays = list[np.ndarray]


@dataclass
class Case:
    op: str  # the registry name this case covers
    bp: Callable  # (*bp tensors) -> Tensor or tuple of Tensors
    torch: Callable  # (*torch tensors) -> torch.Tensor or tuple
    shapes: st.SearchStrategy  # draws a tuple with one shape per input
    gen: Callable[[tuple, np.dtype, np.random.Generator], Arrays] | None = None
    diff: tuple[bool, ...] | None = None  # which inputs get a gradient (default: float ones)
    tol32: tuple[float, float] = (1e-4, 1e-5)  # (rtol, atol) against torch in float32
    tol64: tuple[float, float] = (1e-9, 1e-11)  # (rtol, atol) against torch in float64
    fd: bool = True
    fd_tol: tuple[float, float] = (1e-5, 1e-7)  # (rtol, atol) of the finite-difference check
    fd_eps: float = 1e-6
    noncontig: bool = True  # also try transposed (non-contiguous) input arrays
    covers: tuple[str, ...] = ()  # further registry names this case exercises
    id: str = ""
    max_examples: int = 12
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.id or self.op


# -- shape strategies ----------------------------------------------------------------------


def broadcast_shapes(
    n: int, min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5
):
    """n mutually broadcastable shapes (size-1 dims, 0-d and, with min_side=0, empty dims)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda r: r.input_shapes)


def one_shape(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda s: (s,))


def fixed(*shapes: tuple) -> st.SearchStrategy:
    """Always the same input shapes (for ops whose shapes are tied, e.g. conv)."""
    return st.just(tuple(shapes))


# -- input generators ----------------------------------------------------------------------


def normal(shapes, dtype, rng) -> Arrays:
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def positive(lo: float = 0.5, hi: float = 2.0):
    def gen(shapes, dtype, rng):
        return [rng.uniform(lo, hi, s).astype(dtype) for s in shapes]

    return gen


def away_from(points=(0.0,), margin: float = 0.05):
    """Normal inputs nudged away from kinks (relu/abs at 0), where finite differences lie."""

    def gen(shapes, dtype, rng):
        out = []
        for s in shapes:
            x = rng.standard_normal(s)
            for p in points:
                close = np.abs(x - p) < margin
                x = np.where(close, p + np.sign(x - p + 1e-12) * margin * 2, x)
            out.append(x.astype(dtype))
        return out

    return gen


# -- running one example --------------------------------------------------------------------


def _noncontig(a: np.ndarray) -> np.ndarray:
    """The same values as a transposed (non-contiguous) view."""
    if a.ndim < 2:
        return a
    return np.array(a.T, order="C").T


def _as_tuple(x):
    return x if isinstance(x, tuple | list) else (x,)


def _diff_mask(case: Case, arrays: Arrays) -> tuple[bool, ...]:
    if case.diff is not None:
        return case.diff
    return tuple(a.dtype.kind == "f" for a in arrays)


def run_bp(case: Case, arrays: Arrays, cotangents: Arrays | None, diff):
    ins = [bp.tensor(a, requires_grad=d) for a, d in zip(arrays, diff)]
    outs = _as_tuple(case.bp(*ins))
    if cotangents is None:
        return [o.numpy() for o in outs], None
    total = None
    for o, r in zip(outs, cotangents):
        if not o.requires_grad:
            continue
        term = (o * bp.tensor(r)).sum()
        total = term if total is None else total + term
    if total is not None:
        total.backward()
    grads = [t.grad if d else None for t, d in zip(ins, diff)]
    return [o.numpy() for o in outs], grads


def run_torch(case: Case, arrays: Arrays, cotangents: Arrays, diff):
    import torch

    ins = [
        torch.tensor(np.array(a, order="C"), requires_grad=bool(d)) for a, d in zip(arrays, diff)
    ]
    outs = _as_tuple(case.torch(*ins))
    total = None
    for o, r in zip(outs, cotangents):
        if not o.requires_grad:
            continue
        term = (o * torch.tensor(r)).sum()
        total = term if total is None else total + term
    if total is not None:
        total.backward()
    grads = []
    for t, d in zip(ins, diff):
        if not d:
            grads.append(None)
        else:
            grads.append(
                t.grad.numpy() if t.grad is not None else np.zeros(t.shape, t.numpy().dtype)
            )
    return [o.detach().numpy() for o in outs], grads


def make_inputs(case: Case, shapes, dtype, seed: int, transpose: bool) -> Arrays:
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a) for a in (case.gen or normal)(shapes, np.dtype(dtype), rng)]
    if transpose and case.noncontig:
        arrays = [_noncontig(a) if a.dtype.kind == "f" else a for a in arrays]
    return arrays


def cotangents_for(outs: Arrays, seed: int) -> Arrays:
    rng = np.random.default_rng(seed + 7919)
    return [
        rng.standard_normal(o.shape).astype(o.dtype) if o.dtype.kind == "f" else None for o in outs
    ]


def assert_close(name: str, got, want, rtol: float, atol: float) -> None:
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != torch's {want.shape}"
    if want.dtype.kind == "f":
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != torch's {want.dtype}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name, equal_nan=True)


def check_against_torch(case: Case, shapes, dtype, seed: int, transpose: bool) -> None:
    arrays = make_inputs(case, shapes, dtype, seed, transpose)
    diff = _diff_mask(case, arrays)
    outs, _ = run_bp(case, arrays, None, diff)
    cot = cotangents_for(outs, seed)
    outs, grads = run_bp(case, arrays, cot, diff)
    t_outs, t_grads = run_torch(case, arrays, cot, diff)
    rtol, atol = case.tol32 if np.dtype(dtype) == np.float32 else case.tol64
    for k, (o, t) in enumerate(zip(outs, t_outs)):
        assert_close(f"{case.name} output {k}", o, t, rtol, atol)
    for k, (g, t) in enumerate(zip(grads, t_grads)):
        if g is None and t is None:
            continue
        assert g is not None, f"{case.name}: no gradient for input {k}"
        assert_close(f"{case.name} grad of input {k}", g, t, rtol, atol)


def check_finite_differences(case: Case, shapes, seed: int) -> None:
    arrays = make_inputs(case, shapes, np.float64, seed, transpose=False)
    diff = _diff_mask(case, arrays)
    outs, _ = run_bp(case, arrays, None, diff)
    cot = cotangents_for(outs, seed)
    _, grads = run_bp(case, arrays, cot, diff)

    def loss(arrs) -> float:
        with bp.no_grad():
            o = _as_tuple(case.bp(*[bp.tensor(a) for a in arrs]))
        return float(sum((x.numpy() * r).sum() for x, r in zip(o, cot) if r is not None))

    rng = np.random.default_rng(seed + 1)
    eps = case.fd_eps
    rtol, atol = case.fd_tol
    for k, (a, d) in enumerate(zip(arrays, diff)):
        if not d or a.size == 0:
            continue
        directions = [rng.standard_normal(a.shape) for _ in range(3)]
        if a.size <= 24:
            directions += [np.eye(a.size)[i].reshape(a.shape) for i in range(a.size)]
        for v in directions:
            plus = [x + eps * v if i == k else x for i, x in enumerate(arrays)]
            minus = [x - eps * v if i == k else x for i, x in enumerate(arrays)]
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            analytic = float((grads[k] * v).sum())
            scale = max(1.0, abs(numeric), abs(analytic))
            assert abs(numeric - analytic) <= atol + rtol * scale, (
                f"{case.name}: input {k}: finite difference {numeric:.10g} "
                f"!= gradient {analytic:.10g}"
            )
