"""Bilinear, Unflatten, Identity, PixelShuffle, PixelUnshuffle, Upsample against torch."""

import numpy as np
import pytest

import bpcli as bp
import bpcli.functional as F
from bpcli.errors import BpcliError
from tests.nn.layer_oracle import assert_matches, copy_state, randn

torch = pytest.importorskip("torch")


def needs(name: str):
    """Skip when the functional form (written in another part of issue 11) is not there yet."""
    if not hasattr(F, name):
        pytest.skip(f"bpcli.functional.{name} is not in this build")


@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_matches_torch(lead, bias):
    ours, theirs = bp.nn.Bilinear(3, 4, 2, bias=bias), torch.nn.Bilinear(3, 4, 2, bias=bias)
    copy_state(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    x1, x2 = randn((*lead, 3), seed=1), randn((*lead, 4), seed=2)
    a1, a2 = bp.tensor(x1, requires_grad=True), bp.tensor(x2, requires_grad=True)
    t1, t2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    y, yt = ours(a1, a2), theirs(t1, t2)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = randn(y.shape, seed=3)
    y.backward(g)
    yt.backward(torch.tensor(g))
    for ours_g, theirs_g in [(a1.grad, t1.grad), (a2.grad, t2.grad),
                             (ours.weight.grad, theirs.weight.grad)]:  # fmt: skip
        np.testing.assert_allclose(ours_g, theirs_g.numpy(), rtol=1e-4, atol=1e-5)


def test_bilinear_init_bounds_and_errors_as_torch():
    m = bp.nn.Bilinear(16, 3, 4)
    assert m.weight.shape == (4, 16, 3) and np.abs(m.weight.data).max() <= 0.25
    assert np.abs(m.bias.data).max() <= 0.25 and m.weight.data.std() > 0.1
    with pytest.raises(BpcliError, match=r"expects inputs \(\*, 16\) and \(\*, 3\)"):
        m(bp.ones((2, 3)), bp.ones((2, 3)))
    with pytest.raises(BpcliError, match="same leading dims"):
        m(bp.ones((2, 16)), bp.ones((3, 3)))


@pytest.mark.parametrize(("dim", "size"), [(1, (2, 6)), (-1, (3, -1)), (0, (2, 1))])
def test_unflatten_matches_torch(dim, size):
    x = randn((2, 12))
    ours, theirs = bp.nn.Unflatten(dim, size), torch.nn.Unflatten(dim, size)
    assert_matches(ours, theirs, x)


def test_unflatten_and_identity_mistakes_and_args():
    with pytest.raises(BpcliError, match="cannot split dim 1 of size 12"):
        bp.nn.Unflatten(1, (5, -1))(bp.ones((2, 12)))
    with pytest.raises(BpcliError, match="at most one -1"):
        bp.nn.Unflatten(1, (-1, -1))
    ident = bp.nn.Identity(54, unused="x")  # torch ignores the arguments too
    x = bp.ones(3)
    assert ident(x) is x and ident.get_config() == {}


def test_pixel_shuffle_and_unshuffle_match_torch():
    needs("pixel_shuffle")
    needs("pixel_unshuffle")
    assert_matches(bp.nn.PixelShuffle(2), torch.nn.PixelShuffle(2), randn((2, 8, 3, 3)))
    assert_matches(bp.nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2), randn((2, 2, 4, 6)))


@pytest.mark.parametrize(
    "kw",
    [
        dict(scale_factor=2),
        dict(size=(5, 7), mode="bilinear", align_corners=False),
        dict(scale_factor=2, mode="bilinear", align_corners=True),
    ],
)
def test_upsample_matches_torch(kw):
    needs("interpolate")
    assert_matches(bp.nn.Upsample(**kw), torch.nn.Upsample(**kw), randn((1, 2, 3, 4)))


def test_layers_without_their_functional_form_say_so():
    if hasattr(F, "interpolate") and hasattr(F, "pixel_shuffle"):
        pytest.skip("the functional forms are there")
    up = not hasattr(F, "interpolate")
    layer = bp.nn.Upsample(scale_factor=2) if up else bp.nn.PixelShuffle(2)
    with pytest.raises(BpcliError, match=r"needs bpcli\.functional"):
        layer(bp.ones((1, 4, 2, 2)))


def test_upsample_options_are_checked():
    with pytest.raises(BpcliError, match="exactly one of size and scale_factor"):
        bp.nn.Upsample()


def test_new_layers_are_in_the_registry():
    from bpcli.nn.layers import all_layers

    names = all_layers()
    for name in ("bilinear", "unflatten", "pixel_shuffle", "pixel_unshuffle", "upsample"):
        assert name in names
