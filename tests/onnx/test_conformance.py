"""onnx's backend conformance suite against bpcli.onnx.conformance.backend, whole (about 10 s): no
unexpected failure, no stale entry in conformance_xfail.txt, every node test of the tier ops
passing, and the nine model-zoo CNNs matching their stored outputs."""

from __future__ import annotations

import numpy as np
import onnx.backend.test
import pytest
from onnx import helper

import bpcli.onnx.conformance.backend as backend
from bpcli.onnx.conformance import suite as C

ZOO = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
       "squeezenet", "vgg19", "zfnet512")  # fmt: skip


@pytest.fixture(scope="module")
def suite():
    ops = C.op_types_by_test()
    outcomes = C.run()
    return outcomes, ops, C.Report(outcomes, ops, C.read_xfail())


def test_no_unexpected_failure_and_no_stale_expected_one(suite):
    outcomes, _, report = suite
    bad = [f"{o.name}: {o.detail}" for o in outcomes
           if o.status == "failed" and not report.expected(o.name)]  # fmt: skip
    assert not bad, "unexpected failures:\n" + "\n".join(bad)
    stale = [o.name for o in outcomes if o.status == "passed" and report.expected(o.name)]
    assert not stale, "passing now, remove from conformance_xfail.txt: " + ", ".join(stale)
    assert sum(o.status == "passed" for o in outcomes) >= 2020


def test_every_tier_node_test_passes(suite):
    outcomes, ops, _ = suite
    tier = [o for o in outcomes if ops.get(o.name) and all(x in C.TIER_OF for x in ops[o.name])]
    assert len(tier) >= 750
    assert [o.name for o in tier if o.status != "passed"] == []


def test_model_zoo_cnns_match_the_stored_outputs(suite):
    ran = {o.name: o for o in suite[0] if o.category.startswith("real")}
    assert sorted(ran) == sorted(f"test_{z}" for z in ZOO)
    assert [o.detail for o in ran.values() if o.status != "passed"] == []


def test_backend_interface():
    bt = onnx.backend.test.BackendTest(backend, __name__)
    assert "OnnxBackendNodeModelTest" in bt.test_cases
    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    node = helper.make_node("Relu", ["x"], ["y"])
    (y,) = backend.run_node(node, [np.array([-1.0, 2.0], np.float32)])
    np.testing.assert_array_equal(y, [0.0, 2.0])
