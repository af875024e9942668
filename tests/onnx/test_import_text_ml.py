"""Import of the string ops (import_ops_text.py) and the ai.onnx.ml domain (import_ops_ml.py):
forward against onnxruntime, value for value and in dtype, over batteries of attribute cases
and random tree ensembles; gradients of the engine-composed ML ops against torch; refusals of
what bpcli cannot reproduce faithfully."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from bpcli import functional as F
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.ort, pytest.mark.torch]
T = TensorProto
ML = "ai.onnx.ml"
RNG = np.random.default_rng(0)
ort.set_default_logger_severity(3)


def S(*a):  # noqa: N802 - a string tensor, as onnx writes them
    return np.array(list(a), dtype=object)


def _model(node, feeds: dict, opset: int = 21, ml: int | None = None):
    vis = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]  # fmt: skip
    outs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(ML, ml)] if ml else [])
    m = helper.make_model(helper.make_graph([node], "g", vis, outs), opset_imports=ops)
    m.ir_version = 10
    return m


def _ort(node, feeds, **kw):
    m = _model(node, feeds, **kw)
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )


def _ours(node, feeds, wrt=(), **kw):
    args = [Tensor(v, requires_grad=True) if k in wrt else v for k, v in feeds.items()]
    out = load(_model(node, feeds, **kw), check=False)(*args)
    return out if isinstance(out, tuple) else (out,)


def _same(node, feeds, rtol=1e-5, atol=1e-6, **kw):
    """Every output equals onnxruntime's, in dtype and value (NaN where it has NaN)."""
    want = _ort(node, feeds, **kw)
    got = _ours(node, feeds, **kw)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        g = np.asarray(g.data)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        assert g.shape == w.shape, (g.shape, w.shape)
        if w.dtype == object or w.dtype.kind in "biu":
            assert g.tolist() == w.tolist()
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _node(op, inputs, outputs, ml=False, **attrs):
    return helper.make_node(op, inputs, outputs, domain=ML if ml else "", **attrs)


# -- strings ---------------------------------------------------------------------------------

WORDS = S("straße", "ΟΔΟΣ", "İstanbul", "ǅ", "ﬁ", "Monday", "MONDAY", "ÉCOLE", "")


@pytest.mark.parametrize("action", ["NONE", "LOWER", "UPPER"])
@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
@pytest.mark.parametrize("sensitive", [0, 1])
def test_string_normalizer_vs_ort(action, locale, sensitive):
    # this machine has no en_US locale for onnxruntime; C.UTF-8 has the same case tables
    n = _node("StringNormalizer", ["x"], ["y"], case_change_action=action, locale=locale,
              is_case_sensitive=sensitive, stopwords=["monday", "école", "οδοσ"])  # fmt: skip
    _same(n, {"x": WORDS}, opset=10)
    _same(n, {"x": WORDS.reshape(1, -1)}, opset=10)
    _same(n, {"x": S("monday", "Monday")}, opset=10)  # all dropped: [""]


def test_string_normalizer_refusals():
    with pytest.raises(BpcliError, match="locale"):
        _ours(_node("StringNormalizer", ["x"], ["y"], locale="tr_TR"), {"x": S("i")}, opset=10)
    with pytest.raises(BpcliError, match="case_change_action"):
        _ours(_node("StringNormalizer", ["x"], ["y"], case_change_action="upper"),
              {"x": S("i")}, opset=10)  # fmt: skip
    with pytest.raises(BpcliError, match=r"\[1, C\]"):
        _ours(_node("StringNormalizer", ["x"], ["y"]), {"x": S("a", "b").reshape(2, 1)}, opset=10)


@pytest.mark.parametrize("delimiter", [None, "", ".", "ab", " "])
@pytest.mark.parametrize("maxsplit", [None, 0, 1, 2, -1])
def test_string_split_vs_ort(delimiter, maxsplit):
    kw = {k: v for k, v in (("delimiter", delimiter), ("maxsplit", maxsplit)) if v is not None}
    x = S("", " a b  c ", "a..b.", "\ta\u3000b\x0bc", "xabyabab", "  ", "a.b c.d  e")
    n = _node("StringSplit", ["x"], ["y", "z"], **kw)
    _same(n, {"x": x})
    _same(n, {"x": x[:6].reshape(2, 3)})
    _same(n, {"x": S("", "")})


