"""``bpcli export``, ``bpcli import``, ``bpcli onnx check`` and ``bpcli train MODEL.onnx``:
outputs, files, frozen parameters, a replaced head, and every bad input as one stderr line."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from bpcli.app.store.checkpoint import load_checkpoint
from tests.cli_helpers import one_line_error, run

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

pytestmark = [pytest.mark.torch, pytest.mark.ort]


def torch_mlp(path: Path, n_out: int = 5, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, n_out))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m.eval(), torch.zeros(2, 64), buf, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}})  # fmt: skip
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> Path:
    return torch_mlp(tmp_path_factory.mktemp("onnx") / "mlp.onnx")


@pytest.fixture(scope="module")
def unsupported(tmp_path_factory) -> Path:
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"),
             helper.make_node("Foo", ["a"], ["b"], name="bad1", domain="my.domain"),
             helper.make_node("Bar", ["b"], ["y"], name="bad2", domain="my.domain")]  # fmt: skip
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [2, 3])],
                          [helper.make_tensor_value_info("y", 1, [2, 3])])  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("my.domain", 1)])  # fmt: skip
    p = tmp_path_factory.mktemp("onnx") / "custom.onnx"
    onnx.save(m, str(p))
    return p


@pytest.fixture(scope="module")
def finetuned(mlp, tmp_path_factory):
    """One epoch of ``bpcli train mlp.onnx`` with the first layer frozen and a 10-class head."""
    run_dir = tmp_path_factory.mktemp("runs") / "ft"
    res = run("train", mlp, "--dataset", "digits", "--freeze", "0.*", "--replace-head", 10,
              "--epochs", 1, "--lr", 0.01, "--out", run_dir, "--json")  # fmt: skip
    assert res.exit_code == 0, (res.output, res.stderr)
    return run_dir, [json.loads(line) for line in res.stdout.splitlines()]


def test_train_onnx_freeze_and_replace_head(mlp, finetuned):
    run_dir, lines = finetuned
    assert lines[-1]["test_accuracy"] > 0.3 and "test_loss" in lines[-1]
    ckpt = load_checkpoint(run_dir / "best.npz")["model"]
    src = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(mlp)).graph.initializer}
    np.testing.assert_array_equal(ckpt["0.weight"], src["0.weight"])  # frozen: unchanged
    np.testing.assert_array_equal(ckpt["0.bias"], src["0.bias"])
    assert ckpt["2.weight"].shape == (10, 32) and ckpt["2.bias"].shape == (10,)
    assert (run_dir / "spec.toml").read_text().count("replace_head = 10") == 1


def test_export_run_verify_and_json(finetuned, tmp_path):
    run_dir, _ = finetuned
    out = tmp_path / "ft.onnx"
    res = run("export", run_dir, "-o", out, "--verify")
    assert res.exit_code == 0, (res.output, res.stderr)
    assert "max abs diff" in res.stdout and out.exists()
    res = run("export", run_dir / "last.npz", "-o", out, "--opset", 13, "--static-batch",
              "--json")  # fmt: skip
    d = json.loads(res.stdout)
    assert d["opset"] == 13 and not d["dynamic_batch"] and d["inputs"][0][1] == [2, 64]
    assert d["outputs"] == ["logits"] and d["verify"] is None


def test_a_run_keeps_its_graph_when_the_original_is_gone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them
    src = torch_mlp(Path("moved.onnx"), n_out=10)
    run_dir = Path("run")
    res = run("train", src, "--dataset", "digits", "--epochs", 1, "--out", run_dir)
    assert res.exit_code == 0, res.stderr
    assert (run_dir / "graph.onnx").read_bytes() == src.read_bytes()
    src.unlink()
    res = run("eval", run_dir, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["n_samples"] == 359
    res = run("export", run_dir, "-o", "again.onnx", "--verify")
    assert res.exit_code == 0, res.stderr


def test_import_summary(mlp):
    res = run("import", mlp)
    assert res.exit_code == 0 and "Gemm x2" in res.stdout and "opset 17" in res.stdout
    d = json.loads(run("import", mlp, "--json").stdout)
    assert d["n_params"] == 64 * 32 + 32 + 32 * 5 + 5 and d["opset"] == 17
    assert d["inputs"][0] == {"name": "x", "shape": ["batch", 64], "dtype": "float32"}
    assert len(d["trainable"]) == 4 and d["frozen"] == []


def test_onnx_check(mlp, unsupported):
    res = run("onnx", "check", mlp, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["n_unsupported"] == 0
    res = run("onnx", "check", unsupported, "--json")
    assert res.exit_code == 1
    d = json.loads(res.stdout)
    assert [(n["node"], n["supported"]) for n in d["nodes"]] == [
        ("ok", True), ("bad1", False), ("bad2", False)]  # fmt: skip
    assert d["nodes"][1]["domain"] == "my.domain" and d["nodes"][1]["opset"] == 1
    res = run("onnx", "check", unsupported)
    assert res.exit_code == 1 and "bad1" in res.stdout and "2 unsupported" in res.stdout


def test_bad_inputs_are_one_line(mlp, unsupported, tmp_path):
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(mlp.read_bytes()[:200])
    text = tmp_path / "text.onnx"
    text.write_text("this is not a model\n")
    for cmd in (("import",), ("onnx", "check")):
        one_line_error(run(*cmd, trunc), "trunc.onnx", "not a readable ONNX model")
        one_line_error(run(*cmd, text), "text.onnx")
        one_line_error(run(*cmd, tmp_path / "missing.onnx"), "no such file")
    one_line_error(run("import", unsupported), "2 unsupported node(s)", "bad1", "bad2")
    one_line_error(run("train", unsupported, "--dataset", "digits"), "bad1", "bad2")
    one_line_error(run("train", trunc, "--dataset", "digits"), "not a readable ONNX model")
    one_line_error(run("train", mlp), "--dataset")
    one_line_error(run("train", mlp, "--dataset", "spirals"), "do not fit")
    one_line_error(run("train", mlp, "--dataset", "digits", "--freeze", "nope*"), "nope*")
    one_line_error(run("export", tmp_path / "nothing", "-o", tmp_path / "x.onnx"), "no such")
    one_line_error(run("export", trunc, "-o", tmp_path / "x.onnx"), "trunc.onnx")


def test_export_bad_opset(finetuned, tmp_path):
    run_dir, _ = finetuned
    one_line_error(run("export", run_dir, "-o", tmp_path / "x.onnx", "--opset", 7), "--opset")
    one_line_error(run("export", run_dir, "-o", tmp_path / "no" / "x.onnx"), "does not exist")


class _OnnxPlugin:
    """A plugin adding an importer for my.domain::Foo (y = 2x) and an emitter."""

    @staticmethod
    def bpcli_register_onnx_ops(register):
        from bpcli import functional as F

        register("my.domain::Foo", lambda ctx, node, inputs: F.mul(inputs[0], 2.0))
        register("export:not_an_op", lambda ctx, rec, ins: ctx.node("Identity", list(ins)))


def test_plugin_onnx_ops(unsupported, monkeypatch):
    from bpcli.app.model.onnx_files import check_onnx
    from bpcli.onnx.exporter.export import emitter_of
    from bpcli.plugins import manager

    regs = manager.build_registries(manager.make_manager((_OnnxPlugin,), entry_points=False))
    monkeypatch.setattr(manager, "_registries", regs)
    rows = {r.node: r for r in check_onnx(unsupported).rows}
    assert rows["bad1"].supported and not rows["bad2"].supported
    assert rows["bad2"].reason == "no importer for this op"
    assert emitter_of("not_an_op") is not None and emitter_of("still_not_an_op") is None


def test_an_exported_language_model_fine_tunes_from_its_onnx_file(tmp_path):
    import bpcli as bp
    from bpcli.onnx.importer.load import OnnxLanguageModel, load

    small = ("--set", "data.limit=20000", "--epochs", 1)
    res = run("train", Path(__file__).parents[2] / "models" / "char-lstm.toml", *small, "--out",
              tmp_path / "lm", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    before = json.loads(res.stdout.splitlines()[-1])["test_perplexity"]
    assert run("export", tmp_path / "lm", "-o", tmp_path / "lm.onnx").exit_code == 0
    res = run("train", tmp_path / "lm.onnx", "--dataset", "austen", *small, "--out",
              tmp_path / "ft", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    after = json.loads(res.stdout.splitlines()[-1])["test_perplexity"]
    assert after < before  # one more epoch, through the imported graph
    res = run("export", tmp_path / "ft", "-o", tmp_path / "ft.onnx", "--verify")
    assert res.exit_code == 0, res.stderr
    # the graph takes windows of 64: a shorter one is padded at the end, which a causal model
    # does not see, so its logits are the full window's first ones
    lm = load(tmp_path / "ft.onnx", cls=OnnxLanguageModel)
    x = np.random.default_rng(0).integers(0, 75, (3, 64))
    full, _ = lm(bp.tensor(x))
    part, state = lm(bp.tensor(x[:, :10]))
    assert state is None and part.shape == (3, 10, 75)
    np.testing.assert_allclose(part.data, full.data[:, :10], rtol=1e-5, atol=1e-6)
    res = run("train", tmp_path / "lm.onnx", "--dataset", "austen", "--set", "train.bptt=32",
              "--out", tmp_path / "bad")  # fmt: skip
    assert res.exit_code == 2 and "--set train.bptt=64" in one_line_error(res)


def test_train_says_what_the_import_changed(mlp, tmp_path):
    res = run("train", mlp, "--dataset", "digits", "--freeze", "0.*", "--replace-head", 10,
              "--epochs", 1, "--out", tmp_path / "r")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "2 of 4 parameter tensors frozen" in res.output


CMDS = [("lr-find",), ("sweep", "--lr", "1e-3:1e-1:3"), ("info",), ("eval",),
        ("export", "-o", "x.onnx"), ("gradcheck",)]  # fmt: skip


@pytest.mark.parametrize("cmd", CMDS)
def test_commands_that_take_a_spec_or_checkpoint_point_an_onnx_file_to_import_and_train(mlp, cmd):
    res = run(cmd[0], mlp, *cmd[1:])
    if cmd[0] == "gradcheck":  # it takes ONNX files
        assert res.exit_code == 0, res.stderr
        return
    one_line_error(res, "an ONNX model, not a", "bpcli train FILE --dataset NAME")
