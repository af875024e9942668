"""ModuleList, ModuleDict, ParameterList, ParameterDict against torch.nn: the same model code
run with either ``nn`` gives the same names, state-dict keys, traversal and numbers."""

import numpy as np
import pytest

import bpcli as bp
from bpcli.errors import BpcliError

torch = pytest.importorskip("torch")


def build(nn, param):
    """One model written once for both libraries (``param`` makes a parameter from an array)."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(4, 6)
            self.layers = nn.ModuleList([nn.Linear(6, 6) for _ in range(3)])
            self.layers.append(nn.Tanh())
            self.heads = nn.ModuleDict({"cls": nn.Linear(6, 3), "reg": nn.Linear(6, 1)})
            self.heads["skip"] = nn.Identity()
            self.scales = nn.ParameterList([param(np.full(6, 0.5, np.float32))])
            self.scales.append(param(np.full(6, 2.0, np.float32)))
            self.gains = nn.ParameterDict({"cls": param(np.full(3, 1.5, np.float32))})
            self.register_buffer("steps", torch_or_bp(nn).zeros(1), persistent=False)

        def forward(self, x):
            x = self.stem(x)
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i < len(self.scales):
                    x = x * self.scales[i]
            return self.heads["cls"](self.heads["skip"](x)) * self.gains["cls"], self.heads["reg"](
                x
            )

    return Net()


def torch_or_bp(nn):
    return torch if nn is torch.nn else bp


def pair():
    ours = build(bp.nn, bp.nn.Parameter)
    theirs = build(torch.nn, lambda a: torch.nn.Parameter(torch.tensor(a)))
    return ours, theirs


def test_names_match_torch_everywhere():
    ours, theirs = pair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [type(m).__name__ for m in ours.modules()] == [
        type(m).__name__ for m in theirs.modules()
    ]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert "steps" not in ours.state_dict()
    assert [n for n, _ in ours.layers.named_parameters(prefix="L")] == [
        n for n, _ in theirs.layers.named_parameters(prefix="L")
    ]


def test_torch_state_dict_loads_and_gives_the_same_outputs_and_grads():
    ours, theirs = pair()
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    xo, xt = bp.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (a, b), (c, d) = ours(xo), theirs(xt)
    np.testing.assert_allclose(a.numpy(), c.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), d.detach().numpy(), rtol=1e-5, atol=1e-6)
    (a.sum() + (b * b).sum()).backward()
    (c.sum() + (d * d).sum()).backward()
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    theirs_p = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, theirs_p[name].grad.numpy(), rtol=1e-4, atol=1e-5)


def test_module_list_editing_renames_as_torch():
    def edit(nn):
        ml = nn.ModuleList([nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2)])
        ml.insert(1, nn.Tanh())
        del ml[0]
        ml.extend([nn.Linear(2, 3)])
        ml += [nn.Sigmoid()]
        popped = ml.pop(2)
        ml[0] = nn.Linear(1, 4)
        return ml, popped

    (ours, p1), (theirs, p2) = edit(bp.nn), edit(torch.nn)
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert type(p1).__name__ == type(p2).__name__
    assert [type(m).__name__ for m in ours[1:]] == [type(m).__name__ for m in theirs[1:]]
    assert isinstance(ours[1:], bp.nn.ModuleList) and ours[-1] is list(ours)[-1]
    both = ours + bp.nn.ModuleList([bp.nn.ReLU()])
    assert len(both) == len(ours) + 1


def test_module_dict_and_parameter_dict_behave_as_torch():
    def edit(nn, param):
        md = nn.ModuleDict([("b", nn.ReLU()), ("a", nn.Tanh())])
        md.update({"c": nn.Linear(2, 2)})
        removed = md.pop("b")
        pd = nn.ParameterDict({"w": param(np.ones(2, np.float32))})
        pd["v"] = param(np.zeros(3, np.float32))
        del pd["w"]
        return md, removed, pd

    md, removed, pd = edit(bp.nn, bp.nn.Parameter)
    tmd, tremoved, tpd = edit(torch.nn, lambda a: torch.nn.Parameter(torch.tensor(a)))
    assert list(md.keys()) == list(tmd.keys()) and list(md) == list(tmd)
    assert type(removed).__name__ == type(tremoved).__name__
    assert "a" in md and "b" not in md
    assert list(md.state_dict()) == list(tmd.state_dict())
    assert list(pd.keys()) == list(tpd.keys()) and list(pd.state_dict()) == ["v"]


def test_plain_tensors_become_parameters_as_torch():
    pl = bp.nn.ParameterList([bp.zeros(2), np.ones(3, np.float32)])
    pd = bp.nn.ParameterDict({"a": bp.ones(1)})
    assert all(isinstance(p, bp.nn.Parameter) and p.requires_grad for p in [*pl, *pd.values()])
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]


def test_containers_train_with_an_optimizer():
    net = bp.nn.ModuleList([bp.nn.Linear(3, 3), bp.nn.Linear(3, 1)])
    opt = bp.optim.SGD(net.parameters(), lr=0.1)
    x = bp.tensor(np.random.default_rng(1).standard_normal((16, 3)).astype(np.float32))
    losses = []
    for _ in range(20):
        y = net[1](net[0](x))
        loss = (y * y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2


def test_mistakes_are_one_line_errors():
    ml = bp.nn.ModuleList([bp.nn.ReLU()])
    with pytest.raises(IndexError, match="index 3 is out of range"):
        ml[3]
    with pytest.raises(BpcliError, match="is not a Module"):
        ml.append(3)
    md = bp.nn.ModuleDict()
    with pytest.raises(KeyError, match="no module named 'x'"):
        md["x"]
    with pytest.raises(BpcliError, match="already exists"):
        md["keys"] = bp.nn.ReLU()  # would hide .keys(), as torch refuses too
    with pytest.raises(BpcliError, match="contain"):
        md["a.b"] = bp.nn.ReLU()
    with pytest.raises(BpcliError, match="no forward"):
        ml(bp.zeros(1))
    with pytest.raises(BpcliError, match="not a Parameter or a tensor"):
        bp.nn.ParameterList(["w"])


@pytest.mark.ort
def test_a_container_model_with_hooks_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")

    class Tower(bp.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = bp.nn.ModuleList([bp.nn.Linear(3, 3), bp.nn.Linear(3, 2)])

        def forward(self, x):
            for b in self.blocks:
                x = bp.functional.tanh(b(x))
            return x

    m = Tower()
    seen = []
    m.blocks[0].register_forward_hook(lambda mod, a, out: seen.append(out.shape))
    m.blocks[1].register_full_backward_hook(lambda mod, gi, go: None)
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    res = bp.onnx.export(m, x, tmp_path / "t.onnx")
    assert {"blocks.0.weight", "blocks.1.bias"} <= set(res.initializers)
    (got,) = ort.InferenceSession(str(tmp_path / "t.onnx")).run(None, {"input": x})
    np.testing.assert_allclose(got, m(bp.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
    assert seen and seen[0] == (4, 3)