def test_string_concat_vs_ort():
    n = _node("StringConcat", ["a", "b"], ["c"])
    _same(n, {"a": S("x", "yé", ""), "b": S("1", "", "的")})
    _same(n, {"a": S("x", "y").reshape(2, 1), "b": S("1", "2", "3")})
    _same(n, {"a": np.array("cat", dtype=object), "b": np.array("s", dtype=object)})
    _same(n, {"a": S().reshape(0, 2), "b": S("1", "2")})


REGEX_CASES = [
    (r"a\sb", ["a\x0bb", "a b", "a\u3000b", "a\tb"]),  # RE2's \s: [\t\n\f\r ], no \v
    (r"\w+\d", ["héllo1", "abc2", "ab_9", "٣"]),  # ASCII classes
    (r"a{,3}", ["a{,3}", "aa"]),  # literal in RE2
    (r"[[:alpha:]]+[[:digit:][:space:]]", ["abc1", "a:", "ab "]),
    (r"(?i)école|straße", ["ÉCOLE", "STRASSE", "Straße"]),
    (r"a$", ["a", "a\n"]),
    (r"(?m)a$", ["a", "a\n"]),
    (r"\bfoo\b.*\Bar", ["foo bar", "foo.xbar", "foobar"]),
    (r"\x{41}\101\0\x42", ["AA\0B", "AA0B"]),
    (r"\Qa.b*\E+c", ["a.b*c", "a.b*a.b*c", "axbc"]),
    (r"[^\d\s]+", ["ab", "a1", "é"]),
    (r"(?P<n>a|b)*?c+?", ["ababc", "cc", ""]),
    (r"x{2,3}y{2}", ["xxyy", "xxxxyy"]),
    (r"[]a-c]+[&~|[]", ["]ab&", "a~", "a["]),
    (r"(?s).\.", ["\n.", "a."]),
    (r"", ["", "a"]),
]


@pytest.mark.parametrize("pattern,words", REGEX_CASES)
def test_regex_full_match_vs_ort(pattern, words):
    n = _node("RegexFullMatch", ["x"], ["y"], pattern=pattern)
    _same(n, {"x": S(*words)})


REFUSED = [r"(a)\1", r"a(?=b)", r"a++", r"\Z", r"a{1001}", r"\pL", r"a(?i)b", r"(?U)a+",
           r"[[:foo:]]", r"[\W]", r"(?x)a"]  # fmt: skip


@pytest.mark.parametrize("pattern", REFUSED)
def test_regex_refused(pattern):
    with pytest.raises(BpcliError, match="pattern"):
        _ours(_node("RegexFullMatch", ["x"], ["y"], pattern=pattern), {"x": S("a")})


def _tfidf(mode, lo, hi, skip, pool, counts, index, weights=None):
    kw = {"pool_strings" if isinstance(pool[0], str) else "pool_int64s": pool}
    if weights is not None:
        kw["weights"] = weights
    return _node("TfIdfVectorizer", ["x"], ["y"], mode=mode, min_gram_length=lo,
                 max_gram_length=hi, max_skip_count=skip, ngram_counts=counts,
                 ngram_indexes=index, **kw)  # fmt: skip


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
@pytest.mark.parametrize("lo,hi", [(1, 1), (1, 2), (2, 2), (1, 3), (2, 3), (3, 3)])
@pytest.mark.parametrize("skip", [0, 1, 3])
def test_tfidf_vs_ort(mode, lo, hi, skip):
    pool = [
        2,
        3,
        5,
        4,
        5,
        6,
        7,
        8,
        6,
        7,
        3,
        3,
        1,
        2,
        3,
        7,
        7,
        7,
    ]  # 4 unigrams, 4 bigrams, 2 trigrams
    counts, index = [0, 4, 12], [3, 0, 9, 1, 2, 4, 5, 8, 6, 7]  # permuted output slots
    w = [0.5, 1.0, 2.0, 0.25, 3.0, 1.5, 0.75, 2.5, 1.25, 4.0]
    x = RNG.integers(1, 9, size=(3, 12))
    for weights in (None, w):
        n = _tfidf(mode, lo, hi, skip, pool, counts, index, weights)
        _same(n, {"x": x.astype(np.int64)}, opset=9)
        _same(n, {"x": x[0].astype(np.int32)}, opset=9)


def test_tfidf_strings_vs_ort():
    pool = ["a", "b", "c", "a", "b", "b", "b", "c", "a"]
    n = _tfidf("TFIDF", 1, 2, 2, pool, [0, 3], [0, 1, 2, 3, 4, 5], [1.0, 2, 3, 4, 5, 6])
    x = S(*"a b b c a b a c c b".split())
    _same(n, {"x": x}, opset=9)
    _same(n, {"x": x.reshape(2, 5)}, opset=9)
    _same(n, {"x": S().reshape(2, 0)}, opset=9)


