"""The newer maths, predicates, logic/bitwise ops, activations and BCE through the exporter,
compared with onnxruntime (each emitter of ``bpcli/onnx/export_math.py`` is used here)."""

from __future__ import annotations

import numpy as np
import pytest

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn import Parameter
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort

f32 = np.float32


def _f(t):
    return F.astype(t, f32)


FUNCS = {
    "trig": lambda m, x: (F.tan(x * 0.5) + F.asin(F.tanh(x) * 0.9) + F.acos(F.tanh(x) * 0.9)
                          + F.atan(x) + F.sinh(x) + F.cosh(x) + F.asinh(x)
                          + F.acosh(x * x + 1.5) + F.atanh(F.tanh(x) * 0.9)),
    "logs_exps": lambda m, x: (F.log2(x * x + 0.1) + F.log10(x * x + 0.1) + F.log1p(x * x)
                               + F.expm1(x) + F.exp2(x) + F.reciprocal(x * x + 0.5)
                               + F.square(x)),
    "rounding": lambda m, x: (F.floor(x * 3) + F.ceil(x * 3) + F.trunc(x * 3) + F.round(x * 3)
                              + F.round(x * 30, decimals=-1) + F.round(x, decimals=2)
                              + F.frac(x * 3) + F.sign(x)),
    "binary": lambda m, x: (F.atan2(x, m.w) + F.copysign(x, m.w) + F.logaddexp(x, m.w)
                            + F.hypot(x, m.w) + F.lerp(x, m.w, 0.3)
                            + F.lerp(x, m.w, F.sigmoid(x) * 2 - 0.5)),
    "atan2_quadrants": lambda m, x: F.atan2(x, -x[:, :1]) + F.atan2(x * 0, x) + F.atan2(-x, x),
    "mod_div": lambda m, x: (F.fmod(x * 5, m.w) + x * 5 % m.w + (x * 5) // m.w
                             + F.div(x * 5, m.w, rounding_mode="trunc")),
    "int_mod_div": lambda m, x: _f(F.fmod(F.astype(x * 9, np.int64), 4)
                                   + F.astype(x * 9, np.int64) % -3
                                   + F.astype(x * 9, np.int64) // 4
                                   + F.div(F.astype(x * 9, np.int64), -4, rounding_mode="trunc")),
    "predicates": lambda m, x: _f(F.isnan(F.log(x)) | F.isinf(1 / F.round(x))
                                  | F.isfinite(F.astype(x, np.int64))) + _f(F.isfinite(F.log(x))),
    "isclose_logic": lambda m, x: _f(F.logical_xor(F.isclose(x, F.round(x, decimals=1),
                                                             atol=0.03), x > 0)
                                     & F.logical_not(x * 0)) + _f(F.logical_and(x, x > 0.5))
                                  + _f(F.logical_or(x > 1, x < -1)),
    "bool_bitwise": lambda m, x: _f(((x > 0) & (x < 1)) | ~(x > -0.5) ^ (x > 2)),
    "activations": lambda m, x: (F.logsigmoid(x * 4) + F.hardswish(x * 4) + F.hardsigmoid(x * 4)
                                 + F.celu(x, 0.5) + F.mish(x) + F.softsign(x)
                                 + F.softmin(x, dim=1) + F.glu(F.concat([x, x * 2], 2))
                                 + F.prelu(x, m.p) + F.normalize(x)),
    "bce": lambda m, x: (F.binary_cross_entropy(F.sigmoid(x), F.sigmoid(x * 2), reduction="none")
                         + F.binary_cross_entropy(F.sigmoid(x), F.sigmoid(-x), m.w)),
    "cosine_similarity": lambda m, x: F.cosine_similarity(x, x * m.w + 1) + F.cosine_similarity(
        x * 1e-12, x, dim=2).sum(axis=1, keepdims=True),
}  # fmt: skip


def _model(fn):
    w = np.abs(randn(4, seed=5)) + 0.5
    w[::2] *= -1
    return Fn(fn, w=Parameter(w), p=Parameter(randn(3, seed=6) * 0.2))


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function(name, opset, tmp_path):
    # outputs that round or compare (floor, isclose, ...) may flip on an input a float ulp off
    check_export(_model(FUNCS[name]), randn(2, 3, 4), tmp_path, opset)


@pytest.mark.parametrize("opset", [o for o in OPSETS if o >= 18])
def test_integer_bitwise(opset, tmp_path):
    def fn(m, x):
        i = F.astype(x * 50, np.int32)
        return _f((i & 7) | (i ^ -3) + ~i)

    check_export(_model(fn), randn(2, 3, 4), tmp_path, opset)


@pytest.mark.parametrize("opset", OPSETS)
def test_unsigned_shifts(opset, tmp_path):
    def fn(m, x):
        u = F.astype(F.abs(x) * 50, np.uint8)
        s = F.astype(F.abs(x) * 5, np.uint8)
        return _f(u << s) + _f(u >> s) + _f(u << 9)

    check_export(_model(fn), randn(2, 3, 4), tmp_path, opset)


def test_gaps_are_clear_errors(tmp_path):
    import bpcli as bp

    m = _model(lambda m, x: _f(F.astype(x * 9, np.int32) << 2))
    with pytest.raises(BpcliError, match="unsigned"):
        bp.onnx.export(m, randn(2, 3, 4), tmp_path / "a.onnx")
    m = _model(lambda m, x: _f(F.astype(x * 9, np.int32) & 2))
    with pytest.raises(BpcliError, match="opset >= 18"):
        bp.onnx.export(m, randn(2, 3, 4), tmp_path / "b.onnx", opset=17)
