"""BatchNorm, LayerNorm, GroupNorm against torch: outputs, gradients, running statistics, state."""

import json

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError
from bpcli.nn.layers import norm
from tests.nn.layer_oracle import assert_matches, copy_state, randn

torch = pytest.importorskip("torch")
nn = torch.nn

BATCH_NORMS = [
    ("BatchNorm1d", (4,), {}, (8, 4)),
    ("BatchNorm1d", (3,), dict(eps=1e-3, momentum=0.3), (4, 3, 5)),
    ("BatchNorm2d", (3,), {}, (4, 3, 5, 6)),
    ("BatchNorm2d", (3,), dict(affine=False), (2, 3, 4, 4)),
    ("BatchNorm2d", (3,), dict(track_running_stats=False), (2, 3, 4, 4)),
    ("BatchNorm1d", (3,), dict(momentum=None), (6, 3)),
]


def _scrambled(ours):
    """Non-trivial affine parameters, so their gradients and the output depend on them."""
    rng = np.random.default_rng(7)
    for p in ours.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(p.dtype)
    return ours


@pytest.mark.torch
@pytest.mark.parametrize(("cls", "args", "kw", "shape"), BATCH_NORMS)
def test_batch_norm_train_steps_then_eval_match_torch(cls, args, kw, shape):
    ours = _scrambled(getattr(norm, cls)(*args, **kw))
    theirs = getattr(nn, cls)(*args, **kw)
    copy_state(ours, theirs)
    for step in range(5):
        x = randn(shape, seed=step) * 2 + 0.5
        assert_matches(ours, theirs, x, training=True)
    ours_s, theirs_s = ours.state_dict(), theirs.state_dict()
    assert list(ours_s) == list(theirs_s)
    for k, v in theirs_s.items():
        assert ours_s[k].shape == tuple(v.shape) and ours_s[k].dtype == v.numpy().dtype, k
        np.testing.assert_allclose(ours_s[k], v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    if ours.track_running_stats:
        assert int(ours.num_batches_tracked.data) == 5
        assert not np.allclose(ours.running_var.data, 1)  # the stats did move
    assert_matches(ours, theirs, randn(shape, seed=9), training=False)


@pytest.mark.torch
def test_batch_norm_float64_matches_torch():
    ours = _scrambled(norm.BatchNorm2d(3, dtype=np.float64))
    theirs = nn.BatchNorm2d(3).double()
    copy_state(ours, theirs)
    for step in range(3):
        assert_matches(ours, theirs, randn((3, 3, 4, 2), np.float64, seed=step), training=True)
    np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), rtol=1e-12)
    yo, _ = assert_matches(ours, theirs, randn((3, 3, 4, 2), np.float64), training=False)
    assert yo.dtype == np.float64 and ours.running_mean.dtype == np.float64


@pytest.mark.torch
def test_batch_norm_state_dict_round_trips_through_torch():
    theirs = nn.BatchNorm2d(4)
    theirs.train()
    theirs(torch.randn(5, 4, 3, 3))  # move running stats and num_batches_tracked
    ours = norm.BatchNorm2d(4)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    back = nn.BatchNorm2d(4)
    copy_state(ours, back)
    for k, v in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    assert ours.num_batches_tracked.dtype == np.int64 and ours.num_batches_tracked.shape == ()
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"]


def test_batch_norm_default_init_and_buffers():
    bn = norm.BatchNorm1d(5)
    np.testing.assert_array_equal(bn.weight.data, np.ones(5, np.float32))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(5, np.float32))
    np.testing.assert_array_equal(bn.running_mean.data, 0)
    np.testing.assert_array_equal(bn.running_var.data, 1)
    assert bn.weight.dtype == bn.running_var.dtype == np.float32
    no_stats = norm.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert list(no_stats.state_dict()) == [] and no_stats.running_mean is None


def test_lazy_batch_norm_infers_num_features():
    bn = norm.BatchNorm2d(None)
    assert list(bn.state_dict()) == []
    bn(bp.tensor(randn((2, 6, 3, 3))))
    assert bn.num_features == 6 and bn.running_mean.shape == (6,) and bn.weight.shape == (6,)
    assert int(bn.num_batches_tracked.data) == 1
    again = norm.BatchNorm2d.from_config(json.loads(json.dumps(bn.get_config())))
    assert again.running_var.shape == (6,)


def test_batch_norm_eval_does_not_touch_running_stats():
    bn = norm.BatchNorm1d(3).eval()
    y = bn(bp.tensor(randn((4, 3))))
    np.testing.assert_allclose(y.numpy(), randn((4, 3)) / np.sqrt(1 + 1e-5), rtol=1e-6)
    assert int(bn.num_batches_tracked.data) == 0 and np.all(bn.running_mean.data == 0)