# -- ai.onnx.ml: element maps ----------------------------------------------------------------


def _grad_vs_torch(node, feeds, torch_fn, out=0, ml=3, rtol=1e-5, atol=1e-5):
    """Forward and the VJP of a random cotangent of output ``out`` against torch on input x."""
    xt = Tensor(feeds["x"], requires_grad=True)
    y = _ours_from(node, feeds, xt, ml)[out]
    g = RNG.standard_normal(y.shape).astype(np.float32)
    F.sum(F.mul(y, Tensor(g))).backward()
    tx = torch.tensor(feeds["x"], requires_grad=True)
    ty = torch_fn(tx)
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=rtol, atol=atol)


def _ours_from(node, feeds, xt, ml):
    args = [xt if k == "x" else v for k, v in feeds.items()]
    out = load(_model(node, feeds, ml=ml), check=False)(*args)
    return out if isinstance(out, tuple) else (out,)


def test_array_feature_extractor_vs_ort_and_grad():
    n = _node("ArrayFeatureExtractor", ["x", "i"], ["y"], ml=True)
    x = RNG.standard_normal((3, 2, 5)).astype(np.float32)
    for idx in ([4, 0, 0], [[1]], 2):
        _same(n, {"x": x, "i": np.array(idx, np.int64)}, ml=3)
    _same(n, {"x": x[0, 0], "i": np.array([3, 1], np.int64)}, ml=3)
    _same(n, {"x": S("a", "b", "c"), "i": np.array([2], np.int64)}, ml=3)
    i = np.array([4, 0, 0], np.int64)
    _grad_vs_torch(n, {"x": x, "i": i}, lambda t: t[..., torch.tensor(i)])
    with pytest.raises(BpcliError, match="out of range"):
        _ours(n, {"x": x, "i": np.array([-1], np.int64)}, ml=3)


def test_binarizer_imputer_one_hot_vs_ort():
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    _same(_node("Binarizer", ["x"], ["y"], ml=True, threshold=0.3), {"x": x}, ml=3)
    xn = np.where(RNG.random((4, 3)) < 0.3, np.nan, x).astype(np.float32)
    for imputed in ([9.0], [1.0, 2.0, 3.0]):
        kw = {"imputed_value_floats": imputed, "replaced_value_float": np.nan}
        _same(_node("Imputer", ["x"], ["y"], ml=True, **kw), {"x": xn}, ml=3)
    xi = RNG.integers(0, 3, (4, 3)).astype(np.int64)
    n = _node("Imputer", ["x"], ["y"], ml=True, imputed_value_int64s=[7], replaced_value_int64=1)
    _same(n, {"x": xi}, ml=3)
    for zeros in (0, 1):
        n = _node("OneHotEncoder", ["x"], ["y"], ml=True, cats_int64s=[0, 1, 2], zeros=zeros)
        _same(n, {"x": xi}, ml=3)
        _same(n, {"x": xi.astype(np.float32) + 0.25}, ml=3)
    n = _node("OneHotEncoder", ["x"], ["y"], ml=True, cats_strings=["a", "b"], zeros=1)
    _same(n, {"x": S("a", "c", "b").reshape(1, 3)}, ml=3)
    n = _node("OneHotEncoder", ["x"], ["y"], ml=True, cats_strings=["a", "b"], zeros=0)
    with pytest.raises(BpcliError, match="not among"):
        _ours(n, {"x": S("a", "c")}, ml=3)


def test_imputer_grad():
    x = np.where(RNG.random((4, 3)) < 0.3, np.nan, RNG.standard_normal((4, 3))).astype(np.float32)
    n = _node("Imputer", ["x"], ["y"], ml=True, imputed_value_floats=[1.0, 2.0, 3.0],
              replaced_value_float=np.nan)  # fmt: skip
    fill = torch.tensor([1.0, 2.0, 3.0]).expand(4, 3)
    _grad_vs_torch(n, {"x": x}, lambda t: torch.where(torch.isnan(t), fill, t))


