"""Import of the ai.onnx.preview.training ops. onnxruntime's CPU build has none of them, so the
optimizer steps are checked against bpcli's and PyTorch's optimizers over several steps (where
the update rules coincide) and against the spec's formulas; Gradient against torch.autograd."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bpcli import optim
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64
TRAINING = "ai.onnx.preview.training"


def _vi(name, elem=FLOAT, shape=()):
    return helper.make_tensor_value_info(name, elem, list(shape))


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    ops = [helper.make_opsetid("", opset), helper.make_opsetid(TRAINING, 1)]
    return helper.make_model(g, opset_imports=ops)


def _step_model(op, kinds, shapes, outs, **attrs):
    """``op`` over tensors of ``shapes``: inputs R, T, then one input per kind per tensor."""
    names = [f"{k}{i}" for k in kinds for i in range(len(shapes))]
    node = helper.make_node(op, ["R", "T", *names], [f"{n}_new" for n in outs], domain=TRAINING,
                            **attrs)  # fmt: skip
    inputs = [_vi("R"), _vi("T", INT64)] + [_vi(n, FLOAT, shapes[int(n[-1])]) for n in names]
    outputs = [_vi(f"{n}_new", FLOAT, shapes[int(n[-1])]) for n in outs]
    return load(_model([node], inputs, outputs))


def _run(mod, r, t, *arrays):
    out = mod(np.float32(r), np.int64(t), *arrays)
    return [o.data for o in (out if isinstance(out, tuple) else (out,))]


SHAPES = [(3,), (2, 2)]
RNG = np.random.default_rng(0)
X0 = [RNG.standard_normal(s).astype(np.float32) for s in SHAPES]
GRADS = [[RNG.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(4)]


def _theirs(cls, lib, **kw):
    """X after ``len(GRADS)`` steps of a bpcli or torch optimizer fed ``GRADS``."""
    if lib == "torch":
        ps = [torch.tensor(x, requires_grad=True) for x in X0]
        opt = getattr(torch.optim, cls)(ps, **kw)
    else:
        ps = [Tensor(x.copy(), requires_grad=True) for x in X0]
        opt = getattr(optim, cls)(ps, **kw)
    for gs in GRADS:
        for p, g in zip(ps, gs):
            p.grad = torch.tensor(g) if lib == "torch" else g.copy()
        opt.step()
    return [p.detach().numpy() for p in ps]


# -- optimizer steps --------------------------------------------------------------------------


@pytest.mark.parametrize("lib", ["bpcli", "torch"])
def test_adagrad_steps_match_the_adagrad_optimizers(lib):
    mod = _step_model("Adagrad", "XGH", SHAPES, ["X0", "X1", "H0", "H1"],
                      norm_coefficient=0.01, decay_factor=0.1, epsilon=1e-4)  # fmt: skip
    xs, hs = list(X0), [np.zeros(s, np.float32) for s in SHAPES]
    for t, gs in enumerate(GRADS):  # T counts the updates done before this one
        x0, x1, h0, h1 = _run(mod, 0.1, t, *xs, *gs, *hs)
        xs, hs = [x0, x1], [h0, h1]
    want = _theirs("Adagrad", lib, lr=0.1, lr_decay=0.1, weight_decay=0.01, eps=1e-4)
    for a, b in zip(xs, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lib", ["bpcli", "torch"])
@pytest.mark.parametrize("mode", ["standard", "nesterov"])
def test_momentum_steps_match_sgd_with_momentum(mode, lib):
    beta = 1.0 if mode == "nesterov" else 0.7  # torch's Nesterov needs dampening 0
    mod = _step_model("Momentum", "XGV", SHAPES, ["X0", "X1", "V0", "V1"], alpha=0.9,
                      beta=beta, norm_coefficient=0.01, mode=mode)  # fmt: skip
    xs, vs = list(X0), [np.zeros(s, np.float32) for s in SHAPES]
    for t, gs in enumerate(GRADS):
        x0, x1, v0, v1 = _run(mod, 0.1, t, *xs, *gs, *vs)
        xs, vs = [x0, x1], [v0, v1]
    want = _theirs("SGD", lib, lr=0.1, momentum=0.9, dampening=1 - beta, weight_decay=0.01,
                   nesterov=mode == "nesterov")  # fmt: skip
    for a, b in zip(xs, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lib", ["bpcli", "torch"])
def test_adam_steps_match_adam_with_zero_epsilon(lib):
    """ONNX adds epsilon to sqrt(H), torch to sqrt(H) / sqrt(1 - beta^t): equal at eps = 0."""
    mod = _step_model("Adam", "XGVH", SHAPES, ["X0", "X1", "V0", "V1", "H0", "H1"],
                      alpha=0.8, beta=0.95, norm_coefficient=0.01, epsilon=0.0)  # fmt: skip
    xs = list(X0)
    vs, hs = [np.zeros(s, np.float32) for s in SHAPES], [np.zeros(s, np.float32) for s in SHAPES]
    for t, gs in enumerate(GRADS, start=1):  # T is the 1-based step in the bias correction
        x0, x1, v0, v1, h0, h1 = _run(mod, 0.05, t, *xs, *gs, *vs, *hs)
        xs, vs, hs = [x0, x1], [v0, v1], [h0, h1]
    want = _theirs("Adam", lib, lr=0.05, betas=(0.8, 0.95), eps=0.0, weight_decay=0.01)
    for a, b in zip(xs, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _adam_spec(r, t, x, g, v, h, norm, post, a, b, eps):
    g = norm * x + g
    v = a * v + (1 - a) * g
    h = b * h + (1 - b) * g * g
    r = r * np.sqrt(1 - b**t) / (1 - a**t) if t > 0 else r
    return (1 - post) * (x - r * v / (np.sqrt(h) + eps)), v, h


@pytest.mark.parametrize("t", [0, 3])
def test_adam_post_regularisation_epsilon_and_defaults(t):
    x, g, v, h = (RNG.standard_normal(5).astype(np.float64) for _ in range(4))
    h = np.abs(h)
    mod = _step_model("Adam", "XGVH", [(5,)], ["X0", "V0", "H0"], norm_coefficient=0.02,
                      norm_coefficient_post=0.1, epsilon=0.5, alpha=0.5, beta=0.7)  # fmt: skip
    got = _run(mod, 0.3, t, *(a.astype(np.float32) for a in (x, g, v, h)))
    want = _adam_spec(0.3, t, x, g, v, h, 0.02, 0.1, 0.5, 0.7, 0.5)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    plain = _step_model("Adam", "XGVH", [(5,)], ["X0", "V0", "H0"])  # alpha .9, beta .999, 1e-6
    got = _run(plain, 0.3, t, *(a.astype(np.float32) for a in (x, g, v, h)))
    want = _adam_spec(0.3, t, x, g, v, h, 0.0, 0.0, 0.9, 0.999, 1e-6)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_adagrad_defaults_and_output_dtype():
    mod = _step_model("Adagrad", "XGH", [(2,)], ["X0", "H0"])  # no decay, no L2, eps 1e-6
    x, g, h = np.float32([1.0, 2.0]), np.float32([0.5, -2.0]), np.float32([0.0, 1.0])
    xn, hn = _run(mod, 0.1, 5, x, g, h)
    assert xn.dtype == hn.dtype == np.float32
    np.testing.assert_allclose(hn, h + g * g)
    np.testing.assert_allclose(xn, x - 0.1 * g / (np.sqrt(h + g * g) + 1e-6), rtol=1e-6)


def test_an_optimizer_step_on_weights_is_noted_as_carrying_no_gradient():
    node = helper.make_node("Momentum", ["R", "T", "W", "G", "V"], ["W_new", "V_new"],
                            domain=TRAINING, alpha=0.9, beta=1.0, norm_coefficient=0.0,
                            mode="standard")  # fmt: skip
    inits = [numpy_helper.from_array(np.ones(2, np.float32), "W")]
    ins = [_vi("R"), _vi("T", INT64), _vi("G", FLOAT, [2]), _vi("V", FLOAT, [2])]
    mod = load(_model([node], ins, [_vi("W_new", FLOAT, [2]), _vi("V_new", FLOAT, [2])], inits))
    w_new, _ = mod(np.float32(0.5), np.int64(0), np.float32([1, 2]), np.float32([0, 0]))
    np.testing.assert_allclose(w_new.data, [0.5, 0.0])
    assert "Momentum" in mod.summary().no_gradient_ops


def test_bad_momentum_mode_and_input_count_are_errors():
    with pytest.raises(BpcliError, match="mode 'heavy'"):
        _step_model("Momentum", "XGV", [(2,)], ["X0", "V0"], alpha=0.9, beta=1.0,
                    norm_coefficient=0.0, mode="heavy")  # fmt: skip
    with pytest.raises(BpcliError, match="alpha"):
        _step_model("Momentum", "XGV", [(2,)], ["X0", "V0"], beta=1.0, norm_coefficient=0.0,
                    mode="standard")  # fmt: skip
    mod = _step_model("Adam", "XGV", [(2,)], ["X0", "V0"])  # H missing: 3 per tensor, not 4
    with pytest.raises(BpcliError, match="4 inputs per optimized tensor"):
        _run(mod, 0.1, 0, *[np.zeros(2, np.float32)] * 3)


# -- Gradient ---------------------------------------------------------------------------------


def _grad_node(inputs, outputs, xs, y, zs=None, name="grad"):
    kw = {"zs": zs} if zs else {}
    return helper.make_node("Gradient", inputs, outputs, name=name, domain=TRAINING, xs=xs, y=y,
                            **kw)  # fmt: skip


def _scalars(*names):
    return [_vi(n) for n in names]


def test_gradient_of_add_and_mul_matches_torch():
    """The conformance graph: d = (a + b) * a, Gradient of d with respect to a and b."""
    nodes = [helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Mul", ["c", "a"], ["d"]),
             _grad_node(["a", "b"], ["dd_da", "dd_db"], ["a", "b"], "d")]  # fmt: skip
    mod = load(_model(nodes, _scalars("a", "b"), _scalars("d", "dd_da", "dd_db"), opset=12))
    a, b = np.float32(1.5), np.float32(-0.7)
    d, da, db = mod(a, b)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    want = torch.autograd.grad((ta + tb) * ta, [ta, tb])
    np.testing.assert_allclose(d.data, (a + b) * a)
    np.testing.assert_allclose(da.data, want[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(db.data, want[1].numpy(), rtol=1e-6)
    assert da.dtype == np.float32 and da.shape == ()


def _mlp_model(grad_first: bool, zs: bool = True):
    """y = ReduceSum(Tanh(x @ W + b)), and a Gradient of y with respect to W and x (b as zs)."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")]  # fmt: skip
    g = _grad_node(["W", "x", "b"] if zs else ["W", "x"], ["dW", "dx"], ["W", "x"], "y",
                   zs=["b"] if zs else None)  # fmt: skip
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
             helper.make_node("Add", ["h", "b"], ["a"]),
             helper.make_node("Tanh", ["a"], ["t"]),
             helper.make_node("ReduceSum", ["t"], ["y"], keepdims=0)]  # fmt: skip
    nodes = [g, *nodes] if grad_first else [*nodes, g]
    outs = [_vi("y"), _vi("dW", FLOAT, [3, 4]), _vi("dx", FLOAT, [2, 3])]
    return _model(nodes, [_vi("x", FLOAT, [2, 3])], outs, inits, opset=13)


