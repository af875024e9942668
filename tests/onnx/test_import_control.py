"""Import of If, Loop, Scan and the sequence/optional ops: forward against onnxruntime,
gradients through the branch taken and the iterations run against PyTorch on the unrolled loop,
and the importer's subgraph handling (outer-scope names, support check, initializers)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.ort, pytest.mark.torch]
RTOL, ATOL = 1e-5, 1e-6
FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _vi(name, elem=FLOAT, shape=()):
    return helper.make_tensor_value_info(name, elem, shape)


def _seq_vi(name, elem=FLOAT):
    return helper.make_tensor_sequence_value_info(name, elem, None)


def _init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _graph(nodes, name, inputs, outputs, inits=()):
    return helper.make_graph(nodes, name, inputs, outputs, list(inits))


def _ort(model, feeds: dict):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _ours(model, feeds: dict):
    out = load(model)(*[Tensor(a.copy()) for a in feeds.values()])
    return list(out) if isinstance(out, tuple) else [out]


def _same(model, feeds: dict):
    """The imported model's outputs equal onnxruntime's (sequences element by element)."""
    ours, theirs = _ours(model, feeds), _ort(model, feeds)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs, strict=True):
        if isinstance(t, list):
            assert isinstance(o, list) and len(o) == len(t)
            for a, b in zip(o, t, strict=True):
                np.testing.assert_allclose(a.data, b, rtol=RTOL, atol=ATOL)
        else:
            assert o.shape == t.shape and o.dtype == t.dtype, (o.shape, t.shape, o.dtype)
            np.testing.assert_allclose(o.data, t, rtol=RTOL, atol=ATOL)
    return ours


# -- If ------------------------------------------------------------------------------------


def _if_model():
    """y = If(c) then x * W else x - 1: both branches read x and W from the outer scope."""
    then = _graph([helper.make_node("Mul", ["x", "W"], ["t"])], "then", [], [_vi("t", FLOAT, [3])])
    one = _init("one", np.float32(1.0))  # a float initializer of a subgraph: a constant
    other = _graph(
        [helper.make_node("Sub", ["x", "one"], ["e"])], "else", [], [_vi("e", FLOAT, [3])], [one]
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="if0")
    w = _init("W", np.array([2.0, -3.0, 0.5], np.float32))
    return _model([node], [_vi("c", BOOL, []), _vi("x", FLOAT, [3])], [_vi("y", FLOAT, [3])], [w])


@pytest.mark.parametrize("cond", [True, False])
def test_if_takes_one_branch_and_the_gradient_follows_it(cond):
    m = _if_model()
    x = np.array([1.0, 2.0, 3.0], np.float32)
    _same(m, {"c": np.array(cond), "x": x})
    mod = load(m)
    xt = Tensor(x.copy(), requires_grad=True)
    F.sum(mod(Tensor(np.array(cond)), xt)).backward()
    w = dict(mod.named_parameters())["W"]
    if cond:
        np.testing.assert_allclose(w.grad, x)
        np.testing.assert_allclose(xt.grad, w.data)
    else:
        assert w.grad is None or not np.any(w.grad)
        np.testing.assert_allclose(xt.grad, np.ones(3))
    assert "one" not in dict(mod.named_parameters())


# -- Loop ----------------------------------------------------------------------------------


def _loop_model(with_m=True, with_cond=False):
    """A running product p = p * x with a scan output of every p; with a condition, the loop
    also stops once p > 100."""
    nodes = [
        helper.make_node("Mul", ["p_in", "x"], ["p_out"]),
        helper.make_node("Identity", ["p_out"], ["p_scan"]),
    ]
    if with_cond:
        nodes += [
            helper.make_node("ReduceMax", ["p_out"], ["big"], keepdims=0),
            helper.make_node("Less", ["big", "limit"], ["c_out"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["c_in"], ["c_out"]))
    body = _graph(
        nodes,
        "body",
        [_vi("i", INT64, []), _vi("c_in", BOOL, []), _vi("p_in", FLOAT, [2])],
        [_vi("c_out", BOOL, []), _vi("p_out", FLOAT, [2]), _vi("p_scan", FLOAT, [2])],
    )
    ins = ["M" if with_m else "", "cond" if with_cond else "", "p0"]
    loop = helper.make_node("Loop", ins, ["p", "ps"], body=body, name="loop0")
    inputs = [_vi("M", INT64, [])] if with_m else []
    inputs += [_vi("cond", BOOL, [])] if with_cond else []
    inputs += [_vi("p0", FLOAT, [2]), _vi("x", FLOAT, [2])]
    limit = _init("limit", np.float32(100.0))
    return _model([loop], inputs, [_vi("p", FLOAT, [2]), _vi("ps", FLOAT, [None, 2])], [limit])


def test_loop_running_product_for_and_while_forms():
    p0, x = np.array([1.0, -1.0], np.float32), np.array([2.0, 1.5], np.float32)
    ours = _same(_loop_model(), {"M": np.array(4), "p0": p0, "x": x})
    assert ours[1].shape == (4, 2)
    feeds = {"M": np.array(50), "cond": np.array(True), "p0": p0, "x": x}
    ours = _same(_loop_model(with_cond=True), feeds)
    assert ours[1].shape == (7, 2)  # stops at 2**7 > 100
    ours = _same(_loop_model(with_m=False, with_cond=True), {k: feeds[k] for k in list(feeds)[1:]})
    assert ours[1].shape == (7, 2)


def test_loop_of_zero_iterations_gives_empty_scan_outputs():
    p0, x = np.array([1.0, -1.0], np.float32), np.array([2.0, 1.5], np.float32)
    ours = _same(_loop_model(), {"M": np.array(0), "p0": p0, "x": x})
    assert ours[1].shape == (0, 2)


def test_loop_without_trip_count_or_condition_is_refused():
    with pytest.raises(BpcliError, match=r"loop0 Loop .*never end"):
        load(_loop_model(with_m=False))


def _tanh_loop_model(w, n=5):
    """h = tanh(W h) n times; the scan output keeps every h."""
    body = _graph(
        [
            helper.make_node("MatMul", ["W", "h_in"], ["a"]),
            helper.make_node("Tanh", ["a"], ["h_out"]),
            helper.make_node("Identity", ["c_in"], ["c_out"]),
            helper.make_node("Identity", ["h_out"], ["h_scan"]),
        ],
        "body",
        [_vi("i", INT64, []), _vi("c_in", BOOL, []), _vi("h_in", FLOAT, [3])],
        [_vi("c_out", BOOL, []), _vi("h_out", FLOAT, [3]), _vi("h_scan", FLOAT, [3])],
    )
    loop = helper.make_node("Loop", ["M", "", "h0"], ["h", "hs"], body=body)
    return _model(
        [loop],
        [_vi("h0", FLOAT, [3])],
        [_vi("h", FLOAT, [3]), _vi("hs", FLOAT, [5, 3])],
        [_init("W", w), _init("M", np.array(n, np.int64))],
    )


def test_loop_gradient_matches_torch_unrolled():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((3, 3)) * 0.8).astype(np.float32)
    h0 = rng.standard_normal(3).astype(np.float32)
    m = _tanh_loop_model(w)
    _same(m, {"h0": h0})
    mod = load(m)
    ht = Tensor(h0.copy(), requires_grad=True)
    h, hs = mod(ht)
    loss = F.add(F.sum(F.mul(h, h)), F.sum(hs))
    loss.backward()

    wt, h0t = torch.tensor(w, requires_grad=True), torch.tensor(h0, requires_grad=True)
    hh, steps = h0t, []
    for _ in range(5):
        hh = torch.tanh(wt @ hh)
        steps.append(hh)
    ((hh * hh).sum() + torch.stack(steps).sum()).backward()
    np.testing.assert_allclose(
        loss.data, ((hh * hh).sum() + torch.stack(steps).sum()).item(), rtol=1e-5
    )
    np.testing.assert_allclose(
        dict(mod.named_parameters())["W"].grad, wt.grad.numpy(), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(ht.grad, h0t.grad.numpy(), rtol=1e-4, atol=1e-6)


# -- Scan ----------------------------------------------------------------------------------


def _cumsum_body():
    return _graph(
        [
            helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
            helper.make_node("Identity", ["s_out"], ["y_t"]),
        ],
        "body",
        [_vi("s_in", FLOAT, [2]), _vi("x_t", FLOAT, [2])],
        [_vi("s_out", FLOAT, [2]), _vi("y_t", FLOAT, [2])],
    )


@pytest.mark.parametrize(
    "in_axis,in_dir,out_axis,out_dir", [(0, 0, 0, 0), (1, 0, 1, 0), (1, 1, 0, 1), (-1, 1, -1, 0)]
)
def test_scan_cumulative_sum_axes_and_directions(in_axis, in_dir, out_axis, out_dir):
    x = np.arange(8, dtype=np.float32).reshape((4, 2) if in_axis == 0 else (2, 4)) * 0.5
    scan = helper.make_node(
        "Scan",
        ["s0", "x"],
        ["s", "ys"],
        body=_cumsum_body(),
        num_scan_inputs=1,
        scan_input_axes=[in_axis],
        scan_input_directions=[in_dir],
        scan_output_axes=[out_axis],
        scan_output_directions=[out_dir],
    )
    m = _model(
        [scan],
        [_vi("s0", FLOAT, [2]), _vi("x", FLOAT, list(x.shape))],
        [_vi("s", FLOAT, [2]), _vi("ys", FLOAT, [None, None])],
    )
    ours = _same(m, {"s0": np.array([1.0, -1.0], np.float32), "x": x})
    assert ours[1].shape == ((4, 2) if out_axis == 0 else (2, 4))


def test_scan_opset8_batch_with_sequence_lengths():
    scan = helper.make_node(
        "Scan",
        ["lens", "s0", "x"],
        ["s", "ys"],
        body=_cumsum_body(),
        num_scan_inputs=1,
        directions=[1],
    )
    m = _model(
        [scan],
        [_vi("lens", INT64, [2]), _vi("s0", FLOAT, [2, 2]), _vi("x", FLOAT, [2, 3, 2])],
        [_vi("s", FLOAT, [2, 2]), _vi("ys", FLOAT, [2, 3, 2])],
        opset=8,
    )
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    s0 = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32)
    for lens in ([3, 2], [3, 3], [1, 3]):
        _same(m, {"lens": np.array(lens), "s0": s0, "x": x})
    # onnxruntime refuses a length of 0; the spec allows it: no step, the scan output is padding
    s, ys = _ours(m, {"lens": np.array([0, 1]), "s0": s0, "x": x})
    np.testing.assert_allclose(s.data, [s0[0], s0[1] + x[1, 0]])
    np.testing.assert_allclose(ys.data[0], 0.0)
    np.testing.assert_allclose(ys.data[1, 0], s0[1] + x[1, 0])


def test_scan_rnn_gradient_matches_torch_unrolled():
    """h_t = tanh(W h_{t-1} + x_t) over the time axis 1 of x (4, T=5), every h_t stacked."""
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    h0 = rng.standard_normal(4).astype(np.float32)
    body = _graph(
        [
            helper.make_node("MatMul", ["W", "h_in"], ["a"]),
            helper.make_node("Add", ["a", "x_t"], ["b"]),
            helper.make_node("Tanh", ["b"], ["h_out"]),
            helper.make_node("Identity", ["h_out"], ["h_scan"]),
        ],
        "body",
        [_vi("h_in", FLOAT, [4]), _vi("x_t", FLOAT, [4])],
        [_vi("h_out", FLOAT, [4]), _vi("h_scan", FLOAT, [4])],
    )
    scan = helper.make_node(
        "Scan",
        ["h0", "x"],
        ["h", "hs"],
        body=body,
        num_scan_inputs=1,
        scan_input_axes=[1],
        scan_output_axes=[1],
    )
    m = _model(
        [scan],
        [_vi("h0", FLOAT, [4]), _vi("x", FLOAT, [4, 5])],
        [_vi("h", FLOAT, [4]), _vi("hs", FLOAT, [4, 5])],
        [_init("W", w)],
    )
    _same(m, {"h0": h0, "x": x})
    mod = load(m)
    ht, xt = Tensor(h0.copy(), requires_grad=True), Tensor(x.copy(), requires_grad=True)
    h, hs = mod(ht, xt)
    coef = rng.standard_normal((4, 5)).astype(np.float32)
    F.add(F.sum(F.mul(hs, Tensor(coef))), F.sum(h)).backward()

    wt, h0t = torch.tensor(w, requires_grad=True), torch.tensor(h0, requires_grad=True)
    x_t = torch.tensor(x, requires_grad=True)
    hh, steps = h0t, []
    for t in range(5):
        hh = torch.tanh(wt @ hh + x_t[:, t])
        steps.append(hh)
    ((torch.stack(steps, 1) * torch.tensor(coef)).sum() + hh.sum()).backward()
    got = (dict(mod.named_parameters())["W"].grad, ht.grad, xt.grad)
    for g, ref in zip(got, (wt.grad, h0t.grad, x_t.grad), strict=True):
        np.testing.assert_allclose(g, ref.numpy(), rtol=1e-4, atol=1e-6)


# -- sequences and optionals ---------------------------------------------------------------


def test_split_map_concat_forward_and_gradient():
    """SplitToSequence -> SequenceMap (each piece * W, W from the outer scope) ->
    ConcatFromSequence; the gradient reaches W and x through every element."""
    body = _graph(
        [helper.make_node("Mul", ["piece", "W"], ["out"])],
        "map",
        [_vi("piece", FLOAT, [1, 3])],
        [_vi("out", FLOAT, [1, 3])],
    )
    nodes = [
        helper.make_node("SplitToSequence", ["x"], ["seq"], axis=0),
        helper.make_node("SequenceMap", ["seq"], ["mapped"], body=body),
        helper.make_node("ConcatFromSequence", ["mapped"], ["y"], axis=0),
        helper.make_node("SequenceLength", ["mapped"], ["n"]),
    ]
    w = np.array([1.0, -2.0, 0.5], np.float32)
    m = _model(
        nodes,
        [_vi("x", FLOAT, [4, 3])],
        [_vi("y", FLOAT, [4, 3]), _vi("n", INT64, [])],
        [_init("W", w)],
    )
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    _same(m, {"x": x})
    mod = load(m)
    xt = Tensor(x.copy(), requires_grad=True)
    y, _ = mod(xt)
    F.sum(F.mul(y, y)).backward()
    np.testing.assert_allclose(
        dict(mod.named_parameters())["W"].grad, 2 * (x * x).sum(0) * w, rtol=1e-5
    )
    np.testing.assert_allclose(xt.grad, 2 * x * w * w, rtol=1e-5)


def test_sequence_insert_erase_at_and_optionals():
    nodes = [
        helper.make_node("SplitToSequence", ["x", "two"], ["s0"], axis=1),
        helper.make_node("SequenceInsert", ["s0", "x", "zero"], ["s1"]),
        helper.make_node("SequenceErase", ["s1"], ["s2"]),
        helper.make_node("SequenceAt", ["s2", "minus1"], ["last"]),
        helper.make_node("SequenceConstruct", ["x", "x"], ["pair"]),
        helper.make_node("ConcatFromSequence", ["pair"], ["stacked"], axis=-1, new_axis=1),
        helper.make_node("Optional", ["x"], ["opt"]),
        helper.make_node("OptionalHasElement", ["opt"], ["has"]),
        helper.make_node("OptionalGetElement", ["opt"], ["got"]),
    ]
    ints = [
        _init("two", np.array(2, np.int64)),
        _init("zero", np.array(0, np.int64)),
        _init("minus1", np.array(-1, np.int64)),
    ]
    outs = [
        _seq_vi("s2"),
        _vi("last", FLOAT, [2, None]),
        _vi("stacked", FLOAT, [2, 5, 2]),
        _vi("has", BOOL, []),
        _vi("got", FLOAT, [2, 5]),
    ]
    m = _model(nodes, [_vi("x", FLOAT, [2, 5])], outs, ints)
    ours = _same(m, {"x": np.arange(10, dtype=np.float32).reshape(2, 5)})
    assert [t.shape for t in ours[0]] == [(2, 5), (2, 2), (2, 2)]


def test_empty_optional_and_bad_position():
    opt_t = helper.make_optional_type_proto(helper.make_tensor_type_proto(FLOAT, [2]))
    nodes = [
        helper.make_node("Optional", [], ["opt"], type=opt_t),
        helper.make_node("OptionalHasElement", ["opt"], ["has"]),
    ]
    m = _model(nodes, [], [_vi("has", BOOL, [])], opset=18)
    assert not load(m)().data
    nodes = [
        helper.make_node("SequenceConstruct", ["x"], ["s"]),
        helper.make_node("SequenceAt", ["s", "pos"], ["y"], name="at"),
    ]
    m = _model(nodes, [_vi("x", FLOAT, [2]), _vi("pos", INT64, [])], [_vi("y", FLOAT, [2])])
    with pytest.raises(BpcliError, match=r"node at \(SequenceAt\).*position 3 is out of range"):
        load(m)(np.ones(2, np.float32), np.array(3))


# -- the importer's subgraph handling --------------------------------------------------------


def test_unsupported_nodes_inside_subgraphs_are_listed_with_their_path():
    inner = _graph(
        [helper.make_node("Foo", ["x"], ["z"], domain="com.acme", name="foo")],
        "inner",
        [],
        [_vi("z", FLOAT, [2])],
    )
    then = _graph(
        [
            helper.make_node(
                "If", ["c"], ["t"], then_branch=inner, else_branch=inner, name="nested"
            ),
            helper.make_node("NoSuchOp", ["t"], ["t2"]),
        ],
        "then",
        [],
        [_vi("t2", FLOAT, [2])],
    )
    other = _graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e", FLOAT, [2])])
    nodes = [
        helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="if0"),
        helper.make_node("Bar", ["y"], ["y2"], name="bar"),
    ]
    m = _model(nodes, [_vi("c", BOOL, []), _vi("x", FLOAT, [2])], [_vi("y2", FLOAT, [2])])
    m.opset_import.append(helper.make_opsetid("com.acme", 1))
    with pytest.raises(BpcliError) as e:
        load(m, check=False)
    msg = str(e.value)
    assert "4 unsupported" in msg
    assert "if0/then_branch/nested/then_branch/foo Foo (domain com.acme, opset 1)" in msg
    assert "if0/then_branch/nested/else_branch/foo Foo" in msg
    assert "if0/then_branch/#1 NoSuchOp" in msg and "bar Bar" in msg


def test_subgraph_reading_an_undefined_outer_name_is_refused_at_load():
    then = _graph(
        [helper.make_node("Neg", ["nowhere"], ["t"])], "then", [], [_vi("t", FLOAT, [None])]
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=then)
    m = _model([node], [_vi("c", BOOL, [])], [_vi("y", FLOAT, [None])])
    with pytest.raises(BpcliError, match="undefined values: nowhere"):
        load(m, check=False)


def test_nested_scopes_errors_and_summary():
    """An If inside a Loop body reads the body's input, the main graph's input and a main-graph
    initializer; a failing node inside is named by its path."""
    branch = _graph(
        [helper.make_node("Mul", ["acc_in", "W"], ["t"])], "then", [], [_vi("t", FLOAT, [2])]
    )
    neg = _graph(
        [helper.make_node("Sub", ["acc_in", "x"], ["e"])], "else", [], [_vi("e", FLOAT, [2])]
    )
    body = _graph(
        [
            helper.make_node("Identity", ["c_in"], ["c_out"]),
            helper.make_node("Greater", ["i", "k"], ["late"]),
            helper.make_node(
                "If", ["late"], ["acc_out"], then_branch=branch, else_branch=neg, name="pick"
            ),
        ],
        "body",
        [_vi("i", INT64, []), _vi("c_in", BOOL, []), _vi("acc_in", FLOAT, [2])],
        [_vi("c_out", BOOL, []), _vi("acc_out", FLOAT, [2])],
    )
    loop = helper.make_node("Loop", ["M", "", "x"], ["y"], body=body, name="loop0")
    w = np.array([2.0, 3.0], np.float32)
    inits = [_init("W", w), _init("k", np.array(1, np.int64))]
    m = _model([loop], [_vi("M", INT64, []), _vi("x", FLOAT, [2])], [_vi("y", FLOAT, [2])], inits)
    x = np.array([1.0, 2.0], np.float32)
    _same(m, {"M": np.array(4), "x": x})
    mod = load(m)
    assert mod.summary().op_counts["If"] == 1 and mod.summary().op_counts["Mul"] == 1
    F.sum(mod(np.array(4), Tensor(x.copy()))).backward()
    # two Sub steps (x - x - x = -x), then two Mul steps: y = -x W W
    np.testing.assert_allclose(dict(mod.named_parameters())["W"].grad, -2 * x * w)

    bad = _model(
        [loop], [_vi("M", INT64, []), _vi("x", FLOAT, [3])], [_vi("y", FLOAT, [None])], inits
    )
    with pytest.raises(BpcliError, match=r"node loop0/body/pick/then_branch/#0 \(Mul\)"):
        load(bad)(np.array(4), np.ones(3, np.float32))