LABEL_CASES = [
    (1, {"classes_strings": ["a", "b", "c"], "default_int64": 9}, S("b", "z", "c")),
    (1, {"classes_strings": ["a", "b", "c"]}, np.array([2, 5, 0], np.int64)),
    (2, {"keys_strings": ["a", "b", "a"], "values_int64s": [1, 2, 3], "default_int64": 42},
     S("a", "b", "q")),
    (2, {"keys_int64s": [1, 2], "values_strings": ["x", "y"]},
     np.array([[2, 1], [3, 2]], np.int64)),
    (2, {"keys_floats": [0.5, 1.5], "values_floats": [10.0, 20.0]},
     np.array([1.5, 0.5, 2.0], np.float32)),
    (4, {"keys_tensor": helper.make_tensor("k", T.DOUBLE, (3,), [0.1, np.nan, 2.0]),
         "values_tensor": helper.make_tensor("v", T.STRING, (3,), ["a", "b", "c"]),
         "default_tensor": helper.make_tensor("d", T.STRING, (1,), ["?"])},
     np.array([0.1, np.nan, 5.0, 2.0], np.float64)),
    (4, {"keys_strings": ["p", "q"],
         "values_tensor": helper.make_tensor("v", T.INT16, (2,), [3, 4])},
     S("q", "p", "r")),
    (4, {"keys_floats": [0.5, np.nan], "values_int64s": [1, 2]},
     np.array([np.nan, 0.5, 1.0], np.float32)),
    (4, {"keys_strings": ["a"], "values_floats": [2.5], "default_float": 1.25}, S("a", "b")),
]  # fmt: skip


@pytest.mark.parametrize("ml,attrs,x", LABEL_CASES)
def test_label_encoder_vs_ort(ml, attrs, x):
    _same(_node("LabelEncoder", ["x"], ["y"], ml=True, **attrs), {"x": x}, ml=ml)


# -- ai.onnx.ml: linear models, Scaler, Normalizer -------------------------------------------


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
def test_normalizer_vs_ort_and_grad(norm):
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    n = _node("Normalizer", ["x"], ["y"], ml=True, norm=norm)
    _same(n, {"x": np.vstack([x, np.zeros((1, 3), np.float32)])}, ml=3)
    _same(n, {"x": x[0]}, ml=3)
    _same(n, {"x": x.astype(np.float64)}, ml=3)
    div = {"MAX": lambda t: t.amax(1, keepdim=True), "L1": lambda t: t.abs().sum(1, keepdim=True),
           "L2": lambda t: t.square().sum(1, keepdim=True).sqrt()}[norm]  # fmt: skip
    _grad_vs_torch(n, {"x": x}, lambda t: t / div(t))


def test_scaler_vs_ort_and_grad():
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    n = _node("Scaler", ["x"], ["y"], ml=True, offset=[0.5, -1.0, 2.0], scale=[2.0, 1.0, -3.0])
    _same(n, {"x": x}, ml=3)
    _same(n, {"x": x.astype(np.float64)}, ml=3)
    _same(n, {"x": (x * 10).astype(np.int64)}, ml=3)
    off, scale = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([2.0, 1.0, -3.0])
    _grad_vs_torch(n, {"x": x}, lambda t: (t - off) * scale)
    # one scale for every feature (onnxruntime wants as many scales as offsets)
    n = _node("Scaler", ["x"], ["y"], ml=True, offset=[0.5, -1.0, 2.0], scale=[2.0])
    (y,) = _ours(n, {"x": x}, ml=3)
    np.testing.assert_allclose(y.data, (x - [0.5, -1.0, 2.0]) * 2.0, rtol=1e-6)


COEF = RNG.standard_normal(12).astype(np.float32).tolist()


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"])
@pytest.mark.parametrize("targets", [1, 3])
def test_linear_regressor_vs_ort(post, targets):
    x = (RNG.standard_normal((5, 4)) * 0.3).astype(np.float32)
    x[1] = 0
    kw = {"coefficients": COEF[: 4 * targets], "intercepts": [0.1] * targets, "targets": targets}
    n = _node("LinearRegressor", ["x"], ["y"], ml=True, post_transform=post, **kw)
    if targets == 1 and post not in ("NONE", "PROBIT"):
        _same_as_one_target(n, _node("LinearRegressor", ["x"], ["y"], ml=True, **kw), post, x)
        return
    _same(n, {"x": x}, ml=3, atol=1e-5)
    _same(n, {"x": x[0]}, ml=3, atol=1e-5)


