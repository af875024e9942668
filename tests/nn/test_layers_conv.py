"""Conv and pooling layers against torch: outputs, gradients, init, lazy sizes, configs."""

import math

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError
from bpcli.nn.layers import conv, pool
from tests.nn.layer_oracle import assert_matches, copy_state, randn

torch = pytest.importorskip("torch")
nn = torch.nn

CONVS = [
    ("Conv1d", (3, 4, 3), {}, (2, 3, 9)),
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, dilation=2, groups=2), (2, 4, 11)),
    ("Conv1d", (3, 5, 4), dict(padding="same", bias=False), (2, 3, 8)),
    ("Conv2d", (3, 4, 3), {}, (2, 3, 7, 6)),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2)), (2, 4, 8, 7)),
    ("Conv2d", (6, 4, 3), dict(groups=2, bias=False), (1, 6, 5, 5)),
    ("Conv2d", (6, 6, 3), dict(groups=6, padding=1), (2, 6, 5, 4)),
    ("Conv2d", (3, 4, (4, 3)), dict(padding="same", dilation=2), (2, 3, 9, 8)),
    ("Conv2d", (3, 4, 3), dict(padding="valid"), (2, 3, 5, 5)),
    ("ConvTranspose2d", (3, 4, 3), {}, (2, 3, 4, 5)),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2),
     (2, 4, 4, 3)),
    ("ConvTranspose2d", (3, 2, (2, 3)), dict(stride=(1, 2), dilation=2, bias=False), (1, 3, 3, 4)),
]  # fmt: skip


@pytest.mark.torch
@pytest.mark.parametrize(("cls", "args", "kw", "shape"), CONVS)
@pytest.mark.parametrize("training", [True, False])
def test_conv_matches_torch(cls, args, kw, shape, training):
    ours = getattr(conv, cls)(*args, **kw)
    theirs = getattr(nn, cls)(*args, **kw)
    copy_state(ours, theirs)
    assert_matches(ours, theirs, randn(shape), training)


@pytest.mark.torch
@pytest.mark.parametrize("cls", ["Conv1d", "Conv2d", "ConvTranspose2d"])
def test_conv_float64_matches_torch(cls):
    shape = (2, 4, 6) if cls == "Conv1d" else (2, 4, 5, 6)
    ours = getattr(conv, cls)(4, 6, 3, stride=2, padding=1, groups=2, dtype=np.float64)
    theirs = getattr(nn, cls)(4, 6, 3, stride=2, padding=1, groups=2).double()
    copy_state(ours, theirs)
    yo, _ = assert_matches(ours, theirs, randn(shape, np.float64))
    assert ours.weight.dtype == np.float64 and yo.dtype == np.float64


@pytest.mark.torch
@pytest.mark.parametrize("cls", ["Conv1d", "Conv2d", "ConvTranspose2d"])
def test_conv_default_init_matches_torch_formula(cls):
    bp.manual_seed(0)
    torch.manual_seed(0)
    k = 3 if cls == "Conv1d" else (3, 3)
    ours, theirs = getattr(conv, cls)(16, 32, k, groups=2), getattr(nn, cls)(16, 32, k, groups=2)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    w = ours.weight.data
    fan_in = w.shape[1] * int(np.prod(w.shape[2:]))  # torch's fan_in, also for the transposed
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), ...)
    for weight, bias in [(w, ours.bias.data), (theirs.weight.detach(), theirs.bias.detach())]:
        weight, bias = np.asarray(weight), np.asarray(bias)
        assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.95 * bound
        assert weight.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert abs(weight.mean()) < 0.05 * bound
        assert np.abs(bias).max() <= bound
    assert w.dtype == np.float32 and ours.bias.dtype == np.float32


def test_lazy_conv_infers_in_channels():
    for layer, shape, weight in [
        (conv.Conv2d(None, 4, 3, groups=2), (2, 6, 5, 5), (4, 3, 3, 3)),
        (conv.Conv1d(None, 4, 3), (2, 3, 5), (4, 3, 3)),
        (conv.ConvTranspose2d(None, 4, 3, groups=2), (2, 6, 5, 5), (6, 2, 3, 3)),
    ]:
        assert layer.weight is None and list(layer.state_dict()) == []
        layer(bp.tensor(np.ones(shape, np.float32)))
        assert layer.in_channels == shape[1] and layer.weight.shape == weight
        assert list(layer.state_dict()) == ["weight", "bias"]
        again = type(layer).from_config(layer.get_config())
        assert again.weight.shape == weight


@pytest.mark.parametrize(
    "layer",
    [
        conv.Conv2d(3, 4, (3, 2), stride=2, padding=1, dilation=2,
                    bias=False, dtype=np.float64),
        conv.Conv1d(4, 4, 3, padding="same", groups=4),
        conv.ConvTranspose2d(2, 4, 3, 2, 1, 1, groups=2, bias=False, dilation=1),
    ],
)  # fmt: skip
def test_conv_config_round_trip(layer):
    import json

    cfg = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    assert again.weight.shape == layer.weight.shape and again.weight.dtype == layer.weight.dtype
    assert (again.bias is None) == (layer.bias is None)