# -- LayerNorm and GroupNorm -----------------------------------------------------------------

OTHER_NORMS = [
    ("LayerNorm", (6,), {}, (4, 6)),
    ("LayerNorm", ((3, 4),), dict(eps=1e-3), (2, 5, 3, 4)),
    ("LayerNorm", (5,), dict(bias=False), (2, 3, 5)),
    ("LayerNorm", (5,), dict(elementwise_affine=False), (2, 3, 5)),
    ("GroupNorm", (2, 6), {}, (3, 6, 4, 2)),
    ("GroupNorm", (3, 3), dict(eps=1e-3), (2, 3, 7)),
    ("GroupNorm", (1, 4), dict(affine=False), (2, 4, 3, 3)),
    ("GroupNorm", (4, 4), {}, (2, 4, 3)),
]


@pytest.mark.torch
@pytest.mark.parametrize(("cls", "args", "kw", "shape"), OTHER_NORMS)
@pytest.mark.parametrize("training", [True, False])
def test_layer_and_group_norm_match_torch(cls, args, kw, shape, training):
    ours = _scrambled(getattr(norm, cls)(*args, **kw))
    theirs = getattr(nn, cls)(*args, **kw)
    copy_state(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert_matches(ours, theirs, randn(shape) * 3 - 1, training)


@pytest.mark.torch
@pytest.mark.parametrize("cls", ["LayerNorm", "GroupNorm"])
def test_layer_and_group_norm_float64_match_torch(cls):
    args = (4,) if cls == "LayerNorm" else (2, 4)
    ours = _scrambled(getattr(norm, cls)(*args, dtype=np.float64))
    theirs = getattr(nn, cls)(*args).double()
    copy_state(ours, theirs)
    yo, _ = assert_matches(ours, theirs, randn((3, 4, 4), np.float64))
    assert yo.dtype == np.float64


@pytest.mark.torch
def test_layer_and_group_norm_default_init_matches_torch():
    for ours, theirs in [(norm.LayerNorm((2, 3)), nn.LayerNorm((2, 3))),
                         (norm.GroupNorm(2, 4), nn.GroupNorm(2, 4))]:  # fmt: skip
        for k, v in theirs.state_dict().items():
            np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())


def test_lazy_layer_and_group_norm():
    ln, gn = norm.LayerNorm(None), norm.GroupNorm(2, None)
    x = bp.tensor(randn((2, 4, 5)))
    ln(x), gn(x)
    assert ln.normalized_shape == (5,) and ln.weight.shape == (5,)
    assert gn.num_channels == 4 and gn.bias.shape == (4,)


@pytest.mark.parametrize(
    "layer",
    [norm.BatchNorm1d(3, 1e-3, 0.2, affine=False), norm.BatchNorm2d(4, momentum=None),
     norm.LayerNorm([2, 3], bias=False, dtype=np.float64), norm.GroupNorm(2, 4, affine=False)],
)  # fmt: skip
def test_norm_config_round_trip(layer):
    cfg = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in layer.state_dict().items()
    }


def test_norm_bad_input_names_layer_and_shapes():
    cases = [
        (norm.BatchNorm2d(3), (2, 3, 4), r"BatchNorm2d: expects 4-D input .*\(2, 3, 4\)"),
        (norm.BatchNorm1d(3), (2, 3, 4, 4), r"BatchNorm1d: expects 2-D or 3-D input"),
        (norm.BatchNorm1d(3), (2, 5), r"BatchNorm1d: expects 3 features .*\(2, 5\)"),
        (norm.LayerNorm(4), (2, 5), r"LayerNorm: normalized_shape \(4,\) .*\(2, 5\)"),
        (norm.GroupNorm(2, 4), (2, 6, 3), r"GroupNorm: expects 4 channels .*\(2, 6, 3\)"),
        (norm.GroupNorm(2, 4), (4,), r"GroupNorm: expects input with at least 2 dims"),
    ]
    for layer, shape, msg in cases:
        with pytest.raises(BpcliError, match=msg):
            layer(bp.tensor(np.ones(shape, np.float32)))
    with pytest.raises(BpcliError, match="GroupNorm: num_channels 6 is not divisible by"):
        norm.GroupNorm(4, 6)


def test_registry_names():
    assert set(norm.LAYERS) == {"batch_norm1d", "batch_norm2d", "layer_norm", "group_norm"}
