"""Import of SVMRegressor and SVMClassifier (import_ops_svm.py): forward against onnxruntime over
kernels, class counts, probabilities, label kinds, input types and post transforms; gradients
w.r.t. X against float64 finite differences of a plain libsvm-style numpy model; refusals; and
real sklearn-onnx conversions when scikit-learn and skl2onnx are installed."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load

ort = pytest.importorskip("onnxruntime")

pytestmark = [pytest.mark.ort]
ML = "ai.onnx.ml"
RNG = np.random.default_rng(0)
KERNELS = ["LINEAR", "POLY", "RBF", "SIGMOID"]
POSTS = ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"]
PARAMS = [0.3, 0.5, 3.0]  # gamma, coef0, degree
ort.set_default_logger_severity(3)


def _model(op, attrs, x, n_out):
    outs = ["y", "z"][:n_out]
    node = helper.make_node(op, ["x"], outs, domain=ML, **attrs)
    vi = helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
    g = helper.make_graph([node], "g", [vi], [helper.make_empty_tensor_value_info(o) for o in outs])
    ops = [helper.make_opsetid("", 17), helper.make_opsetid(ML, 1)]
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 10
    return m


def _run_ort(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _ours(op, attrs, x, n_out=2):
    out = load(_model(op, attrs, x, n_out), check=False)(x)
    return [np.asarray(o.data) for o in (out if isinstance(out, tuple) else (out,))]


def _same(op, attrs, x, n_out=2, rtol=1e-5, atol=1e-6):
    """Every output equals onnxruntime's: labels exactly, scores closely, dtypes and shapes."""
    want = _run_ort(_model(op, attrs, x, n_out), {"x": x})
    got = _ours(op, attrs, x, n_out)
    for g, w in zip(got, want, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        if w.dtype == object or w.dtype.kind in "iu":
            assert g.tolist() == w.tolist()
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    return got


def _svc(k, f, kernel="RBF", proba=False, post="NONE", strings=False, vpc=None):
    """Random SVMClassifier attributes in libsvm's layout (as sklearn-onnx writes them)."""
    vpc = vpc or [int(v) for v in RNG.integers(1, 5, k)]
    v, pairs = sum(vpc), k * (k - 1) // 2
    a = dict(vectors_per_class=vpc, support_vectors=RNG.normal(size=v * f).tolist(),
             coefficients=RNG.normal(size=(k - 1) * v).tolist(),
             rho=RNG.normal(size=pairs).tolist(), kernel_type=kernel, kernel_params=PARAMS,
             post_transform=post)  # fmt: skip
    if proba:
        a["prob_a"] = (-RNG.uniform(0.5, 3, pairs)).tolist()
        a["prob_b"] = RNG.normal(size=pairs).tolist()
    if strings:
        a["classlabels_strings"] = [f"c{i}" for i in range(k)]
    else:
        a["classlabels_ints"] = list(range(10, 10 + k))
    return a


def _svr(kernel="RBF", n=5, f=3, **kw):
    a = dict(kernel_type=kernel, kernel_params=PARAMS, rho=[0.2], n_supports=n,
             coefficients=RNG.normal(size=n).tolist(),
             support_vectors=RNG.normal(size=n * f).tolist())  # fmt: skip
    return {**a, **kw}


def _x(n=7, f=3, dtype=np.float32):
    return RNG.normal(size=(n, f)).astype(dtype)


# -- a plain float64 libsvm model, for the gradients ----------------------------------------


def _k(x, sv, kernel):
    g, c, d = PARAMS
    if kernel == "RBF":
        return np.exp(-g * ((x[:, None, :] - sv[None]) ** 2).sum(-1))
    dot = x @ sv.T
    return {"LINEAR": dot, "POLY": (g * dot + c) ** d, "SIGMOID": np.tanh(g * dot + c)}[kernel]


def _decisions(x, a):
    """libsvm's one-vs-one decision values, pair by pair."""
    vpc, k = a["vectors_per_class"], len(a["vectors_per_class"])
    sv = np.array(a["support_vectors"]).reshape(sum(vpc), -1)
    coef = np.array(a["coefficients"]).reshape(k - 1, -1)
    kx, start, out = _k(x, sv, a["kernel_type"]), np.cumsum([0, *vpc]), []
    for i in range(k):
        for j in range(i + 1, k):
            si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
            out.append(kx[:, si] @ coef[j - 1, si] + kx[:, sj] @ coef[i, sj])
    return np.stack(out, 1) + np.array(a["rho"])


def _probabilities(x, a):
    """Platt's pairwise probabilities coupled as libsvm's multiclass_probability does."""
    d, k = _decisions(x, a), len(a["vectors_per_class"])
    r = 1 / (1 + np.exp(d * np.array(a["prob_a"]) + np.array(a["prob_b"])))
    r = np.clip(r, 1e-7, 1 - 1e-7)
    out = []
    for row in r:
        m, it = np.zeros((k, k)), iter(row)
        for i in range(k):
            for j in range(i + 1, k):
                m[i, j] = next(it)
                m[j, i] = 1 - m[i, j]
        out.append(_couple(m, k))
    return np.array(out)


def _couple(r, k):
    q = -r.T * r
    q[np.diag_indices(k)] = (r**2).sum(0)
    p = np.full(k, 1 / k)
    for _ in range(100):
        qp = q @ p
        pqp = p @ qp
        if np.abs(qp - pqp).max() < 0.005 / k:
            break
        for t in range(k):
            diff = (pqp - qp[t]) / q[t, t]
            p[t] += diff
            pqp = (pqp + diff * (diff * q[t, t] + 2 * qp[t])) / (1 + diff) ** 2
            qp = (qp + diff * q[t]) / (1 + diff)
            p /= 1 + diff
    return p


def _grad_vs_fd(op, attrs, x, fn, out=0, rtol=1e-4, atol=1e-5):
    """bpcli's VJP of a random cotangent of output ``out`` w.r.t. x against central differences
    of the float64 model ``fn``; the forward values too."""
    xt = Tensor(x, requires_grad=True)
    y = load(_model(op, attrs, x, 2 if op == "SVMClassifier" else 1), check=False)(xt)
    y = y[out] if isinstance(y, tuple) else y
    g = RNG.normal(size=y.shape)
    F.sum(F.mul(y, Tensor(g.astype(np.float32)))).backward()
    x64, h, fd = x.astype(np.float64), 1e-6, np.zeros(x.shape)
    np.testing.assert_allclose(y.data, fn(x64), rtol=1e-4, atol=1e-5)
    for i in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[i] = h
        fd[i] = ((fn(x64 + e) - fn(x64 - e)) * g).sum() / (2 * h)
    np.testing.assert_allclose(xt.grad, fd, rtol=rtol, atol=atol)


# -- SVMRegressor ---------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_regressor_vs_ort(kernel):
    x = _x()
    _same("SVMRegressor", _svr(kernel), x, 1)
    _same("SVMRegressor", _svr(kernel), x[0], 1)  # [C] gives [1, 1]
    _same("SVMRegressor", _svr(kernel, one_class=1), x, 1)
    # no support vectors: a linear model whatever the kernel type
    lin = dict(kernel_type=kernel, kernel_params=PARAMS, rho=[0.2], n_supports=0,
               coefficients=RNG.normal(size=3).tolist())  # fmt: skip
    _same("SVMRegressor", lin, x, 1)
    _same("SVMRegressor", lin, x[:0], 1)


@pytest.mark.parametrize("kernel", KERNELS)
def test_regressor_grad_vs_finite_differences(kernel):
    a = _svr(kernel)
    sv = np.array(a["support_vectors"]).reshape(5, 3)
    fn = lambda x: _k(x, sv, kernel) @ np.array(a["coefficients"])[:, None] + 0.2  # noqa: E731
    _grad_vs_fd("SVMRegressor", a, _x(4), fn)
    w = RNG.normal(size=3)
    lin = dict(kernel_type=kernel, kernel_params=PARAMS, rho=[0.2], coefficients=w.tolist())
    _grad_vs_fd("SVMRegressor", lin, _x(4), lambda x: x @ w[:, None] + 0.2)
    # a float64 input keeps its gradient path (the output is float32, as the spec says)
    _grad_vs_fd("SVMRegressor", a, _x(2, dtype=np.float64), fn)


def test_regressor_post_transform_and_one_class():
    a, x = _svr("RBF"), _x()
    (y,) = _ours("SVMRegressor", a, x, 1)
    # NOTE: onnxruntime ignores post_transform; bpcli applies it (the spec's transform)
    (z,) = _ours("SVMRegressor", {**a, "post_transform": "LOGISTIC"}, x, 1)
    np.testing.assert_allclose(z, 1 / (1 + np.exp(-y)), rtol=1e-6)
    m = load(_model("SVMRegressor", {**a, "one_class": 1}, x, 1), check=False)
    out = m(Tensor(x, requires_grad=True))
    assert not out.requires_grad and set(np.unique(out.data)) <= {-1.0, 1.0}
    assert "SVMRegressor" in m.summary().no_gradient_ops


# -- SVMClassifier --------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("proba", [False, True])
def test_classifier_vs_ort(kernel, k, proba):
    x = _x(20)
    _same("SVMClassifier", _svc(k, 3, kernel, proba), x)
    _same("SVMClassifier", _svc(k, 3, kernel, proba, strings=True), x[:3])
    _same("SVMClassifier", _svc(k, 3, kernel, proba), x[0])  # [C] gives [1] and [1, cols]


@pytest.mark.parametrize("post", POSTS)
def test_classifier_post_transforms_vs_ort(post):
    x = _x(9)
    tol = dict(rtol=2e-3, atol=2e-4) if post == "PROBIT" else {}  # Winitzki's fit, float32
    _same("SVMClassifier", _svc(3, 3, "RBF", False, post), x, **tol)
    _same("SVMClassifier", _svc(4, 3, "POLY", True, post), x, **tol)
    _same("SVMClassifier", _svc(2, 3, "SIGMOID", True, post), x, **tol)


def test_classifier_binary_scores():
    """Two classes without probabilities: Z = [-s, s] (NONE), [sigmoid(-s), sigmoid(s)]
    (LOGISTIC) as onnxruntime; SOFTMAX(_ZERO) act on [-s, s] (onnxruntime: [1 - s, s])."""
    a, x = _svc(2, 3, "RBF"), _x(9)
    _, z = _same("SVMClassifier", a, x)
    assert np.array_equal(z[:, 0], -z[:, 1])
    _same("SVMClassifier", {**a, "post_transform": "LOGISTIC"}, x)
    e = np.exp(z - z.max(1, keepdims=True))
    for post in ("SOFTMAX", "SOFTMAX_ZERO"):
        _, got = _ours("SVMClassifier", {**a, "post_transform": post}, x)
        np.testing.assert_allclose(got, e / e.sum(1, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32])
def test_classifier_input_types_vs_ort(dtype):
    x = (_x(6) * 3).astype(dtype)
    _same("SVMClassifier", _svc(3, 3, "RBF", True), x)
    _same("SVMClassifier", _svc(3, 3, "LINEAR"), x)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("proba", [False, True])
def test_classifier_linear_form_vs_ort(k, positive, proba):
    """No support vectors: one coefficient row per class, rho[0] for all; with two classes the
    label follows onnxruntime's thresholds (0.5 when every coefficient is >= 0, else 0)."""
    x = _x(30)
    c = RNG.normal(size=k * 3) * 0.4
    a = dict(coefficients=(np.abs(c) if positive else c).tolist(), rho=[0.1],
             kernel_type="RBF", kernel_params=PARAMS, classlabels_ints=list(range(k)))  # fmt: skip
    if proba:
        a.update(prob_a=[1.0], prob_b=[0.0])
    for post in POSTS:
        tol = dict(rtol=2e-3, atol=2e-4) if post == "PROBIT" else {}
        _same("SVMClassifier", {**a, "post_transform": post}, x, **tol)


def test_classifier_tied_votes_and_empty_batch():
    # four classes, all-zero coefficients: every decision is its rho, so votes can tie
    a = _svc(4, 2, "LINEAR")
    a["coefficients"] = [0.0] * len(a["coefficients"])
    a["rho"] = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    _same("SVMClassifier", a, _x(3, 2))
    _same("SVMClassifier", _svc(3, 2, "RBF", True), _x(0, 2))


@pytest.mark.parametrize("kernel", KERNELS)
def test_classifier_decision_grad_vs_finite_differences(kernel):
    a = _svc(3, 3, kernel)
    _grad_vs_fd("SVMClassifier", a, _x(4), lambda x: _decisions(x, a), out=1)
    s = {**a, "post_transform": "SOFTMAX"}

    def softmax(x):
        e = np.exp(_decisions(x, a))
        return e / e.sum(1, keepdims=True)

    _grad_vs_fd("SVMClassifier", s, _x(4), softmax, out=1)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_classifier_probability_grad_vs_finite_differences(k):
    a = _svc(k, 3, "RBF", proba=True)
    _grad_vs_fd("SVMClassifier", a, _x(4), lambda x: _probabilities(x, a), out=1, rtol=1e-3)


def test_refusals():
    x = _x(3)
    bad = [
        ("SVMClassifier", {**_svc(2, 3), "post_transform": "PROBIT"}, "PROBIT with two"),
        ("SVMClassifier", {**_svc(3, 3), "kernel_type": "CUBIC"}, "kernel_type 'CUBIC'"),
        ("SVMClassifier", {**_svc(3, 3), "kernel_params": [0.1, 2.0]}, "kernel_params has 2"),
        ("SVMClassifier", {**_svc(3, 3), "rho": [0.0]}, "need"),
        ("SVMClassifier", {**_svc(3, 3), "vectors_per_class": [1, 1]}, "vectors_per_class"),
        ("SVMClassifier", {**_svc(3, 3), "classlabels_ints": [1]}, "2 or more labels"),
        ("SVMClassifier", {**_svc(3, 3), "post_transform": "SQUASH"}, "post_transform 'SQUASH'"),
        ("SVMClassifier", {**_svc(3, 3, proba=True), "prob_b": [0.1]}, "prob_a as long"),
        ("SVMRegressor", {**_svr(), "one_class": 1, "post_transform": "LOGISTIC"}, "one_class"),
        ("SVMRegressor", {**_svr(), "n_supports": 4}, "n_supports 4"),
        ("SVMRegressor", {k: v for k, v in _svr().items() if k != "rho"}, "rho are required"),
    ]
    for op, attrs, msg in bad:
        with pytest.raises(BpcliError, match=msg):
            _ours(op, attrs, x, 2 if op == "SVMClassifier" else 1)
    with pytest.raises(BpcliError, match="the input has 2 features, the model 3"):
        _ours("SVMClassifier", _svc(3, 3), x[:, :2])
    with pytest.raises(BpcliError, match="shape"):
        _ours("SVMRegressor", _svr(), x.reshape(1, 3, 3), 1)


# -- real sklearn-onnx conversions ----------------------------------------------------------


def _sklearn():
    pytest.importorskip("sklearn")
    return pytest.importorskip("skl2onnx")


def _converted(est, x):
    skl2onnx = _sklearn()
    opts = {id(est): {"zipmap": False}} if hasattr(est, "classes_") else None
    return skl2onnx.to_onnx(est, x[:1], options=opts, target_opset={"": 17, ML: 1})


def _same_graph(model, x):
    want = _run_ort(model, {model.graph.input[0].name: x})
    out = load(model)(x)
    got = [np.asarray(o.data) for o in (out if isinstance(out, tuple) else (out,))]
    for g, w in zip(got, want, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        if w.dtype == object:
            assert g.tolist() == w.tolist()
        else:
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    return got


def test_sklearn_regressors():
    _sklearn()
    from sklearn.svm import SVR, NuSVR, OneClassSVM

    x = _x(40, 4)
    y = x[:, 0] - 2 * x[:, 1] ** 2
    for est in (SVR(), NuSVR(kernel="poly", degree=2), SVR(kernel="sigmoid"), OneClassSVM()):
        est.fit(x, y)
        got = _same_graph(_converted(est, x), x)
        if isinstance(est, OneClassSVM):
            assert got[0].ravel().tolist() == est.predict(x).tolist()
        else:
            np.testing.assert_allclose(got[0].ravel(), est.predict(x), rtol=1e-4, atol=1e-4)
    # the gradient through the whole converted graph, against sklearn's own float64 predict
    est = SVR().fit(x, y)
    xt = Tensor(x[:3], requires_grad=True)
    F.sum(load(_converted(est, x))(xt)).backward()
    h, x64 = 1e-5, x[:3].astype(np.float64)
    fd = np.zeros(x64.shape)
    for i in np.ndindex(x64.shape):
        e = np.zeros(x64.shape)
        e[i] = h
        fd[i] = (est.predict(x64 + e) - est.predict(x64 - e)).sum() / (2 * h)
    np.testing.assert_allclose(xt.grad, fd, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # sklearn 1.9 deprecates probability=True
def test_sklearn_classifiers():
    _sklearn()
    from sklearn.svm import SVC, NuSVC

    x = _x(60, 3)
    y3 = np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5])
    y2 = (x[:, 2] > 0).astype(np.int64)
    cases = [
        (SVC(), y2),
        (SVC(kernel="poly", probability=True, random_state=0), y2),
        (SVC(kernel="linear"), y3),  # one-vs-rest scores built by further ops
        (SVC(decision_function_shape="ovo", probability=True, random_state=0), y3),
        (NuSVC(kernel="sigmoid", nu=0.3), np.array(["a", "b", "c"], object)[y3]),
    ]
    for est, y in cases:
        est.fit(x, y)
        got = _same_graph(_converted(est, x), x)
        assert got[0].tolist() == est.predict(x).tolist()
