"""Import of the support vector machines of ``ai.onnx.ml`` (opset 1): SVMRegressor and
SVMClassifier, as sklearn-onnx writes them for SVR, NuSVR, OneClassSVM, SVC and NuSVC.

The kernel between the input and the constant support vectors (LINEAR ``x.v``, POLY
``(g x.v + c)^d``, RBF ``exp(-g |x - v|^2)``, SIGMOID ``tanh(g x.v + c)``), the decision values,
Platt's pairwise probabilities and libsvm's pairwise coupling (unrolled as onnxruntime iterates
it) compose engine ops, so gradients reach the input X. The predicted labels (one-vs-one votes)
and the one-class sign are piecewise constant.

The spec says little; onnxruntime's ``svmclassifier.cc``/``svmregressor.cc`` is followed:
kernel and decision values in float64 (onnxruntime sums the decision in double), then float32;
without support vectors a model is linear (the kernel type is ignored and ``rho[0]`` is the
intercept of every class); with support vectors the labels come from the votes, never from
the probabilities, and pair (i, j) votes ``i`` when its decision is > 0. Z is [N, K(K-1)/2]
decision values, [N, K] probabilities with prob_a/prob_b, [N, K] linear scores, or [-s, s] for
two classes without probabilities. Two places follow the spec instead (noted where they are):
SVMRegressor applies its post_transform (onnxruntime ignores it), and a two-class model without
probabilities applies SOFTMAX and SOFTMAX_ZERO to [-s, s], as onnx's reference does
(onnxruntime writes [1 - s, s] untransformed for those two; its LOGISTIC gives
[sigmoid(-s), sigmoid(s)], as here).
"""

from __future__ import annotations

import numpy as np

from bpcli import functional as F
from bpcli.onnx.importer.ops.elementwise import grad
from bpcli.onnx.importer.ops.ml import _POST, ML, _labels, post_transform
from bpcli.onnx.importer.table import NodeView, register, wrap

_KERNELS = ("LINEAR", "POLY", "RBF", "SIGMOID")
_MAX_ITER = 100  # onnxruntime's bound on the pairwise-coupling iterations


# -- the kernel -----------------------------------------------------------------------------


class _Kernel:
    """A kernel against constant support vectors ``sv`` [V, F] (float64)."""

    def __init__(self, node: NodeView, sv: np.ndarray, kind: str | None = None):
        kind = kind or node.attr("kernel_type", "LINEAR")
        if kind not in _KERNELS:
            raise ValueError(f"kernel_type {kind!r} is not one of {', '.join(_KERNELS)}")
        params = list(node.attr("kernel_params") or [])
        if params and len(params) != 3:
            raise ValueError(f"kernel_params has {len(params)} values (gamma, coef0, degree)")
        self.kind, self.sv = kind, sv
        self.gamma, self.coef0, self.degree = params or [0.0, 0.0, 0.0]
        self.sv_sq = (sv * sv).sum(axis=1)

    def __call__(self, x):
        """x [N, F] (float64) -> k(x, sv) [N, V]."""
        dot = F.matmul(x, wrap(self.sv.T.copy()))
        if self.kind == "LINEAR":
            return dot
        if self.kind == "RBF":
            # |x - v|^2 expanded, so no [N, V, F] difference is formed (float64 keeps it exact
            # enough: onnxruntime's direct float32 sum is the less precise of the two)
            d2 = F.add(F.sub(F.sum(F.mul(x, x), 1, True), F.mul(dot, 2.0)), wrap(self.sv_sq))
            return F.exp(F.mul(d2, -self.gamma))
        z = F.add(F.mul(dot, self.gamma), self.coef0)
        return F.pow(z, self.degree) if self.kind == "POLY" else F.tanh(z)


