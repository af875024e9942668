"""A user's own files through the CLI, in a temporary folder, as a user runs them: CSV with
string labels, CSV regression, NPZ, an image folder of PNGs, a text file; export on raw
inputs gives bpcli predict's answers in onnxruntime."""

import json

import numpy as np
import pytest

from tests.cli_helpers import one_line_error, run

SPECIES = ("setosa", "versicolor", "virginica")


def _flowers(path, n=150, seed=0):
    rng = np.random.default_rng(seed)
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for i in range(n):
        c = i % 3
        v = rng.normal([5 + c, 3 + 0.3 * c, 1.5 + 2 * c, 0.2 + 0.9 * c], 0.3)
        lines.append(",".join(f"{a:.2f}" for a in v) + f",{SPECIES[c]}")
    path.write_text("\n".join(lines) + "\n")


def _spec(path, data: str, layers: str, epochs=30, extra=""):
    path.write_text(f'name = "{path.stem}"\n[data]\n{data}\nstandardize = true\n{extra}'
                    f"[model]\nlayers = [{layers}]\n[train]\nepochs = {epochs}\n")


def _ort(onnx_path, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


MLP3 = '{type = "linear", out_features = 16}, {type = "relu"}, {type = "linear", out_features = 3}'


def test_csv_with_string_labels_train_eval_predict_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _flowers(tmp_path / "flowers.csv")
    _spec(tmp_path / "flowers.toml", 'dataset = "flowers.csv"\noptions = {label = "species"}\n'
          "test = 0.2", MLP3, epochs=60, extra="[optimizer]\ntype = \"adam\"\nlr = 0.01\n")
    r = run("train", "flowers.toml", "--out", "runs/f", "-q")
    assert r.exit_code == 0, r.output
    r = run("eval", "runs/f", "--dataset", "flowers.csv", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] > 0.9
    assert "versicolor" in run("eval", "runs/f").stdout  # class names in the confusion matrix
    r = run("predict", "runs/f", "flowers.csv", "-o", "p.npz")
    assert r.exit_code == 0 and "setosa" in r.stdout, r.output
    with np.load(tmp_path / "p.npz") as z:
        labels, classes = z["labels"], z["classes"]
    assert set(labels) <= set(SPECIES) and [SPECIES[i] for i in classes] == list(labels)
    r = run("export", "runs/f", "-o", "f.onnx", "--verify", "--json")
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)["verify"]
    assert v["ok"] and v["agreement"] == 1.0 and v["raw_inputs"]
    import onnx

    from bpcli.data import load_csv

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "f.onnx")).metadata_props}
    assert json.loads(meta["bpcli.classes"]) == list(SPECIES)
    raw = load_csv(tmp_path / "flowers.csv", label="species").x
    np.testing.assert_array_equal(_ort(tmp_path / "f.onnx", raw).argmax(-1), classes)
    # --no-preprocessing: the file no longer answers the same on raw inputs
    assert run("export", "runs/f", "-o", "n.onnx", "--no-preprocessing").exit_code == 0
    assert (_ort(tmp_path / "n.onnx", raw).argmax(-1) != classes).any()


def test_csv_regression_and_separate_split_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name, n in (("train", 300), ("val", 60)):
        x = rng.uniform(0, 10, (n, 3))
        y = 2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] + 3
        body = "\n".join(",".join(f"{v:.4f}" for v in (*row, t)) for row, t in zip(x, y))
        (tmp_path / f"{name}.csv").write_text("a,b,c,price\n" + body + "\n")
    lin = '{type = "linear", out_features = 1}'
    _spec(tmp_path / "r.toml", 'dataset = "train.csv"\nval = "val.csv"', lin, epochs=40,
          extra='[loss]\ntype = "mse"\n[optimizer]\ntype = "adam"\nlr = 0.05\n')
    r = run("train", "r.toml", "--out", "runs/r", "-q")
    assert r.exit_code == 0, r.output
    r = run("predict", "runs/r", "val.csv", "-o", "p.csv")
    assert r.exit_code == 0, r.output
    pred = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    truth = np.loadtxt(tmp_path / "val.csv", delimiter=",", skiprows=1)[:, -1]
    assert np.sqrt(np.mean((pred - truth) ** 2)) < 0.1 * truth.std()
    r = run("eval", "runs/r", "--dataset", "val.csv", "--json")
    m = json.loads(r.stdout)
    e = pred - truth
    assert m["mae"] == pytest.approx(np.abs(e).mean(), rel=1e-3, abs=1e-4)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(e**2)), rel=1e-3, abs=1e-4)
    assert m["r2"] == pytest.approx(1 - np.mean(e**2) / truth.var(), rel=1e-4)
    assert run("export", "runs/r", "-o", "r.onnx").exit_code == 0
    feats = np.loadtxt(tmp_path / "val.csv", delimiter=",", skiprows=1)[:, :3]
    np.testing.assert_allclose(_ort(tmp_path / "r.onnx", feats)[:, 0], pred, rtol=1e-4, atol=1e-3)


def test_npz_explicit_kind_and_dataset_option_and_scale_warning(tmp_path, monkeypatch):
    from bpcli.data import load_digits

    monkeypatch.chdir(tmp_path)
    ds = load_digits(flatten=True)
    np.savez(tmp_path / "my.npz", x=ds.x[:600], y=ds.y[:600])
    lin = '{type = "linear", out_features = 10}'
    _spec(tmp_path / "n.toml", 'dataset = "npz"\noptions = {path = "my.npz"}', lin, epochs=3)
    assert run("train", "n.toml", "--out", "runs/n", "-q").exit_code == 0
    assert run("train", "n.toml", "--dataset", "my.npz", "--out", "runs/n2", "-q").exit_code == 0
    assert run("lr-find", "n.toml", "--dataset", "my.npz", "--steps", "5").exit_code == 0
    np.savez(tmp_path / "raw16.npz", x=ds.x[:50] * 16)
    r = run("predict", "runs/n", "raw16.npz")
    assert r.exit_code == 0 and "~16x larger" in r.stderr, r.output


