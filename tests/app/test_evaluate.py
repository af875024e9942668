"""bpcli eval / predict from checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli.app.store import runs
from bpcli.app.training.evaluate import evaluate
from bpcli.app.training.predict import predict
from bpcli.app.training.loop import train
from bpcli.data import load_digits
from bpcli.errors import BpcliError
from tests.app.test_train import mlp_spec


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval") / "run"
    return train(mlp_spec(epochs=3), out_dir=d)


def test_evaluate_matches_training_test_metrics(run):
    res = evaluate(run.run_dir / runs.BEST)
    assert res.task == "classification" and res.epoch == run.best_epoch
    assert res.metrics["loss"] == pytest.approx(run.metrics["test_loss"], rel=1e-6)
    assert res.metrics["accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    assert res.confusion.shape == (10, 10) and res.confusion.sum() == res.n_samples
    assert np.trace(res.confusion) / res.n_samples == pytest.approx(res.metrics["accuracy"])
    # a run directory means its best checkpoint
    assert evaluate(run.run_dir).checkpoint == run.run_dir / runs.BEST


def test_evaluate_other_dataset(run):
    res = evaluate(run.run_dir / runs.LAST, dataset="digits")
    assert res.n_samples == 1797 and res.metrics["accuracy"] > 0.5


def test_evaluate_errors(tmp_path, run):
    with pytest.raises(BpcliError, match="no such checkpoint"):
        evaluate(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes((run.run_dir / runs.BEST).read_bytes()[:500])
    with pytest.raises(BpcliError, match=r"bad\.npz"):
        evaluate(bad)


def test_predict_writes_classes_and_probabilities(tmp_path, run):
    ds = load_digits(flatten=True)
    src = tmp_path / "in.npz"
    np.savez(src, x=ds.x)
    res = predict(run.run_dir / runs.BEST, src)
    assert res.out_path == tmp_path / "in.pred.npz" and res.n_samples == len(ds)
    with np.load(res.out_path, allow_pickle=False) as z:
        classes, probs = z["classes"], z["probabilities"]
    assert classes.shape == (len(ds),) and probs.shape == (len(ds), 10)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    # the stored standardizer is applied: same answers as evaluating on the dataset
    acc = evaluate(run.run_dir / runs.BEST, dataset="digits").metrics["accuracy"]
    assert (classes == ds.y).mean() == pytest.approx(acc)
    # images (n, 8, 8) are flattened to the (n, 64) the model was trained on; a lone array works
    np.savez(tmp_path / "img.npz", ds.x[:5].reshape(5, 8, 8))
    out = predict(run.run_dir / runs.BEST, tmp_path / "img.npz", tmp_path / "o.npz")
    with np.load(out.out_path) as z:
        np.testing.assert_array_equal(z["classes"], classes[:5])


def test_predict_bad_input(tmp_path, run):
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 7), np.float32))
    with pytest.raises(BpcliError, match=r"which takes \(n, 64\)") as e:
        predict(run.run_dir / runs.BEST, tmp_path / "bad.npz")
    assert "bad.npz" in str(e.value)
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.zeros(3))
    with pytest.raises(BpcliError, match="named 'x' or a single array"):
        predict(run.run_dir / runs.BEST, tmp_path / "two.npz")


def test_evaluate_language_model(tmp_path):
    from bpcli.app.spec.schema import resolve

    raw = {
        "name": "tiny-lm", "seed": 0,
        "data": {"dataset": "austen", "val": 0.1, "test": 0.1, "limit": 3000},
        "model": {"layers": [{"type": "char_rnn", "embed_dim": 8, "hidden_size": 16}]},
        "train": {"epochs": 1, "batch_size": 4, "bptt": 16},
    }  # fmt: skip
    r = train(resolve(raw), out_dir=tmp_path / "lm")
    res = evaluate(r.run_dir)
    assert res.task == "language" and res.confusion is None
    assert res.metrics["perplexity"] == pytest.approx(r.metrics["test_perplexity"], rel=1e-6)
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 16), np.int64))
    with pytest.raises(BpcliError, match="a language model predicts on a UTF-8 text file"):
        predict(r.run_dir, tmp_path / "x.npz")
    (tmp_path / "p.txt").write_text("ab", encoding="utf-8")
    with np.load(predict(r.run_dir, tmp_path / "p.txt").out_path) as z:
        assert z["probabilities"].shape[0] == 2
        np.testing.assert_allclose(z["probabilities"].sum(-1), 1, rtol=1e-5)