def _same_as_one_target(n, n_none, post, x, ml=3):
    """With one output onnxruntime skips every transform but PROBIT; bpcli applies the spec's:
    compare with onnxruntime's untransformed output transformed here."""
    (raw,) = _ort(n_none, {"x": x}, ml=ml)
    want = {"LOGISTIC": 1 / (1 + np.exp(-raw)), "SOFTMAX": np.ones_like(raw),
            "SOFTMAX_ZERO": np.where(np.abs(raw) > 1e-7, 1.0, 0.5)}[post]  # fmt: skip
    (got,) = _ours(n, {"x": x}, ml=ml)
    assert got.dtype == raw.dtype and got.shape == raw.shape
    np.testing.assert_allclose(got.data, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX"])
def test_linear_regressor_grad(post):
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    n = _node("LinearRegressor", ["x"], ["y"], ml=True, coefficients=COEF, intercepts=[0.1] * 3,
              targets=3, post_transform=post)  # fmt: skip
    w = torch.tensor(COEF).reshape(3, 4)
    fn = {"NONE": lambda s: s, "LOGISTIC": torch.sigmoid, "SOFTMAX": lambda s: s.softmax(1)}[post]
    _grad_vs_torch(n, {"x": x}, lambda t: fn(t @ w.T + 0.1))


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
@pytest.mark.parametrize("labels", [{"classlabels_ints": [3, 7]},
                                    {"classlabels_strings": ["no", "yes"]}])  # fmt: skip
def test_linear_classifier_binary_vs_ort(post, labels):
    x = RNG.standard_normal((6, 4)).astype(np.float32)
    n = _node("LinearClassifier", ["x"], ["y", "z"], ml=True, coefficients=COEF[:4],
              intercepts=[0.1], post_transform=post, **labels)  # fmt: skip
    _same(n, {"x": x}, ml=3)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"])
def test_linear_classifier_multi_vs_ort_and_grad(post):
    x = (RNG.standard_normal((6, 4)) * 0.2).astype(np.float32)
    x[0] = 0
    coef = COEF[:8] + [0.0] * 4  # a class scoring 0: SOFTMAX_ZERO leaves it at 0
    n = _node("LinearClassifier", ["x"], ["y", "z"], ml=True, coefficients=coef,
              intercepts=[0.1, -0.2, 0.0], post_transform=post,
              classlabels_strings=list("abc"))  # fmt: skip
    _same(n, {"x": x}, ml=3, atol=1e-5)
    if post in ("NONE", "SOFTMAX"):
        w, b = torch.tensor(coef).reshape(3, 4), torch.tensor([0.1, -0.2, 0.0])
        fn = (lambda s: s) if post == "NONE" else (lambda s: s.softmax(1))
        _grad_vs_torch(n, {"x": x}, lambda t: fn(t @ w.T + b), out=1)


def test_linear_classifier_binary_probit_refused():
    n = _node("LinearClassifier", ["x"], ["y", "z"], ml=True, coefficients=[1.0],
              intercepts=[0.0], post_transform="PROBIT", classlabels_ints=[0, 1])  # fmt: skip
    with pytest.raises(BpcliError, match="PROBIT"):
        _ours(n, {"x": np.ones((2, 1), np.float32)}, ml=3)


# -- ai.onnx.ml: trees ----------------------------------------------------------------------


def _random_tree(rng, depth, n_features, modes, p_leaf=0.25):
    """Nested (mode, feature, split-or-set, false, true) tuples; a leaf is an int (its id)."""
    counter = iter(range(10**6))

    def grow(d):
        if d == 0 or rng.random() < p_leaf:
            return next(counter)
        mode = int(rng.choice(modes))
        split = rng.choice([0.5, 1.0, 1.5, 2.0, 2.5, 3.0]) if mode != 6 else \
            sorted(set(rng.integers(0, 5, rng.integers(1, 4)).tolist()))  # fmt: skip
        return (mode, int(rng.integers(n_features)), split, grow(d - 1), grow(d - 1))

    return grow(depth)


def _v5_attrs(trees, weights_of, dtype):
    """TreeEnsemble (ai.onnx.ml 5) attributes; ``weights_of(tree, leaf)`` -> [(target, w)]."""
    nodes, leaves, roots, members = [], [], [], []

    def add(t, sub):
        if isinstance(sub, int):
            return 1, add_leaf(t, sub)
        i = len(nodes)
        nodes.append(None)
        f_leaf, f_id = add(t, sub[3])
        t_leaf, t_id = add(t, sub[4])
        nodes[i] = (sub[0], sub[1], sub[2], t_id, t_leaf, f_id, f_leaf)
        return 0, i

    def add_leaf(t, leaf):
        first = len(leaves)
        leaves.extend((tgt, w) for tgt, w in weights_of(t, leaf)[:1])
        return first

    for t, tree in enumerate(trees):
        if isinstance(tree, int):  # a lone leaf: both branches name it
            j = add_leaf(t, tree)
            roots.append(len(nodes))
            nodes.append((0, 0, 0.0, j, 1, j, 1))
        else:
            roots.append(add(t, tree)[1])
    for n in nodes:
        if n[0] == 6:
            members.extend([*n[2], np.nan])
    tdt = T.DOUBLE if dtype == np.float64 else T.FLOAT
    attrs = dict(
        tree_roots=roots,
        nodes_modes=helper.make_tensor("m", T.UINT8, (len(nodes),), [n[0] for n in nodes]),
        nodes_featureids=[n[1] for n in nodes],
        nodes_splits=helper.make_tensor("s", tdt, (len(nodes),),
                                        [0.0 if n[0] == 6 else n[2] for n in nodes]),
        nodes_truenodeids=[n[3] for n in nodes], nodes_trueleafs=[n[4] for n in nodes],
        nodes_falsenodeids=[n[5] for n in nodes], nodes_falseleafs=[n[6] for n in nodes],
        leaf_targetids=[t for t, _ in leaves],
        leaf_weights=helper.make_tensor("w", tdt, (len(leaves),), [w for _, w in leaves]),
        nodes_missing_value_tracks_true=[int(i % 3 == 0) for i in range(len(nodes))],
    )  # fmt: skip
    if members:
        attrs["membership_values"] = helper.make_tensor("mv", tdt, (len(members),), members)
    return attrs


_NAMES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def _v1_attrs(trees, weights_of, prefix):
    """TreeEnsembleRegressor/Classifier attributes (pre-order, the false child next)."""
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes",
                         "nodes_values", "nodes_truenodeids", "nodes_falsenodeids",
                         f"{prefix}_treeids", f"{prefix}_nodeids", f"{prefix}_ids",
                         f"{prefix}_weights", "nodes_missing_value_tracks_true")}  # fmt: skip

    def add(t, sub, counter):
        i = next(counter)
        for k, v in (("treeids", t), ("nodeids", i)):
            a[f"nodes_{k}"].append(v)
        if isinstance(sub, int):
            for k, v in (("featureids", 0), ("modes", "LEAF"), ("values", 0.0),
                         ("truenodeids", 0), ("falsenodeids", 0)):  # fmt: skip
                a[f"nodes_{k}"].append(v)
            a["nodes_missing_value_tracks_true"].append(0)
            for tgt, w in weights_of(t, sub):
                for k, v in (("treeids", t), ("nodeids", i), ("ids", tgt), ("weights", w)):
                    a[f"{prefix}_{k}"].append(v)
            return i
        at = len(a["nodes_modes"])
        for k, v in (("featureids", sub[1]), ("modes", _NAMES[sub[0]]), ("values", sub[2]),
                     ("truenodeids", 0), ("falsenodeids", 0)):  # fmt: skip
            a[f"nodes_{k}"].append(v)
        a["nodes_missing_value_tracks_true"].append(int(i % 3 == 0))
        a["nodes_falsenodeids"][at] = add(t, sub[3], counter)
        a["nodes_truenodeids"][at] = add(t, sub[4], counter)
        return i

    for t, tree in enumerate(trees):
        add(t, tree, iter(range(10**6)))
    return a