@pytest.mark.parametrize("grad_first", [True, False])
def test_gradient_through_matmul_tanh_reducesum_matches_torch(grad_first):
    mod = load(_mlp_model(grad_first))
    params = dict(mod.named_parameters())
    x = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    y, dw, dx = mod(x)
    tw = torch.tensor(params["W"].data, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tanh(tx @ tw + torch.tensor(params["b"].data)).sum()
    want_w, want_x = torch.autograd.grad(ty, [tw, tx])
    np.testing.assert_allclose(y.data, ty.item(), rtol=1e-5)
    np.testing.assert_allclose(dw.data, want_w.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx.data, want_x.numpy(), rtol=1e-5, atol=1e-6)
    assert all(p.grad is None for p in params.values())  # Gradient leaves the weights alone
    y.backward()  # the forward's own graph is intact: backward gives the same dy/dW
    np.testing.assert_allclose(params["W"].grad, dw.data, rtol=1e-6)
    assert "Gradient" in mod.summary().no_gradient_ops  # its outputs are constants


def test_gradient_at_other_values_than_the_forward_ones():
    """dy/dh at h = h1 (an input of the Gradient, not the graph's h), and zs fed b2 != b."""
    nodes = [helper.make_node("Mul", ["x", "x"], ["h"]),
             helper.make_node("Exp", ["b"], ["e"]),  # independent of xs/zs: reused
             helper.make_node("Mul", ["h", "e"], ["m"]),
             helper.make_node("Mul", ["m", "z"], ["y"]),
             _grad_node(["h1", "z2"], ["dy_dh"], ["h"], "y", zs=["z"])]  # fmt: skip
    ins = [_vi("x", FLOAT, [3]), _vi("b", FLOAT, [3]), _vi("z"), _vi("h1", FLOAT, [3]), _vi("z2")]
    mod = load(_model(nodes, ins, [_vi("y", FLOAT, [3]), _vi("dy_dh", FLOAT, [3])]))
    x, b = np.float32([1, 2, 3]), np.float32([0.1, -0.2, 0.3])
    with pytest.raises(BpcliError, match="must hold one value"):
        mod(x, b, np.float32(2), np.float32([5, 6, 7]), np.float32(-3))
    nodes[3] = helper.make_node("ReduceSum", ["m"], ["s"], keepdims=0)
    nodes.insert(4, helper.make_node("Mul", ["s", "z"], ["y"]))
    mod = load(_model(nodes, ins, [_vi("y"), _vi("dy_dh", FLOAT, [3])]))
    _, dh = mod(x, b, np.float32(2), np.float32([5, 6, 7]), np.float32(-3))
    np.testing.assert_allclose(dh.data, -3 * np.exp(b), rtol=1e-6)


def test_gradient_of_a_value_independent_of_xs_is_zero_and_of_y_itself_one():
    nodes = [helper.make_node("Neg", ["b"], ["y"]),
             _grad_node(["a", "y"], ["da", "dy"], ["a", "y"], "y")]  # fmt: skip
    mod = load(_model(nodes, _scalars("a", "b"), _scalars("da", "dy")))
    da, dy = mod(np.float32(2), np.float32(3))
    assert da.data == 0 and dy.data == 1


def test_second_derivatives_are_refused():
    nodes = [helper.make_node("Mul", ["a", "a"], ["c"]),
             _grad_node(["a"], ["dc"], ["a"], "c", name="g1"),
             _grad_node(["a"], ["ddc"], ["a"], "dc", name="g2")]  # fmt: skip
    mod = load(_model(nodes, _scalars("a"), _scalars("ddc")))
    with pytest.raises(BpcliError, match="second derivatives are not supported"):
        mod(np.float32(2))


@pytest.mark.parametrize("training", [True, False])
def test_gradient_through_dropout_only_when_it_draws_nothing(training):
    nodes = [helper.make_node("Dropout", ["a", "ratio"], ["d"]),
             helper.make_node("ReduceSum", ["d"], ["y"], keepdims=0),
             _grad_node(["a"], ["da"], ["a"], "y")]  # fmt: skip
    ratio = numpy_helper.from_array(np.float32(0.5), "ratio")
    mod = load(_model(nodes, [_vi("a", FLOAT, [4])], [_vi("da", FLOAT, [4])], [ratio]))
    mod.train(training)
    if training:
        with pytest.raises(BpcliError, match="random node"):
            mod(np.ones(4, np.float32))
    else:
        np.testing.assert_allclose(mod(np.ones(4, np.float32)).data, np.ones(4))


def test_batchnorm_running_stats_are_updated_once_per_forward():
    c = 2
    inits = [numpy_helper.from_array(v, n) for n, v in
             (("s", np.ones(c, np.float32)), ("o", np.zeros(c, np.float32)),
              ("mean", np.zeros(c, np.float32)), ("var", np.ones(c, np.float32)))]  # fmt: skip
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "o", "mean", "var"], ["n"],
                              momentum=0.5),
             helper.make_node("Mul", ["n", "n"], ["q"]),
             helper.make_node("ReduceSum", ["q"], ["y"], keepdims=0),
             _grad_node(["s"], ["ds"], ["s"], "y")]  # fmt: skip
    mod = load(_model(nodes, [_vi("x", FLOAT, [4, c])], [_vi("y"), _vi("ds", FLOAT, [c])], inits))
    x = np.random.default_rng(3).standard_normal((4, c)).astype(np.float32)
    mod(x)
    np.testing.assert_allclose(dict(mod.named_buffers())["mean"].data, 0.5 * x.mean(0), rtol=1e-5)


