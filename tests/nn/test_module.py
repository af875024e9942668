"""Module bookkeeping: names, state dicts, modes, freezing, configs."""

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError
from bpcli.nn.layers.activation import ReLU
from bpcli.nn.layers.container import Residual, Sequential
from bpcli.nn.layers.linear import Flatten, Linear
from bpcli.nn.module import Module, Parameter


def mlp():
    return Sequential(Linear(4, 8), ReLU(), Linear(8, 3))


def test_parameter_names_follow_pytorch():
    names = [n for n, _ in mlp().named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_state_dict_matches_torch_layout_and_loads_into_torch():
    torch = pytest.importorskip("torch")
    ours = mlp()
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        ours(bp.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_load_state_dict_lists_every_problem_and_changes_nothing():
    m = mlp()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    bad = dict(m.state_dict())
    bad.pop("0.bias")
    bad["extra"] = np.zeros(1)
    bad["2.weight"] = np.zeros((2, 2))
    with pytest.raises(BpcliError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    # torch's words, on one line: missing, then unexpected, then size mismatches
    assert msg == (
        "load_state_dict: Error(s) in loading state_dict for Sequential: "
        'Missing key(s) in state_dict: "0.bias". Unexpected key(s) in state_dict: "extra". '
        "size mismatch for 2.weight: copying a param with shape (2, 2) from checkpoint, "
        "the shape in current model is (3, 8)."
    )
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_train_eval_propagates():
    m = mlp()
    m.eval()
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())


def test_freeze_by_glob():
    m = mlp()
    assert m.freeze("0.*") == ["0.weight", "0.bias"]
    assert [p.requires_grad for p in m.parameters()] == [False, False, True, True]
    with pytest.raises(BpcliError, match="no parameter matches"):
        m.freeze("conv*")


def test_config_round_trip():
    lin = Linear(4, 3, bias=False)
    again = Linear.from_config(lin.get_config())
    assert again.weight.shape == (3, 4) and again.bias is None


def test_lazy_linear_infers_in_features():
    lin = Linear(None, 3)
    y = lin(bp.tensor(np.ones((2, 7), np.float32)))
    assert y.shape == (2, 3) and lin.weight.shape == (3, 7)


def test_default_init_bounds_match_pytorch():
    lin = Linear(100, 50)
    assert np.abs(lin.weight.data).max() <= 0.1 and np.abs(lin.bias.data).max() <= 0.1
    assert lin.weight.data.std() == pytest.approx(0.1 / np.sqrt(3), rel=0.1)


def test_residual_and_flatten():
    block = Residual(Sequential(Linear(4, 4), ReLU()))
    x = bp.tensor(np.ones((2, 4), np.float32), requires_grad=True)
    block(x).sum().backward()
    assert x.grad.shape == (2, 4)
    assert Flatten()(bp.tensor(np.ones((2, 3, 4)))).shape == (2, 12)


def test_buffers_are_in_state_dict_but_not_parameters():
    class WithBuffer(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(np.ones(2, np.float32))
            self.register_buffer("running", np.zeros(2, np.float32))

    m = WithBuffer()
    assert list(m.state_dict()) == ["w", "running"]
    assert [n for n, _ in m.named_parameters()] == ["w"]