def _as_rows64(x, n_features: int, node: NodeView):
    """The input as float64 [N, F] (on the gradient path when it is a float)."""
    if x.ndim not in (1, 2):
        raise node.fail(f"the input must have shape [C] or [N, C], got {list(x.shape)}")
    if x.shape[-1] != n_features:
        raise node.fail(f"the input has {x.shape[-1]} features, the model {n_features}")
    if grad(x) and x.dtype.kind == "f":
        x = x if x.dtype == np.float64 else F.astype(x, np.float64)
        return F.reshape(x, (1, n_features)) if x.ndim == 1 else x
    return wrap(np.asarray(x.data, dtype=np.float64).reshape(-1, n_features))


def _floats(node: NodeView, name: str) -> np.ndarray:
    return np.asarray(node.attr(name) or [], dtype=np.float64).reshape(-1)


def _checked(build):
    """An OpSpec check that builds the node's constants once (the reason it fails, or None)."""

    def check(node: NodeView) -> str | None:
        try:
            node.state["svm"] = build(node)
        except ValueError as e:
            return f"malformed or unsupported SVM: {e}"
        return None

    return check


def _state(node: NodeView, build) -> dict:
    if "svm" not in node.state and (why := _checked(build)(node)):
        raise node.fail(why)
    return node.state["svm"]


# -- SVMRegressor ---------------------------------------------------------------------------


def _build_regressor(node: NodeView) -> dict:
    coef, rho = _floats(node, "coefficients"), _floats(node, "rho")
    post, n = node.attr("post_transform", "NONE"), node.attr("n_supports", 0)
    if not coef.size or not rho.size:
        raise ValueError("coefficients and rho are required")
    if post not in _POST:
        raise ValueError(f"post_transform {post!r} is not one of {', '.join(_POST)}")
    if node.attr("one_class", 0) and post != "NONE":
        raise ValueError(f"one_class gives -1 or 1; post_transform {post!r} has no meaning there")
    if n > 0:
        sv = _floats(node, "support_vectors")
        if coef.size != n or sv.size % n or not sv.size:
            raise ValueError(f"{coef.size} coefficients and {sv.size} support vector values "
                             f"for n_supports {n}")  # fmt: skip
        kern = _Kernel(node, sv.reshape(n, -1))
    else:  # no support vectors: a linear model whatever the kernel type (as onnxruntime)
        kern = _Kernel(node, coef.reshape(1, -1), "LINEAR")
        coef = np.ones(1)
    return {"kernel": kern, "coef": coef.reshape(-1, 1), "rho": rho[0], "post": post}


@register("SVMRegressor", domain=ML, check=_checked(_build_regressor))
def svm_regressor(ctx, node, inputs):
    """y = sum_v coef[v] k(x, sv[v]) + rho[0] as [N, 1]; one_class: 1 where y > 0 else -1."""
    s = _state(node, _build_regressor)
    k = s["kernel"]
    x = _as_rows64(inputs[0], k.sv.shape[1], node)
    y = F.add(F.matmul(k(x), wrap(s["coef"])), s["rho"])
    y = F.astype(y, np.float32)
    if node.attr("one_class", 0):
        if grad(y):
            ctx.module._note_nograd(node)  # a sign: piecewise constant
        return wrap(np.where(y.data > 0, 1, -1).astype(np.float32))
    # NOTE: onnxruntime ignores post_transform here; the spec's transform is applied
    return post_transform(s["post"], y, ctx, node)


# -- SVMClassifier --------------------------------------------------------------------------


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k - 1) for j in range(i + 1, k)]


def _pair_weights(coef: np.ndarray, vpc: list[int], k: int) -> np.ndarray:
    """[V, P]: pair (i, j) sums class i's vectors with coefficient row j - 1 and class j's with
    row i (libsvm's layout: K - 1 rows of V, the diagonal dropped)."""
    start = np.concatenate([[0], np.cumsum(vpc)])
    w = np.zeros((coef.shape[1], len(_pairs(k))))
    for p, (i, j) in enumerate(_pairs(k)):
        a, b = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
        w[a, p], w[b, p] = coef[j - 1, a], coef[i, b]
    return w


