"""Every shipped spec (models/*.toml) exports at the default opset with a dynamic batch, and
onnxruntime gives bpcli's outputs (language models: int64 token windows in, logits and the
recurrent state out) at another batch size than the traced one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("onnxruntime")

from bpcli import data as bdata
from bpcli.app.model.build import build
from bpcli.app.spec.schema import load_spec
from bpcli.app.training.export import DEFAULT_OPSET, output_names
from bpcli.onnx import export, verify

pytestmark = pytest.mark.ort
MODELS = sorted((Path(__file__).resolve().parents[2] / "models").glob("*.toml"))
RTOL, ATOL = 1e-4, 1e-5


def batch(built, split, n: int) -> np.ndarray:
    if built.task == "language":
        x, _ = next(bdata.bptt_windows(bdata.stream_of(split), n, built.input_shape[0]))
        return np.asarray(x)
    return split.x[:n].astype(np.float32)


@pytest.mark.parametrize("spec_path", MODELS, ids=[p.stem for p in MODELS])
def test_spec_exports_and_matches_onnxruntime(spec_path, tmp_path):
    built = build(load_spec(spec_path))
    model = built.model
    model.eval()
    x = batch(built, built.splits.train, 3)
    n_out = 3 if built.task == "language" and built.stateful else 1
    names = output_names(built, n_out) if built.task == "language" else None
    path = tmp_path / f"{spec_path.stem}.onnx"
    try:
        res = export(model, x, path, opset=DEFAULT_OPSET, dynamic_batch=True, output_names=names)
    except Exception:
        # a language model without state (the transformer) has one output
        res = export(model, x, path, opset=DEFAULT_OPSET, dynamic_batch=True)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == DEFAULT_OPSET
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    if built.task == "language":
        assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    val = built.splits.val if built.splits.val is not None else built.splits.train
    v = verify(model, path, batch(built, val, 5), rtol=RTOL, atol=ATOL)
    assert v.ok, (v.max_abs, v.max_rel, v.per_output)
    assert len(v.per_output) == len(res.output_names)
