"""Export -> import -> export: the imported graph gives bpcli's outputs, and both files give
the same onnxruntime outputs (an MLP, a CNN with BatchNorm, an LSTM language model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from bpcli import data as bdata  # noqa: E402
from bpcli.app.model.build import build  # noqa: E402
from bpcli.app.spec.schema import load_spec  # noqa: E402
from bpcli.engine.grad_mode import no_grad  # noqa: E402
from bpcli.engine.tensor import Tensor  # noqa: E402
from bpcli.onnx import export, load  # noqa: E402
from bpcli.onnx.exporter.trace import flatten_outputs  # noqa: E402

pytestmark = pytest.mark.ort
MODELS = Path(__file__).resolve().parents[2] / "models"
RTOL, ATOL = 1e-4, 1e-5


def _input(built, n):
    if built.task == "language":
        x, _ = next(bdata.bptt_windows(bdata.stream_of(built.splits.train), n, 16))
        return np.asarray(x)
    return built.splits.train.x[:n].astype(np.float32)


def _run(model, x):
    model.eval()
    with no_grad():
        return [t.data for t in flatten_outputs(model(Tensor(x)))]


def _ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


@pytest.mark.parametrize("name", ["mlp-digits", "cnn-digits", "char-lstm"])
def test_export_import_export(name, tmp_path):
    built = build(load_spec(MODELS / f"{name}.toml", overrides=["train.bptt=16"]))
    model = built.model
    model.eval()
    x, x2 = _input(built, 3), _input(built, 6)
    export(model, x, tmp_path / "a.onnx")
    imported = load(tmp_path / "a.onnx")
    imported.eval()
    export(imported, x, tmp_path / "b.onnx")
    want = _run(model, x2)
    for got, ref in zip(_run(imported, x2), want, strict=True):
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    ort_a, ort_b = _ort(tmp_path / "a.onnx", x2), _ort(tmp_path / "b.onnx", x2)
    assert len(ort_a) == len(ort_b) == len(want)
    for a, b, ref in zip(ort_a, ort_b, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(b, ref, rtol=RTOL, atol=ATOL)
    # the imported copy is trainable: the gradient reaches every parameter
    imported.train()
    out = flatten_outputs(imported(Tensor(x)))[0]
    out.sum().backward()
    assert all(p.grad is not None for p in imported.parameters())


def _torch_pretrained(path: Path, seed: int = 0) -> Path:
    """A torch MLP trained on digits 0-4 only (a 5-class head), exported by torch.onnx."""
    import io
    import warnings

    torch = pytest.importorskip("torch")
    from bpcli.plugins.manager import registry

    ds = registry("dataset").get("digits")(flatten=True)
    x, y = torch.tensor(ds.x), torch.tensor(ds.y)
    keep = y < 5
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 5))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x[keep]), y[keep]).backward()
        opt.step()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m.eval(), x[:2], buf, dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "batch"}})  # fmt: skip
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.torch
def test_finetune_torch_export_then_export_again(tmp_path):
    """torch.onnx MLP -> import, new 10-class head, first layer frozen -> 1 epoch on digits
    -> bpcli export -> onnxruntime gives the fine-tuned model's outputs."""
    from bpcli.app.model.onnx_files import onnx_spec
    from bpcli.app.training.evaluate import measure, restore
    from bpcli.app.training.export import export_run
    from bpcli.app.training.loop import train

    src = _torch_pretrained(tmp_path / "pre.onnx")
    spec = onnx_spec(str(src), "digits", freeze=["0.*"], replace_head=10,
                     overrides=["train.epochs=1", "optimizer.lr=0.01"])  # fmt: skip
    before, _ = measure(build(spec), build(spec).splits.test, 256, prefix="test_")
    result = train(spec, out_dir=tmp_path / "run")
    after = result.metrics["test_accuracy"]
    assert after > before["test_accuracy"] + 0.3, (before, after)
    exp = export_run(tmp_path / "run", tmp_path / "ft.onnx", verify=True)
    assert exp.verify["ok"], exp.verify
    built, _, _ = restore(tmp_path / "run")
    x = built.splits.test.x
    want = _run(built.model, x)[0]
    got = _ort(tmp_path / "ft.onnx", x)[0]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert (got.argmax(1) == built.splits.test.y).mean() == pytest.approx(after)
    print(f"fine-tune demo: test accuracy {before['test_accuracy']:.3f} -> {after:.3f}")