def test_image_folder_of_pngs(tmp_path, monkeypatch):
    image = pytest.importorskip("PIL.Image")
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for c, name in enumerate(("dark", "light")):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(20):
            a = np.clip(rng.normal(60 + 120 * c, 30, (8, 8)), 0, 255).astype(np.uint8)
            image.fromarray(a).save(tmp_path / "imgs" / name / f"{i}.png")
    layers = '{type = "flatten"}, {type = "linear", out_features = 2}'
    _spec(tmp_path / "i.toml", 'dataset = "imgs"\noptions = {channels = 1}', layers, epochs=10)
    r = run("train", "i.toml", "--out", "runs/i", "-q")
    assert r.exit_code == 0, r.output
    r = run("predict", "runs/i", "imgs", "-o", "p.npz")
    assert r.exit_code == 0 and "dark" in r.stdout, r.output
    from bpcli.data import load_image_folder

    raw = load_image_folder(tmp_path / "imgs", channels=1)
    assert raw.x.shape == (40, 1, 8, 8) and raw.x.max() <= 1.0
    assert run("export", "runs/i", "-o", "i.onnx", "--verify").exit_code == 0
    with np.load(tmp_path / "p.npz") as z:
        np.testing.assert_array_equal(_ort(tmp_path / "i.onnx", raw.x).argmax(-1), z["classes"])


def test_text_file_generate_is_seeded_and_greedy_at_temperature_zero(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text("abcabcabcabd " * 80)
    layers = '{type = "char_rnn", cell = "lstm", embed_dim = 8, hidden_size = 16}'
    (tmp_path / "lm.toml").write_text(
        f'name = "lm"\n[data]\ndataset = "t.txt"\n[model]\nlayers = [{layers}]\n'
        "[train]\nepochs = 2\nbatch_size = 8\nbptt = 16\n")  # fmt: skip
    assert run("train", "lm.toml", "--out", "runs/lm", "-q").exit_code == 0
    a = run("generate", "runs/lm", "--prompt", "ab", "--length", "30", "--seed", "3")
    b = run("generate", "runs/lm", "--prompt", "ab", "--length", "30", "--seed", "3")
    assert a.exit_code == 0 and a.stdout == b.stdout and len(a.stdout.strip()) == 32
    from bpcli.app.training.evaluate import restore
    from bpcli.app.training.generate import generate
    from bpcli.data.text import Vocab
    from bpcli.engine.tensor import Tensor

    built, ckpt, _ = restore(tmp_path / "runs/lm", data=False)
    vocab = Vocab("".join(ckpt["classes"]))
    built.model.eval()
    logits, _ = built.model(Tensor(vocab.encode("ab")[None]), None)
    want = vocab.decode(np.array([int(logits.data[0, -1].argmax())]))
    assert generate(tmp_path / "runs/lm", "ab", 5, temperature=0.0).text[0] == want
    (tmp_path / "q.txt").write_text("abc")
    assert run("predict", "runs/lm", "q.txt").exit_code == 0


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("a,b,label\n1,2,x\n1,nan,y\n", ["bad.csv", "line 3, column 2 (b)", "not a finite"]),
        ("a,b,label\n1,2,x\n1,3\n", ["bad.csv", "line 3 has 2 fields, expected 3"]),
        ("a,b,label\n1,2,x\n1,hello,y\n", ["bad.csv", "line 3, column 2 (b)", "not a number"]),
        ("a,b,label\n1,2,x\n1,3,4\n", ["bad.csv", "labels must be all class names or all"]),
    ],
)
def test_bad_csv_is_one_line_naming_file_row_column(tmp_path, monkeypatch, content, needles):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text(content)
    _spec(tmp_path / "b.toml", 'dataset = "bad.csv"', MLP3, epochs=1)
    one_line_error(run("train", "b.toml", "--out", "runs/b", "-q"), *needles)
    assert not (tmp_path / "runs").exists()


def test_bad_files_and_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _spec(tmp_path / "m.toml", 'dataset = "missing.csv"', MLP3, epochs=1)
    one_line_error(run("train", "m.toml", "-q"), "missing.csv", "no such file")
    _flowers(tmp_path / "f.csv")
    _spec(tmp_path / "l.toml", 'dataset = "f.csv"\noptions = {label = "kind"}', MLP3, epochs=1)
    one_line_error(run("train", "l.toml", "-q"), "no column named 'kind'", "species")
    np.savez(tmp_path / "c.npz", x=np.ones((4, 2), complex), y=np.zeros(4, int))
    _spec(tmp_path / "c.toml", 'dataset = "c.npz"', MLP3, epochs=1)
    one_line_error(run("train", "c.toml", "-q"), "c.npz", "complex")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "x.png").write_text("not a png")
    _spec(tmp_path / "e.toml", 'dataset = "empty"', MLP3, epochs=1)
    one_line_error(run("train", "e.toml", "-q"), "x.png", "Pillow cannot read")
    _spec(tmp_path / "ok.toml", 'dataset = "f.csv"', MLP3, epochs=1)
    assert run("train", "ok.toml", "--out", "runs/ok", "-q").exit_code == 0
    np.savez(tmp_path / "w.npz", x=np.ones((3, 7), np.float32))
    one_line_error(run("predict", "runs/ok", "w.npz"), "w.npz", "(3, 7)", "(n, 4)")
    assert not (tmp_path / "w.pred.npz").exists()
