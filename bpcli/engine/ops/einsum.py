"""``einsum`` with torch's equation syntax, as one primitive whose VJP is an einsum too.

The equation is parsed once in the wrapper into letters only: spaces dropped, ``...`` spelled
out in unused letters (aligned right, as torch), the implicit output made explicit (the
ellipsis, then the letters used once, in ASCII order). As in torch, a letter or an ellipsis
dim of size 1 broadcasts against a larger one; the forward expands such dims (views) so that
numpy's einsum, which broadcasts only ellipses, sees equal sizes, and the engine sums the
gradient back down to the operand's shape.
"""

from __future__ import annotations

import math
import string

import numpy as np

from bpcli.engine.convert import lift
from bpcli.engine.op import Op
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

__all__ = ["einsum"]

LETTERS = string.ascii_uppercase + string.ascii_lowercase


def _grad_of(k: int, terms: list[str], out: str, g, xs) -> np.ndarray:
    """d<g, einsum(xs)>/d xs[k]: an einsum of g with the other operands, put on the diagonal
    where terms[k] repeats a letter and broadcast along letters summed in terms[k] alone."""
    term = terms[k]
    uniq = "".join(dict.fromkeys(term))
    others = [t for i, t in enumerate(terms) if i != k]
    seen = set(out).union(*others)
    present = "".join(c for c in uniq if c in seen)
    operands = [g] + [x for i, x in enumerate(xs) if i != k]
    res = contract([out, *others], present, operands)
    sizes = dict(zip(term, xs[k].shape, strict=True))
    if present != uniq:  # letters only terms[k] has: the gradient is constant along them
        res = res.reshape([sizes[c] if c in present else 1 for c in uniq])
        res = np.broadcast_to(res, [sizes[c] for c in uniq])
    if uniq == term:
        return np.ascontiguousarray(res)
    # a repeated letter: second and later uses get fresh letters tied by identity matrices
    free = [c for c in LETTERS if c not in set("".join(terms) + out)]
    spelled, eyes, ties, seen_here = [], [], [], set()
    for c in term:
        if c in seen_here:
            fresh = free.pop()
            ties.append(c + fresh)
            eyes.append(np.eye(sizes[c], dtype=res.dtype))
            spelled.append(fresh)
        else:
            seen_here.add(c)
            spelled.append(c)
    eq = ",".join([uniq, *ties]) + "->" + "".join(spelled)
    return np.einsum(eq, res, *eyes)


def _reduce_to(x: np.ndarray, term: str, keep: set) -> tuple[np.ndarray, str]:
    """Take the diagonals of ``term``'s repeated letters and sum the letters not in ``keep``."""
    uniq = "".join(c for c in dict.fromkeys(term) if c in keep)
    if uniq == term:
        return x, term
    return np.einsum(f"{term}->{uniq}", x), uniq


def contract(terms: list[str], out: str, xs) -> np.ndarray:
    """``einsum(terms -> out)`` as torch computes it: operands contracted left to right in
    pairs, each pair one (batched) matrix product, so BLAS does the work (numpy's own einsum
    does not use it for a pair that shares a kept letter, e.g. a batch dim)."""
    rest = [set(t) for t in terms]
    keep_after = [set(out).union(*rest[i + 1 :]) for i in range(len(terms))]
    a, ta = _reduce_to(xs[0], terms[0], keep_after[0] | (rest[1] if len(terms) > 1 else set()))
    for i in range(1, len(terms)):
        keep = keep_after[i]
        b, tb = _reduce_to(xs[i], terms[i], keep | set(ta))
        a, ta = _reduce_to(a, ta, keep | set(tb))
        a, ta = _pair(a, ta, b, tb, keep)
    a, ta = _reduce_to(a, ta, set(out))
    return np.transpose(a, [ta.index(c) for c in out]) if ta != out else a


def _pair(a, ta: str, b, tb: str, keep: set) -> tuple[np.ndarray, str]:
    """The product of two operands with unique letters, summing the shared letters that are
    not in ``keep``: a (batch, free_a, summed) @ b (batch, summed, free_b)."""
    batch = [c for c in ta if c in tb and c in keep]
    summed = [c for c in ta if c in tb and c not in keep]
    fa, fb = [c for c in ta if c not in tb], [c for c in tb if c not in ta]
    size = dict(zip(ta, a.shape)) | dict(zip(tb, b.shape))
    n = [math.prod(size[c] for c in cs) for cs in (batch, fa, summed, fb)]
    a2 = np.transpose(a, [ta.index(c) for c in batch + fa + summed]).reshape(n[0], n[1], n[2])
    b2 = np.transpose(b, [tb.index(c) for c in batch + summed + fb]).reshape(n[0], n[2], n[3])
    y = a2[0] @ b2[0] if n[0] == 1 else np.matmul(a2, b2)  # one GEMM when there is no batch
    return y.reshape([size[c] for c in batch + fa + fb]), "".join(batch + fa + fb)


