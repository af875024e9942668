"""Dropout and Embedding layers: masks and their statistics, torch parity, init, configs."""

import json

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError
from bpcli.nn.layers.dropout import LAYERS as DROPOUT_LAYERS
from bpcli.nn.layers.dropout import Dropout
from bpcli.nn.layers.embedding import LAYERS as EMBEDDING_LAYERS
from bpcli.nn.layers.embedding import Embedding
from tests.nn.layer_oracle import assert_matches, copy_state, randn

# -- Dropout ---------------------------------------------------------------------------------


@pytest.mark.torch
def test_dropout_eval_is_identity_as_torch():
    torch = pytest.importorskip("torch")
    x = randn((3, 4, 5))
    yo, _ = assert_matches(Dropout(0.4), torch.nn.Dropout(0.4), x, training=False)
    np.testing.assert_array_equal(yo.numpy(), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_train_keep_rate_scale_and_gradient(p, dtype):
    n = 200_000
    x = bp.tensor(np.ones(n, dtype) + 1, requires_grad=True)
    y = Dropout(p, seed=0)(x)
    mask = y.numpy() != 0
    keep = mask.mean()
    assert abs(keep - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy()[mask], 2 / (1 - p), rtol=1e-6)
    g = randn(n, dtype)
    y.backward(g)
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad, g * mask / dtype(1 - p), rtol=1e-6)


def test_dropout_seed_reproduces_masks_and_each_call_draws_a_new_one():
    x = bp.tensor(np.ones((50, 40), np.float32))
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    ya1, ya2, yb1, yb2 = a(x).numpy(), a(x).numpy(), b(x).numpy(), b(x).numpy()
    np.testing.assert_array_equal(ya1, yb1)
    np.testing.assert_array_equal(ya2, yb2)
    assert not np.array_equal(ya1, ya2)
    from_gen = Dropout(0.5, generator=np.random.default_rng(5))(x).numpy()
    again = Dropout(0.5, generator=np.random.default_rng(5))(x).numpy()
    np.testing.assert_array_equal(from_gen, again)


def test_dropout_without_seed_follows_manual_seed():
    x = bp.tensor(np.ones((30, 30), np.float32))
    bp.manual_seed(11)
    first = Dropout(0.3)(x).numpy()
    bp.manual_seed(11)
    np.testing.assert_array_equal(Dropout(0.3)(x).numpy(), first)


def test_dropout_edge_probabilities_and_bad_p():
    x = bp.tensor(randn((4, 5)))
    np.testing.assert_array_equal(Dropout(0.0)(x).numpy(), x.numpy())
    np.testing.assert_array_equal(Dropout(1.0)(x).numpy(), 0)
    with pytest.raises(BpcliError, match=r"Dropout: p must be between 0 and 1, got 1\.5"):
        Dropout(1.5)


def test_dropout_config_round_trip():
    layer = Dropout(0.25, seed=4)
    cfg = json.loads(json.dumps(layer.get_config()))
    assert cfg == {"p": 0.25, "seed": 4}
    x = bp.tensor(np.ones((8, 8), np.float32))
    np.testing.assert_array_equal(Dropout.from_config(cfg)(x).numpy(), layer(x).numpy())


# -- Embedding -------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
@pytest.mark.parametrize("training", [True, False])
def test_embedding_matches_torch(padding_idx, training):
    torch = pytest.importorskip("torch")
    ours = Embedding(7, 5, padding_idx=padding_idx)
    theirs = torch.nn.Embedding(7, 5, padding_idx=padding_idx)
    assert ours.padding_idx == theirs.padding_idx
    copy_state(ours, theirs)
    idx = np.array([[0, 2, 6, 2], [6, 1, 1, 3], [2, 2, 5, 0]], np.int64)
    assert_matches(ours, theirs, idx, training)
    if padding_idx is not None:
        np.testing.assert_array_equal(ours.weight.grad[ours.padding_idx], 0)


@pytest.mark.torch
def test_embedding_float64_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = Embedding(6, 3, dtype=np.float64), torch.nn.Embedding(6, 3).double()
    copy_state(ours, theirs)
    yo, _ = assert_matches(ours, theirs, np.array([5, 0, 5, 2], np.int64))
    assert yo.dtype == np.float64 and ours.weight.grad.dtype == np.float64


@pytest.mark.torch
def test_embedding_default_init_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = Embedding(1000, 64, padding_idx=3), torch.nn.Embedding(1000, 64, padding_idx=3)
    for w in (ours.weight.data, theirs.weight.detach().numpy()):
        np.testing.assert_array_equal(w[3], 0)
        rest = np.delete(w, 3, axis=0)
        assert rest.std() == pytest.approx(1.0, rel=0.02) and abs(rest.mean()) < 0.02
    assert ours.weight.dtype == np.float32


def test_embedding_config_round_trip_and_bad_input():
    layer = Embedding(10, 4, padding_idx=-2, dtype=np.float64)
    cfg = json.loads(json.dumps(layer.get_config()))
    assert cfg == {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": 8, "dtype": "float64"}
    again = Embedding.from_config(cfg)
    assert again.weight.shape == (10, 4) and again.weight.dtype == np.float64
    with pytest.raises(BpcliError, match=r"Embedding: expects integer indices, got float32"):
        layer(bp.tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(BpcliError, match=r"index out of range \[0, 10\)"):
        layer(bp.tensor(np.array([1, 10])))
    with pytest.raises(BpcliError, match="Embedding: padding_idx 10 out of range"):
        Embedding(10, 4, padding_idx=10)


def test_registry_names():
    assert DROPOUT_LAYERS == {"dropout": Dropout}
    assert EMBEDDING_LAYERS == {"embedding": Embedding}