def test_gradient_inside_a_branch_with_its_own_values_and_not_outer_ones():
    def model(xs):
        body = [helper.make_node("Identity", ["a"], ["a_in"]),
                helper.make_node("Mul", ["a_in", "a_in"], ["sq"]),
                _grad_node([xs], ["g"], [xs], "sq")]  # fmt: skip
        branch = helper.make_graph(body, "then", [], [_vi("g")])
        node = helper.make_node("If", ["c"], ["out"], then_branch=branch, else_branch=branch)
        return load(_model([node], [_vi("c", TensorProto.BOOL), _vi("a")], [_vi("out")]))

    assert model("a_in")(np.bool_(True), np.float32(3)).data == 6
    with pytest.raises(BpcliError, match="values of an enclosing graph: a"):
        model("a")(np.bool_(True), np.float32(3))


def test_gradient_errors_name_the_problem():
    nodes = [helper.make_node("Cast", ["a"], ["i"], to=INT64),
             helper.make_node("Neg", ["a"], ["y"]),
             _grad_node(["i"], ["di"], ["i"], "y")]  # fmt: skip
    mod = load(_model(nodes, _scalars("a"), [_vi("di", INT64)]))
    with pytest.raises(BpcliError, match="xs value i must be a float tensor"):
        mod(np.float32(1))
    nodes = [_grad_node(["a"], ["da"], ["a"], "nowhere")]
    with pytest.raises(BpcliError, match="names no tensor"):
        load(_model(nodes, _scalars("a"), _scalars("da")), check=False)(np.float32(1))


def _shared_weight_model():
    """y = sum(x W W): one weight read by two MatMuls, so dy/dW = 2 x W."""
    w = numpy_helper.from_array(np.float32([[2.0]]), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
             helper.make_node("MatMul", ["h", "W"], ["y2"]),
             helper.make_node("ReduceSum", ["y2"], ["y"], keepdims=0),
             _grad_node(["W"], ["dW"], ["W"], "y")]  # fmt: skip
    return _model(nodes, [_vi("x", FLOAT, [1, 1])], [_vi("dW", FLOAT, [1, 1])], [w], opset=13)


def test_gradient_of_a_shared_weight_without_untying():
    assert load(_shared_weight_model(), untie=False)(np.float32([[3.0]])).data == 12


def test_gradient_of_a_shared_weight_with_the_default_load():
    # a model with a Gradient node is not untied: W stays one value for the Gradient
    assert load(_shared_weight_model())(np.float32([[3.0]])).data == 12
