"""Cases for engine/ops/norm.py.

The running statistics are copied inside each call, so the harness's repeated calls do not see
earlier updates; the in-place update itself is checked in tests/engine/test_norm_running.py.
A "carrier" input (no gradient) passes an int (normalized_shape, num_groups) by its shape.
"""

import torch
from hypothesis import strategies as st

from bpcli import functional as F
from tests.engine.harness import Case

TF = torch.nn.functional


@st.composite
def _nc_star(draw, min_n=2, extra=True):
    n = draw(st.integers(min_n, 4))
    c = draw(st.integers(1, 4))
    rest = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2 if extra else 0)))
    return (n, c, *rest), (c,), (c,), (c,), (c,)


def _bn_inputs(shapes, dtype, rng):
    x = rng.standard_normal(shapes[0]) * 2 + 0.5
    w, b, rm = (rng.standard_normal(s) for s in shapes[1:4])
    rv = rng.uniform(0.5, 2.0, shapes[4])
    return [a.astype(dtype) for a in (x, w, b, rm, rv)]


def _bn_bp(training):
    def f(x, w, b, rm, rv):
        rm, rv = rm.numpy().copy(), rv.numpy().copy()
        return F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3)

    return f


def _bn_torch(training):
    def f(x, w, b, rm, rv):
        return TF.batch_norm(x, rm.clone(), rv.clone(), w, b, training=training, momentum=0.3)

    return f


@st.composite
def _ln_shapes(draw):
    lead = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=2)))
    ns = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    return (*lead, *ns), ns, ns


@st.composite
def _gn_shapes(draw):
    n = draw(st.integers(0, 3))
    g = draw(st.integers(1, 3))
    c = g * draw(st.integers(1, 3))
    rest = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    return (n, c, *rest), (c,), (c,), (g,)


def _ln_noaffine(x, carrier):
    return F.layer_norm(x, carrier.shape)


def _ln_noaffine_t(x, carrier):
    return TF.layer_norm(x, tuple(carrier.shape))


TOL32 = (3e-4, 3e-5)  # float32 normalisation amplifies rounding by 1/std

CASES = [
    Case("batch_norm", _bn_bp(True), _bn_torch(True), _nc_star(), gen=_bn_inputs,
         diff=(True, True, True, False, False), tol32=TOL32, tol64=(1e-8, 1e-10), id="bn_train"),
    Case("batch_norm", _bn_bp(False), _bn_torch(False), _nc_star(min_n=0), gen=_bn_inputs,
         diff=(True, True, True, False, False), tol32=TOL32, tol64=(1e-8, 1e-10), id="bn_eval"),
    Case("batch_norm", lambda x, rm, rv: F.batch_norm(x, None, None, training=True),
         lambda x, rm, rv: TF.batch_norm(x, None, None, training=True),
         _nc_star().map(lambda s: (s[0], s[1], s[2])), diff=(True, False, False), tol32=TOL32,
         tol64=(1e-8, 1e-10), id="bn_train_noaffine_nostats"),
    Case("layer_norm", lambda x, w, b: F.layer_norm(x, w.shape, w, b),
         lambda x, w, b: TF.layer_norm(x, tuple(w.shape), w, b), _ln_shapes(), tol32=TOL32,
         tol64=(1e-8, 1e-10)),
    Case("layer_norm", _ln_noaffine, _ln_noaffine_t, _ln_shapes().map(lambda s: s[:2]),
         diff=(True, False), tol32=TOL32, tol64=(1e-8, 1e-10), id="layer_norm_noaffine"),
    Case("group_norm", lambda x, w, b, k: F.group_norm(x, k.shape[0], w, b),
         lambda x, w, b, k: TF.group_norm(x, k.shape[0], w, b), _gn_shapes(),
         diff=(True, True, True, False), tol32=TOL32, tol64=(1e-8, 1e-10)),
]  # fmt: skip