def _build_classifier(node: NodeView) -> dict:
    labels = node.attr("classlabels_strings") or node.attr("classlabels_ints")
    coef, rho = _floats(node, "coefficients"), _floats(node, "rho")
    pa, pb = _floats(node, "prob_a"), _floats(node, "prob_b")
    post, vpc = node.attr("post_transform", "NONE"), list(node.attr("vectors_per_class") or [])
    if not labels or len(labels) < 2:
        raise ValueError(
            "classlabels_strings or classlabels_ints with 2 or more labels is required"
        )
    if not coef.size or not rho.size or pa.size != pb.size:
        raise ValueError("coefficients and rho are required, and prob_a as long as prob_b")
    if post not in _POST:
        raise ValueError(f"post_transform {post!r} is not one of {', '.join(_POST)}")
    k, v = len(labels), sum(vpc)
    s = {"labels": labels, "post": post, "k": k, "proba": pa.size > 0}
    if v <= 0:  # liblinear's form: one coefficient row per class, rho[0] for them all
        if coef.size % k:
            raise ValueError(f"{coef.size} coefficients for {k} classes")
        s["kernel"] = _Kernel(node, coef.reshape(k, -1), "LINEAR")
        s["linear"], s["positive"], s["rho"] = True, bool((coef >= 0).all()), rho[0]
        return s
    n_pairs, sv = k * (k - 1) // 2, _floats(node, "support_vectors")
    if len(vpc) != k or min(vpc) < 0 or sv.size % v or not sv.size:
        raise ValueError(f"vectors_per_class {vpc} and {sv.size} support vector values for "
                         f"{k} classes")  # fmt: skip
    if coef.size < (k - 1) * v or rho.size < n_pairs or 0 < pa.size < n_pairs:
        raise ValueError(f"{k} classes and {v} vectors need {(k - 1) * v} coefficients, "
                         f"{n_pairs} rho (and prob_a, prob_b) values")  # fmt: skip
    if k == 2 and not s["proba"] and post == "PROBIT":
        raise ValueError("post_transform PROBIT with two classes and no probabilities gives "
                         "one score, not two")  # fmt: skip
    s["kernel"] = _Kernel(node, sv.reshape(v, -1))
    s["w"] = _pair_weights(coef[: (k - 1) * v].reshape(k - 1, v), vpc, k)
    s["rho"], s["linear"] = rho[:n_pairs], False
    s["pa"], s["pb"] = pa[:n_pairs].astype(np.float32), pb[:n_pairs].astype(np.float32)
    return s


@register("SVMClassifier", domain=ML, check=_checked(_build_classifier))
def svm_classifier(ctx, node, inputs):
    s = _state(node, _build_classifier)
    kern = s["kernel"]
    x = _as_rows64(inputs[0], kern.sv.shape[1], node)
    if s["linear"]:  # [N, K] scores x.w[c] + rho[0]
        z = F.astype(F.add(kern(x), s["rho"]), np.float32)
        pick = _linear_pick(z.data, s)
    else:
        d = F.add(F.matmul(kern(x), wrap(s["w"])), wrap(s["rho"]))  # [N, P] decision values
        pick = np.argmax(_votes(d.data, s["k"]), axis=1)  # the first of tied classes
        z = F.astype(d, np.float32)
        if s["proba"]:
            z = _coupling(_pair_probabilities(z, s), s["k"])
        elif s["k"] == 2:
            # NOTE: onnxruntime writes [1 - s, s] untransformed for SOFTMAX and SOFTMAX_ZERO;
            # the spec's transform is applied to the two scores, as onnx's reference does
            z = F.concat([F.neg(z), z], 1)
    return wrap(_labels(s["labels"], pick)), post_transform(s["post"], z, ctx, node)