class Einsum(Op):
    """y = einsum(eq, *xs); dxs[k] = einsum(g with xs[j != k]) onto xs[k]'s subscripts"""

    name, onnx = "einsum", "Einsum"

    def forward(self, *xs, equation, terms, out):
        shapes = [x.shape for x in xs]
        sizes = {}
        for t, s in zip(terms, shapes, strict=True):
            for c, n in zip(t, s, strict=True):
                sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]
        # size-1 dims broadcast (torch's rule); numpy's einsum needs equal sizes
        xs = [
            x
            if all(n == sizes[c] for c, n in zip(t, x.shape, strict=True))
            else np.broadcast_to(x, [sizes[c] for c in t])
            for t, x in zip(terms, xs, strict=True)
        ]
        self.xs = xs
        return np.asarray(contract(terms, out, xs))

    def backward(self, g):
        terms, out = self.attrs["terms"], self.attrs["out"]
        return tuple(_grad_of(k, terms, out, g, self.xs) if need else None
                     for k, need in enumerate(self.needs))  # fmt: skip


def _split(equation: str, n: int) -> tuple[list[str], str | None]:
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != n:
        raise BpcliError(
            f"equation {equation!r} has {len(terms)} operand(s) but {n} tensor(s) were given",
            "einsum",
        )
    for t in [*terms, rhs]:
        rest = t.replace("...", "", 1)
        bad = [c for c in rest if c not in LETTERS]
        if bad or "..." in rest or (t != rest and t.count(".") != 3):
            raise BpcliError(f"invalid subscript {t!r} in {equation!r}: use letters and one "
                             "'...' per operand", "einsum")  # fmt: skip
    return terms, (rhs if arrow else None)


def _spell_out(equation: str, xs: list[Tensor]) -> tuple[list[str], str]:
    """Letters-only terms and output of ``equation`` for the operands' ranks."""
    terms, rhs = _split(equation, len(xs))
    used = set("".join(terms) + (rhs or ""))
    free = [c for c in LETTERS if c not in used]
    n_ell = 0
    for i, (t, x) in enumerate(zip(terms, xs, strict=True)):
        named = len(t.replace("...", ""))
        if ("..." not in t and named != x.ndim) or named > x.ndim:
            raise BpcliError(
                f"operand {i} has {x.ndim} dims but subscript {t!r} names {named}", "einsum"
            )
        if "..." in t:
            n_ell = max(n_ell, x.ndim - named)
    ell = "".join(free[:n_ell])
    spelled = [t.replace("...", ell[n_ell - (x.ndim - len(t) + 3):] if n_ell else "")
               if "..." in t else t for t, x in zip(terms, xs, strict=True)]  # fmt: skip
    if rhs is None:
        named = "".join(t.replace("...", "") for t in terms)
        out = ell + "".join(sorted(c for c in set(named) if named.count(c) == 1))
    else:
        out = rhs.replace("...", ell)
        for c in out:
            if out.count(c) > 1:
                raise BpcliError(f"output subscript {c} appears more than once", "einsum")
            if c not in "".join(spelled):
                raise BpcliError(f"output subscript {c} does not appear in the inputs", "einsum")
    return spelled, out


def _check_sizes(terms: list[str], xs: list[Tensor]) -> None:
    sizes: dict[str, int] = {}
    for i, (t, x) in enumerate(zip(terms, xs, strict=True)):
        for c, n in zip(t, x.shape, strict=True):
            if c in sizes and n != sizes[c] and 1 not in (n, sizes[c]):
                raise BpcliError(f"subscript {c} has size {n} for operand {i} which does not "
                                 f"broadcast with previously seen size {sizes[c]}",
                                 "einsum")  # fmt: skip
            if sizes.get(c, 1) == 1:
                sizes[c] = n
        for c in set(t):  # a repeated letter within one operand takes a diagonal
            dims = {x.shape[j] for j, d in enumerate(t) if d == c}
            if len(dims) > 1:
                raise BpcliError(f"subscript {c} is repeated for operand {i} but the sizes "
                                 f"{sorted(dims)} differ", "einsum")  # fmt: skip


def einsum(equation: str, *operands) -> Tensor:
    """Sum of products over the subscripts of ``equation`` (``torch.einsum``).

    Accepts torch's syntax: spaces, one ``...`` per operand, an implicit output (``'ij,jk'``),
    operands given one by one or as one list. All operands must share one dtype, as in torch.
    """
    if not isinstance(equation, str):
        raise BpcliError("the first argument must be the equation string (the sublist "
                         "form einsum(x, [0, 1], ...) is not supported)", "einsum")  # fmt: skip
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if not operands:
        raise BpcliError("needs at least one operand", "einsum")
    xs = [lift(x) for x in operands]
    dts = {x.dtype for x in xs}
    if len(dts) > 1:
        raise BpcliError(f"operands of different dtypes {sorted(map(str, dts))}: cast them to "
                         "one dtype first (as torch)", "einsum")  # fmt: skip
    terms, out = _spell_out(equation, xs)
    _check_sizes(terms, xs)
    # equation: the explicit letters-only form, which the ONNX exporter writes as it is
    return Einsum.apply(*xs, equation=",".join(terms) + "->" + out, terms=terms, out=out)