def _tree_x(dtype, n=40, f=3):
    x = RNG.integers(0, 5, (n, f)).astype(dtype) * 0.5
    x[RNG.random((n, f)) < 0.1] = np.nan
    return x


def _forest(n_trees, modes, n_targets, seed):
    rng = np.random.default_rng(seed)
    trees = [_random_tree(rng, 4, 3, modes) for _ in range(n_trees)]
    votes = {}

    def weights_of(t, leaf):
        if (t, leaf) not in votes:
            # one vote per target (onnxruntime reads only a leaf's first vote of one target)
            k = int(rng.integers(1, n_targets + 1))
            votes[t, leaf] = [(int(tgt), float(rng.normal()))
                              for tgt in rng.permutation(n_targets)[:k]]  # fmt: skip
        return votes[t, leaf]

    return trees, weights_of


@pytest.mark.parametrize("agg", [0, 1, 2, 3])
@pytest.mark.parametrize("post", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tree_ensemble_vs_ort(agg, post, dtype):
    trees, weights_of = _forest(5, [0, 1, 2, 3, 4, 5, 6], 3, seed=agg * 10 + post)
    attrs = _v5_attrs([*trees, 7], weights_of, dtype)  # and a lone leaf
    n = _node("TreeEnsemble", ["x"], ["y"], ml=True, n_targets=3, aggregate_function=agg,
              post_transform=post, **attrs)  # fmt: skip
    # onnxruntime swaps the spec's post_transform codes 1 (SOFTMAX) and 2 (LOGISTIC)
    ort_post = {1: 2, 2: 1}.get(post, post)
    n_ort = _node("TreeEnsemble", ["x"], ["y"], ml=True, n_targets=3, aggregate_function=agg,
                  post_transform=ort_post, **attrs)  # fmt: skip
    x = _tree_x(dtype)
    (want,) = _ort(n_ort, {"x": x}, ml=5)
    (got,) = _ours(n, {"x": x}, ml=5)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got.data, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("agg", ["SUM", "AVERAGE", "MIN", "MAX"])
@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
@pytest.mark.parametrize("targets", [1, 2])
def test_tree_ensemble_regressor_vs_ort(agg, post, targets):
    trees, weights_of = _forest(4, [0, 1, 2, 3, 4, 5], targets, seed=targets)
    attrs = _v1_attrs(trees, weights_of, "target")
    attrs.update(n_targets=targets, aggregate_function=agg, base_values=[0.5, -0.25][:targets])
    n = _node("TreeEnsembleRegressor", ["x"], ["y"], ml=True, post_transform=post, **attrs)
    if targets == 1 and post != "NONE":
        n_none = _node("TreeEnsembleRegressor", ["x"], ["y"], ml=True, **attrs)
        _same_as_one_target(n, n_none, post, _tree_x(np.float32))
        return
    _same(n, {"x": _tree_x(np.float32)}, ml=3, rtol=1e-5, atol=1e-5)
    _same(n, {"x": _tree_x(np.float64)}, ml=1, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
@pytest.mark.parametrize("base", [None, [0.5, -0.25, 0.1]])
def test_tree_ensemble_classifier_multi_vs_ort(post, base):
    trees, weights_of = _forest(4, [0, 1, 2, 3], 3, seed=7)
    attrs = _v1_attrs(trees, weights_of, "class")
    if base:
        attrs["base_values"] = base
    for labels in ({"classlabels_int64s": [4, 8, 9]}, {"classlabels_strings": ["a", "b", "c"]}):
        n = _node("TreeEnsembleClassifier", ["x"], ["y", "z"], ml=True, post_transform=post,
                  **labels, **attrs)  # fmt: skip
        _same(n, {"x": _tree_x(np.float32)}, ml=3, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("base", [None, [0.1]])
def test_tree_ensemble_classifier_binary_vs_ort(post, sign, base):
    """sklearn-onnx's encoding: one vote per leaf, for class 0 (the positive score)."""
    rng = np.random.default_rng(3)
    trees = [_random_tree(rng, 3, 3, [0, 1]) for _ in range(3)]
    w = {}

    def weights_of(t, leaf):
        return [(0, w.setdefault((t, leaf), float(rng.random()) * (sign if leaf % 2 else 1)))]

    attrs = _v1_attrs(trees, weights_of, "class")
    if base:
        attrs["base_values"] = base
    n = _node("TreeEnsembleClassifier", ["x"], ["y", "z"], ml=True, post_transform=post,
              classlabels_int64s=[3, 5], **attrs)  # fmt: skip
    _same(n, {"x": _tree_x(np.float32)}, ml=3, rtol=1e-5, atol=1e-5)


def test_tree_classifier_refusals_and_no_gradient():
    trees, weights_of = _forest(2, [0], 2, seed=1)
    attrs = _v1_attrs(trees, weights_of, "class")
    n = _node("TreeEnsembleClassifier", ["x"], ["y", "z"], ml=True, classlabels_int64s=[0, 1],
              **attrs)  # fmt: skip
    with pytest.raises(BpcliError, match="two classes"):
        _ours(n, {"x": _tree_x(np.float32)}, ml=3)
    trees, weights_of = _forest(2, [0], 1, seed=1)
    n = _node("TreeEnsembleRegressor", ["x"], ["y"], ml=True, n_targets=1,
              **_v1_attrs(trees, weights_of, "target"))  # fmt: skip
    m = load(_model(n, {"x": _tree_x(np.float32)}, ml=3), check=False)
    y = m(Tensor(_tree_x(np.float32), requires_grad=True))
    assert not y.requires_grad
    assert "TreeEnsembleRegressor" in m.summary().no_gradient_ops


def test_string_graph_with_constant_vs_ort():
    """A string Constant (object array) feeds StringConcat, then StringSplit and RegexFullMatch."""
    nodes = [
        helper.make_node("Constant", [], ["c"], value_strings=["-x", "-y", "z"]),
        helper.make_node("StringConcat", ["s", "c"], ["j"]),
        helper.make_node("StringSplit", ["j"], ["p", "n"], delimiter="-"),
        helper.make_node("RegexFullMatch", ["p"], ["m"], pattern=r"[a-z]\d?"),
    ]
    x = S("a1", "b-c", "")
    vis = [helper.make_tensor_value_info("s", T.STRING, [3])]
    outs = [helper.make_tensor_value_info(n, t, None)
            for n, t in (("p", T.STRING), ("n", T.INT64), ("m", T.BOOL))]  # fmt: skip
    m = helper.make_model(helper.make_graph(nodes, "g", vis, outs),
                          opset_imports=[helper.make_opsetid("", 21)])  # fmt: skip
    m.ir_version = 10
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"s": x}
    )
    got = load(m, check=False)(x)
    for g, w in zip(got, want, strict=True):
        assert g.data.dtype == w.dtype and g.data.tolist() == w.tolist()


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC"])
def test_linear_classifier_binary_grad(post):
    x = RNG.standard_normal((6, 4)).astype(np.float32)
    n = _node("LinearClassifier", ["x"], ["y", "z"], ml=True, coefficients=COEF[:4],
              intercepts=[0.1], post_transform=post, classlabels_ints=[0, 1])  # fmt: skip
    w = torch.tensor(COEF[:4])

    def fn(t):
        s = (t @ w + 0.1)[:, None]
        s = torch.sigmoid(s) if post == "LOGISTIC" else s
        return torch.cat([1 - s, s], 1)

    _grad_vs_torch(n, {"x": x}, fn, out=1)


def test_normalizer_zero_row_gradient_is_finite():
    x = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    for norm in ("MAX", "L1", "L2"):
        xt = Tensor(x, requires_grad=True)
        (y,) = _ours_from(_node("Normalizer", ["x"], ["y"], ml=True, norm=norm), {"x": x}, xt, 3)
        F.sum(y).backward()
        assert np.isfinite(xt.grad).all()
        np.testing.assert_allclose(xt.grad[0], [1.0, 1.0])  # y = x there


def test_category_mapper_vs_ort():
    kw = {"cats_strings": ["a", "b", "a"], "cats_int64s": [5, 6, 7]}
    _same(_node("CategoryMapper", ["x"], ["y"], ml=True, **kw), {"x": S("b", "z", "a")}, ml=1)
    n = _node("CategoryMapper", ["x"], ["y"], ml=True, default_string="?", **kw)
    _same(n, {"x": np.array([[6, 1], [7, 5]], np.int64)}, ml=1)


def test_feature_vectorizer_vs_ort_and_grad():
    a = RNG.standard_normal((2, 3)).astype(np.float32)
    b = RNG.standard_normal((2, 1, 2)).astype(np.float32)
    for dims in ([3, 2], [2, 1], [4, 3]):
        n = _node("FeatureVectorizer", ["x", "b"], ["y"], ml=True, inputdimensions=dims)
        _same(n, {"x": a, "b": b}, ml=1)
    n = _node("FeatureVectorizer", ["x", "b"], ["y"], ml=True, inputdimensions=[2, 3])
    _same(n, {"x": a[0], "b": b[:1]}, ml=1)
    n = _node("FeatureVectorizer", ["x", "b"], ["y"], ml=True, inputdimensions=[2, 3])
    bt = torch.tensor(b.reshape(2, 2))
    _grad_vs_torch(n, {"x": a, "b": b},
                   lambda t: torch.cat([t[:, :2], bt, torch.zeros(2, 1)], 1), ml=1)  # fmt: skip


def test_tree_ensemble_float16_follows_float32():
    """float16 trees compute as float32 (the importer widens) and round once at the end."""
    trees, weights_of = _forest(3, [0, 1, 2, 3, 6], 2, seed=5)
    x = _tree_x(np.float32)  # multiples of 0.5: exact in float16
    outs = []
    for dtype, tt in ((np.float32, T.FLOAT), (np.float16, T.FLOAT16)):
        a = _v5_attrs(trees, weights_of, np.float32)
        for k in ("nodes_splits", "leaf_weights", "membership_values"):
            v = np.array(a[k].float_data, np.float32)
            a[k] = helper.make_tensor(k, tt, v.shape, v.astype(dtype))
        n = _node("TreeEnsemble", ["x"], ["y"], ml=True, n_targets=2, **a)
        outs.append(_ours(n, {"x": x.astype(dtype)}, ml=5)[0].data)
    assert outs[1].dtype == np.float16
    np.testing.assert_allclose(outs[1], outs[0], rtol=2e-3, atol=2e-3)