def test_conv_bad_input_names_layer_and_shapes():
    with pytest.raises(BpcliError, match=r"Conv2d: expects 4-D input .*\(2, 3, 5\)"):
        conv.Conv2d(3, 4, 3)(bp.tensor(np.ones((2, 3, 5), np.float32)))
    with pytest.raises(BpcliError, match=r"Conv1d: expects 3 channels .*\(2, 5, 7\)"):
        conv.Conv1d(3, 4, 3)(bp.tensor(np.ones((2, 5, 7), np.float32)))
    with pytest.raises(BpcliError, match=r"ConvTranspose2d: expects 3 channels"):
        conv.ConvTranspose2d(3, 4, 3)(bp.tensor(np.ones((1, 2, 4, 4), np.float32)))
    with pytest.raises(BpcliError, match="groups=2 must divide"):
        conv.Conv2d(3, 4, 3, groups=2)


# -- pooling ---------------------------------------------------------------------------------

POOLS = [
    ("MaxPool1d", (3,), {}, (2, 3, 10)),
    ("MaxPool1d", (3,), dict(stride=2, padding=1, dilation=2, ceil_mode=True), (2, 3, 10)),
    ("MaxPool2d", (2,), {}, (2, 3, 6, 7)),
    ("MaxPool2d", ((3, 2),), dict(stride=(2, 1), padding=(1, 0), ceil_mode=True), (2, 3, 7, 6)),
    ("MaxPool2d", (3,), dict(stride=2, dilation=2), (1, 2, 9, 9)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1), (2, 3, 9)),
    ("AvgPool1d", (4,), dict(stride=3, padding=2, ceil_mode=True, count_include_pad=False),
     (2, 3, 10)),
    ("AvgPool2d", (2,), {}, (2, 3, 6, 7)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), (2, 3, 8, 7)),
    ("AvgPool2d", ((3, 2),), dict(stride=1, padding=1, count_include_pad=False), (2, 3, 5, 6)),
    ("AdaptiveAvgPool2d", (3,), {}, (2, 3, 7, 8)),
    ("AdaptiveAvgPool2d", ((2, 4),), {}, (2, 3, 6, 8)),
    ("AdaptiveAvgPool2d", ((None, 3),), {}, (2, 3, 5, 7)),
    ("AdaptiveAvgPool2d", (1,), {}, (2, 3, 5, 7)),
]  # fmt: skip


@pytest.mark.torch
@pytest.mark.parametrize(("cls", "args", "kw", "shape"), POOLS)
@pytest.mark.parametrize("training", [True, False])
def test_pool_matches_torch(cls, args, kw, shape, training):
    ours, theirs = getattr(pool, cls)(*args, **kw), getattr(nn, cls)(*args, **kw)
    assert_matches(ours, theirs, randn(shape), training)


@pytest.mark.torch
@pytest.mark.parametrize("cls", ["MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d"])
def test_pool_float64_matches_torch(cls):
    shape = (2, 3, 9) if cls.endswith("1d") else (2, 3, 7, 9)
    ours, theirs = getattr(pool, cls)(3, 2, 1), getattr(nn, cls)(3, 2, 1)
    yo, _ = assert_matches(ours, theirs, randn(shape, np.float64))
    assert yo.dtype == np.float64


@pytest.mark.torch
@pytest.mark.parametrize("flatten", [False, True])
def test_global_avg_pool_matches_torch(flatten):
    theirs = nn.Sequential(nn.AdaptiveAvgPool2d(1), *([nn.Flatten()] if flatten else []))
    yo, _ = assert_matches(pool.GlobalAvgPool(flatten), theirs, randn((2, 3, 4, 5)))
    assert yo.shape == ((2, 3) if flatten else (2, 3, 1, 1))


@pytest.mark.parametrize("cls", sorted(pool.LAYERS.values(), key=lambda c: c.__name__))
def test_pool_config_round_trip(cls):
    import json

    args = {"AdaptiveAvgPool2d": dict(output_size=[2, None]), "GlobalAvgPool": dict(flatten=True)}
    layer = cls(**args.get(cls.__name__, dict(kernel_size=[3, 2] if "2d" in cls.__name__ else 3,
                                              stride=2, padding=1, ceil_mode=True)))  # fmt: skip
    cfg = json.loads(json.dumps(layer.get_config()))
    again = cls.from_config(cfg)
    x = bp.tensor(randn((1, 2, 8) if "1d" in cls.__name__ else (1, 2, 8, 7)))
    np.testing.assert_array_equal(again(x).numpy(), layer(x).numpy())


def test_pool_bad_input_names_layer_and_shapes():
    cases = [
        (pool.MaxPool2d(2), (2, 3, 4), r"MaxPool2d: expects 4-D input \(N, C, H, W\).*\(2, 3, 4\)"),
        (pool.AvgPool1d(2), (2, 3, 4, 4), r"AvgPool1d: expects 3-D input .*\(2, 3, 4, 4\)"),
        (pool.AdaptiveAvgPool2d(2), (3, 4), r"AdaptiveAvgPool2d: expects 4-D"),
        (pool.GlobalAvgPool(), (3, 4, 5), r"GlobalAvgPool: expects 4-D"),
    ]  # fmt: skip
    for layer, shape, msg in cases:
        with pytest.raises(BpcliError, match=msg):
            layer(bp.tensor(np.ones(shape, np.float32)))
    with pytest.raises(BpcliError, match="return_indices"):
        pool.MaxPool2d(2, return_indices=True)


def test_registry_names():
    assert set(conv.LAYERS) == {"conv1d", "conv2d", "conv_transpose2d"}
    assert set(pool.LAYERS) == {"max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
                                "adaptive_avg_pool2d", "global_avg_pool"}  # fmt: skip
