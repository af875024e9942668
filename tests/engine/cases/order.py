"""Cases for engine/ops/order.py: sort/argsort/msort, kthvalue, median (with and without a dim)
and mode, on continuous values (finite differences) and on ties and nans (torch's indices)."""

import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli import functional as F
from tests.engine.cases.scan_more import gen
from tests.engine.harness import Case, one_shape


@st.composite
def pick_args(draw, min_side=0):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=min_side, max_side=5))
    n = len(shape) or 1
    return shape, draw(st.integers(-n, n - 1))


def _case(op, bp_fn, torch_fn, kind, min_side=0, **kw):
    return Case(op, lambda x, d: bp_fn(x, int(d.item())), lambda x, d: torch_fn(x, int(d.item())),
                pick_args(min_side), gen=gen(kind), diff=kw.pop("diff", (True, False)),
                fd=kind == "normal",
                id=f"{op}{kw.pop('tag', '')}[{kind}]", max_examples=10, **kw)  # fmt: skip


def _kth(x, d):  # k in the middle of the dim: the same k for bpcli and torch
    return max(1, (x.shape[d] if x.ndim else 1) // 2 + 1)


CASES = [
    *[_case("sort", lambda x, d, s=desc: F.sort(x, d, s, stable=True),
            lambda x, d, s=desc: torch.sort(x, dim=d, descending=s, stable=True), kind,
            tag=f"[descending={int(desc)}]")
      for desc in (False, True) for kind in ("normal", "ties", "nan")],
    _case("sort", lambda x, d: F.argsort(x, d, True), lambda x, d: torch.argsort(x, dim=d,
          descending=True, stable=True), "ties", tag="_argsort", diff=(False, False)),
    Case("sort", F.msort, torch.msort, one_shape(1, 3, 0, 5), id="sort_msort"),
    *[_case("kthvalue", lambda x, d, kd=kd: F.kthvalue(x, _kth(x, d), d, kd),
            lambda x, d, kd=kd: torch.kthvalue(x, _kth(x, d), d, kd), "normal", min_side=1,
            tag=f"[keepdim={int(kd)}]") for kd in (False, True)],
    *[_case("median", lambda x, d, kd=kd: F.median(x, d, kd),
            lambda x, d, kd=kd: torch.median(x, d, kd), kind, min_side=1,
            tag=f"[keepdim={int(kd)}]") for kd in (False, True) for kind in ("normal", "nan")],
    *[_case("mode", lambda x, d, kd=kd: F.mode(x, d, kd), lambda x, d, kd=kd: torch.mode(x, d, kd),
            kind, min_side=1, tag=f"[keepdim={int(kd)}]")
      for kd in (False, True) for kind in ("normal", "ties")],
    Case("median_all", F.median, torch.median, one_shape(0, 3, 1, 5), id="median_all"),
    Case("median_all", F.median, torch.median, one_shape(0, 3, 1, 5),
         gen=lambda s, d, r: gen("nan")((s[0], 0), d, r)[:1], fd=False, id="median_all[ties,nan]"),
]  # fmt: skip
