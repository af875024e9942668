"""Cases for engine/ops/linalg.py."""

import torch
import torch.nn.functional as TF
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcli import functional as F
from tests.engine.harness import Case


@st.composite
def matmul_shapes(draw):
    m, k, n = (draw(st.integers(0 if i != 1 else 1, 4)) for i in range(3))
    batch_a, batch_b = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)
    ).input_shapes
    kind = draw(st.sampled_from(["mm", "vec_a", "vec_b", "vec_both", "weight", "weight_t"]))
    a, b = (*batch_a, m, k), (*batch_b, k, n)
    if kind == "vec_a":
        a = (k,)
    elif kind == "vec_b":
        b = (k,)
    elif kind == "vec_both":
        a, b = (k,), (k,)
    elif kind == "weight":
        b = (k, n)
    elif kind == "weight_t":
        a = (m, k)
    return a, b


@st.composite
def linear_shapes(draw, bias=True):
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    i, o = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return ((*lead, i), (o, i)) + (((o,),) if bias else ())


CASES = [
    Case("matmul", F.matmul, torch.matmul, matmul_shapes(), max_examples=30),
    Case("matmul", lambda a, b: a @ b, lambda a, b: a @ b, matmul_shapes(), id="matmul_operator"),
    Case("linear", F.linear, TF.linear, linear_shapes()),
    Case("linear", F.linear, TF.linear, linear_shapes(bias=False), id="linear_no_bias"),
    Case(
        "linear",
        lambda x, w: F.linear(x, w[:, 1:]),
        lambda x, w: TF.linear(x, w[:, 1:]),
        st.just(((2, 3), (4, 4))),
        id="linear_strided_weight",
    ),
]
