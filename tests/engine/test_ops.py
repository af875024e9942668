"""Every registered op against PyTorch (float32, float64) and finite differences (float64)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcli.engine.op import OPS
from tests.engine.cases import all_cases
from tests.engine.harness import check_against_torch, check_finite_differences

torch = pytest.importorskip("torch")

CASES = all_cases()
IDS = [c.name for c in CASES]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case, dtype):
    @settings(max_examples=case.max_examples)
    @given(shapes=case.shapes, seed=st.integers(0, 2**16), transpose=st.booleans())
    def run(shapes, seed, transpose):
        check_against_torch(case, shapes, dtype, seed, transpose)

    run()


@pytest.mark.parametrize("case", [c for c in CASES if c.fd], ids=[c.name for c in CASES if c.fd])
def test_finite_differences(case):
    @settings(max_examples=max(3, case.max_examples // 3))
    @given(shapes=case.shapes, seed=st.integers(0, 2**16))
    def run(shapes, seed):
        check_finite_differences(case, shapes, seed)

    run()


def test_every_differentiable_op_has_a_gradient_case():
    covered = {c.op for c in CASES} | {n for c in CASES for n in c.covers}
    fd_covered = {c.op for c in CASES if c.fd} | {n for c in CASES if c.fd for n in c.covers}
    # Ops that installed plugins add are tested in their own packages.
    own = {n: op for n, op in OPS.items() if op.__module__.startswith("bpcli.")}
    missing = sorted(n for n, op in own.items() if op.differentiable and n not in covered)
    assert not missing, f"ops without a test case: {missing}"
    no_fd = sorted(n for n, op in own.items() if op.differentiable and n not in fd_covered)
    assert not no_fd, f"ops without a finite-difference check: {no_fd}"


def test_every_op_documents_its_formula():
    bad = sorted(n for n, op in OPS.items() if not (op.__doc__ or "").strip())
    assert not bad, f"ops without a formula docstring: {bad}"


def test_float32_stays_float32():
    import bpcli as bp

    x = bp.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = (x * 2.5 + 1) / 3 - x**2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
