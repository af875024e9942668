"""onnx's backend conformance suite against bpcli.onnx.backend: the node tests of the tier ops
(fast), and the whole suite (slow). Failures listed in conformance_xfail.txt are expected."""

from __future__ import annotations

import re

import numpy as np
import onnx.backend.test
import pytest
from onnx import helper

import bpcli.onnx.backend as backend
from bpcli.onnx import conformance as C


@pytest.fixture(scope="module")
def ops():
    return C.op_types_by_test()


def _check(outcomes, ops):
    report = C.Report(outcomes, ops, C.read_xfail())
    bad = [f"{o.name}: {o.detail}" for o in outcomes
           if o.status == "failed" and not report.expected(o.name)]  # fmt: skip
    assert not bad, "unexpected failures:\n" + "\n".join(bad)
    return report


def test_tier_node_tests(ops):
    names = [n for n, o in ops.items() if o and all(x in C.TIER_OF for x in o)]
    pattern = "^(" + "|".join(re.escape(n) for n in names) + ")_cpu$"
    outcomes = [o for o in C.run(pattern) if o.status != "skipped"]
    assert len(outcomes) >= 700
    _check(outcomes, ops)
    passed = sum(o.status == "passed" for o in outcomes)
    assert passed / len(outcomes) > 0.9


ZOO = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)


def test_model_zoo_cnns_match_the_stored_outputs():
    outcomes = C.run("^test_(" + "|".join(ZOO) + ")_cpu$")
    ran = {o.name: o for o in outcomes if o.category.startswith("real")}
    assert sorted(ran) == sorted(f"test_{z}" for z in ZOO)
    assert all(o.status == "passed" for o in ran.values()), [o.detail for o in ran.values()]


def test_backend_interface():
    bt = onnx.backend.test.BackendTest(backend, __name__)
    assert "OnnxBackendNodeModelTest" in bt.test_cases
    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    node = helper.make_node("Relu", ["x"], ["y"])
    (y,) = backend.run_node(node, [np.array([-1.0, 2.0], np.float32)])
    np.testing.assert_array_equal(y, [0.0, 2.0])


@pytest.mark.slow
def test_full_suite(ops):
    outcomes = C.run()
    report = _check(outcomes, ops)
    assert sum(o.status == "passed" for o in outcomes) >= 1400
    print(report.render())