def _linear_pick(z: np.ndarray, s: dict) -> np.ndarray:
    """onnxruntime's two-class rule for the linear form: class 1 when the top score is >= 0.5
    (all coefficients >= 0) or > 0 (some negative), unless probabilities were asked for."""
    top = np.argmax(z, axis=1)
    if s["k"] != 2 or s["proba"]:
        return top
    m = z.max(axis=1, initial=-np.inf)
    return np.where(m >= 0.5 if s["positive"] else m > 0, 1, top)


def _votes(d: np.ndarray, k: int) -> np.ndarray:
    """[N, K] one-vs-one votes: pair (i, j) votes i when its decision is > 0, else j."""
    pi, pj = (np.eye(k)[[p[q] for p in _pairs(k)]] for q in (0, 1))  # [P, K] each
    pos = (d > 0).astype(np.float64)
    return pos @ pi + (1 - pos) @ pj


def _pair_probabilities(d, s: dict):
    """r [N, K, K]: r[i, j] = Platt's P(i | i or j) = 1 - sigmoid(A d + B), clipped to
    [1e-7, 1 - 1e-7], r[j, i] = 1 - r[i, j] (float32, as onnxruntime)."""
    k, pairs = s["k"], _pairs(s["k"])
    r = F.sub(1.0, F.sigmoid(F.add(F.mul(d, wrap(s["pa"])), wrap(s["pb"]))))
    r = F.clip(r, 1e-7, float(np.float32(1) - np.float32(1e-7)))
    up, lo = np.zeros((len(pairs), k * k), np.float32), np.zeros((len(pairs), k * k), np.float32)
    for p, (i, j) in enumerate(pairs):
        up[p, i * k + j], lo[p, j * k + i] = 1, 1
    flat = F.add(F.matmul(r, wrap(up)), F.matmul(F.sub(1.0, r), wrap(lo)))
    return F.reshape(flat, (d.shape[0], k, k))


def _coupling(r, k: int):
    """libsvm's multiclass_probability (Wu, Lin and Weng 2004, method 2) on each row, as
    onnxruntime runs it in float32: at most 100 sweeps, each row stopping once
    max |Qp - pQp| < 0.005 / K. A stopped row's steps are zero, which leaves it as it was."""
    n = r.shape[0]
    eye = np.eye(k, dtype=np.float32)
    # Q[t, t] = sum_j r[j, t]^2, Q[t, j] = -r[j, t] r[t, j]
    diag = F.mul(F.reshape(F.sum(F.mul(r, r), 1), (n, k, 1)), wrap(eye))
    q = F.sub(diag, F.mul(r, F.permute(r, 0, 2, 1)))
    qt = [F.getitem(q, (slice(None), t)) for t in range(k)]  # rows Q[t, :], [N, K]
    qtt = [F.getitem(q, (slice(None), t, t)) for t in range(k)]
    p = wrap(np.full((n, k), 1 / np.float32(k), np.float32))
    done, eps = np.zeros(n, bool), np.float32(0.005) / np.float32(k)
    for _ in range(_MAX_ITER):
        qp = F.sum(F.mul(q, F.reshape(p, (n, 1, k))), 2)
        pqp = F.sum(F.mul(p, qp), 1)
        done |= np.abs(qp.data - pqp.data[:, None]).max(axis=1, initial=0) < eps
        if done.all():
            break
        live = wrap(~done)
        for t in range(k):
            qp_t = F.getitem(qp, (slice(None), t))
            diff = F.where(live, F.div(F.sub(pqp, qp_t), qtt[t]), 0.0)
            p = F.add(p, F.mul(F.reshape(diff, (n, 1)), wrap(eye[t])))
            one = F.add(diff, 1.0)
            step = F.mul(diff, F.add(F.mul(diff, qtt[t]), F.mul(qp_t, 2.0)))
            pqp = F.div(F.div(F.add(pqp, step), one), one)
            one = F.reshape(one, (n, 1))
            qp = F.div(F.add(qp, F.mul(F.reshape(diff, (n, 1)), qt[t])), one)
            p = F.div(p, one)
    return p
