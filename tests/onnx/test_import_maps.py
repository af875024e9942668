"""Import of ZipMap, DictVectorizer and CastMap (import_ops_maps.py): forward against
onnxruntime on one-node models with map-typed inputs and outputs (for the map types
onnxruntime's Python binding cannot feed, against the values its kernels compute), refusals,
the ONNX backend's map values, and sklearn classifiers converted by skl2onnx with their
default ZipMap output (through load, the backend and the CLI) when sklearn is installed."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.onnx.conformance import backend
from bpcli.onnx.importer.load import load
from tests.cli_helpers import run

ort = pytest.importorskip("onnxruntime")

pytestmark = [pytest.mark.ort]
ML = "ai.onnx.ml"
RNG = np.random.default_rng(0)
FLOAT, DOUBLE, INT64, STRING = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64,
                                 TensorProto.STRING)  # fmt: skip


def _map_type(key: int, value: int):
    return helper.make_map_type_proto(key, helper.make_tensor_type_proto(value, None))


def _model(op, in_vi, out_vi, **attrs):
    node = helper.make_node(op, [in_vi.name], [out_vi.name], domain=ML, **attrs)
    g = helper.make_graph([node], "g", [in_vi], [out_vi])
    ops = [helper.make_opsetid("", 17), helper.make_opsetid(ML, 1)]
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 9
    return m


def _ort(model, feed):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {model.graph.input[0].name: feed})[0]


def _same_maps(got: list, want: list):
    """Lists of maps equal, key order included (onnxruntime's come from a std::map)."""
    assert isinstance(got, list) and len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, dict) and list(g) == list(w)
        assert all(type(k) is type(kw) for k, kw in zip(g, w, strict=True))
        assert [float(v) for v in g.values()] == list(w.values())


# -- ZipMap ---------------------------------------------------------------------------------


def _zipmap(labels, shape=("N", 3)):
    key = STRING if isinstance(labels[0], str) else INT64
    attr = "classlabels_strings" if key == STRING else "classlabels_int64s"
    seq = helper.make_sequence_type_proto(_map_type(key, FLOAT))
    return _model("ZipMap", helper.make_tensor_value_info("X", FLOAT, shape),
                  helper.make_value_info("Z", seq), **{attr: labels})  # fmt: skip


@pytest.mark.parametrize("labels", [["b", "a", "zz", "é"], [7, -1, 3, 10]])
@pytest.mark.parametrize("shape", [(5, 4), (4,), (0, 4)])
def test_zipmap_matches_onnxruntime(labels, shape):
    x = RNG.normal(size=shape).astype(np.float32)
    m = _zipmap(labels, ["N", 4][-len(shape) :])
    got = load(m)(x)
    _same_maps(got, _ort(m, x))
    assert len(got) == (1 if len(shape) == 1 else shape[0])
    assert all(isinstance(v, np.float32) for d in got for v in d.values())


def test_zipmap_repeated_label_keeps_last_column():
    x = RNG.normal(size=(3, 3)).astype(np.float32)
    m = _zipmap([5, 2, 5])
    got = load(m)(x)
    _same_maps(got, _ort(m, x))
    assert got[0] == {2: x[0, 1], 5: x[0, 2]}


def test_zipmap_empty_label_list_counts_as_absent():
    m = _zipmap([4, 2, 9])
    empty = helper.make_attribute("classlabels_strings", [], attr_type=onnx.AttributeProto.STRINGS)
    m.graph.node[0].attribute.append(empty)
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    _same_maps(load(m)(x), _ort(m, x))


def test_zipmap_notes_it_stops_the_gradient():
    m = load(_zipmap(["a", "b", "c"]))
    m(Tensor(RNG.normal(size=(2, 3)).astype(np.float32), requires_grad=True))
    assert m.summary().no_gradient_ops == ["ZipMap"]


def test_zipmap_refusals():
    with pytest.raises(BpcliError, match="exactly one of classlabels_strings"):
        load(_model("ZipMap", helper.make_tensor_value_info("X", FLOAT, ["N", 2]),
                    helper.make_empty_tensor_value_info("Z"), classlabels_strings=["a", "b"],
                    classlabels_int64s=[1, 2]), check=False)  # fmt: skip
    m = load(_zipmap(["a", "b", "c"], None), check=False)
    with pytest.raises(BpcliError, match="4 columns for 3 class labels"):
        m(RNG.normal(size=(2, 4)).astype(np.float32))
    with pytest.raises(BpcliError, match=r"shape \[C\] or \[N, C\]"):
        m(RNG.normal(size=(2, 2, 3)).astype(np.float32))


# -- DictVectorizer -------------------------------------------------------------------------


def _dictvec(key, value, out=None, **vocab):
    vi = helper.make_value_info("X", _map_type(key, value))
    return _model("DictVectorizer", vi, helper.make_tensor_value_info("Y", out or value, [1, "V"]),
                  **vocab)  # fmt: skip


@pytest.mark.parametrize(
    "key, vocab, x",
    [
        (STRING, dict(string_vocabulary=["a", "c", "b", "z"]), {"a": 4.0, "c": 8.5}),
        # a vocabulary entry twice, a key outside the vocabulary
        (STRING, dict(string_vocabulary=["a", "c", "a"]), {"a": 4.0, "q": 1.0}),
        (INT64, dict(int64_vocabulary=[3, 1, 7, 2]), {3: -1.5, 7: 2.5, 9: 1.0}),
        (INT64, dict(int64_vocabulary=[3, 1]), {1: np.float32(0.25)}),
    ],
)  # fmt: skip
def test_dictvectorizer_matches_onnxruntime(key, vocab, x):
    m = _dictvec(key, FLOAT, **vocab)
    got, want = load(m)(x).data, _ort(m, x)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    np.testing.assert_array_equal(got, want)


def test_dictvectorizer_value_types():
    # the maps onnxruntime's Python binding cannot feed, against what its kernel computes
    m = load(_dictvec(STRING, INT64, string_vocabulary=["a", "b", "c"]))
    y = m({"c": np.int64(2**40), "a": np.int64(-3)}).data
    assert y.dtype == np.int64 and y.tolist() == [[-3, 0, 2**40]]
    m = load(_dictvec(INT64, DOUBLE, int64_vocabulary=[4, 5]))
    y = m({5: np.float64(0.1)}).data
    assert y.dtype == np.float64 and y.tolist() == [[0.0, 0.1]]
    m = load(_dictvec(INT64, STRING, int64_vocabulary=[2, 0, 1]))
    y = m({0: "x", 1: "yz"}).data
    assert y.dtype == object and y.tolist() == [["", "x", "yz"]]
    y = load(_dictvec(STRING, FLOAT, string_vocabulary=["a", "b"]))({}).data
    assert y.dtype == np.float32 and y.tolist() == [[0, 0]]
    # a 0-d Tensor value gives its number; the gradient stops, as the summary says
    m = load(_dictvec(STRING, FLOAT, string_vocabulary=["a", "b"]))
    y = m({"b": Tensor(np.array(1.5, np.float32), requires_grad=True)}).data
    assert y.tolist() == [[0, 1.5]] and m.summary().no_gradient_ops == ["DictVectorizer"]
    # Python numbers are float32, as onnxruntime's binding reads them
    assert load(_dictvec(STRING, FLOAT, string_vocabulary=["a"]))({"a": 3}).dtype == np.float32


def test_dictvectorizer_refusals():
    m = load(_dictvec(STRING, FLOAT, string_vocabulary=["a", "b"]))
    with pytest.raises(BpcliError, match="int key 1; string keys are expected"):
        m({1: 2.0})
    with pytest.raises(BpcliError, match="must be a map"):
        m([{"a": 2.0}])
    with pytest.raises(BpcliError, match="strings or numbers, got list"):
        m({"a": [1.0, 2.0]})
    with pytest.raises(BpcliError, match="mix strings and numbers"):
        m({"a": 2.0, "b": "x"})
    with pytest.raises(BpcliError, match="exactly one of string_vocabulary"):
        load(_dictvec(STRING, FLOAT), check=False)


# -- CastMap --------------------------------------------------------------------------------


def _castmap(value, cast_to, form, max_map=6):
    out = {"TO_INT64": INT64, "TO_STRING": STRING}.get(cast_to, FLOAT)
    vi = helper.make_value_info("X", _map_type(INT64, value))
    return _model("CastMap", vi, helper.make_tensor_value_info("Y", out, [1, "V"]),
                  cast_to=cast_to, map_form=form, max_map=max_map)  # fmt: skip


@pytest.mark.parametrize("cast_to", ["TO_FLOAT", "TO_INT64", "TO_STRING"])
@pytest.mark.parametrize("form", ["DENSE", "SPARSE"])
def test_castmap_matches_onnxruntime(cast_to, form):
    x = {4: 1.5, 0: -2.7, 1: 2.0, 2: 123456.78}
    m = _castmap(FLOAT, cast_to, form)
    got, want = load(m)(x).data, _ort(m, x)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    assert got.tolist() == want.tolist()  # strings as "%f", SPARSE strings padded "0.f"


def test_castmap_from_strings():
    # map(int64, string) cannot be fed through onnxruntime's Python binding: C's stof / stoll
    x = {3: " -2.5e1xyz", 0: "0x10", 1: "12abc", 2: "inf"}
    assert load(_castmap(STRING, "TO_FLOAT", "DENSE"))(x).data.tolist() == [
        [16.0, 12.0, float("inf"), -25.0]
    ]
    y = load(_castmap(STRING, "TO_INT64", "SPARSE", 5))({1: "12abc", 3: " -7.9"}).data
    assert y.dtype == np.int64 and y.tolist() == [[0, 12, 0, -7, 0]]
    y = load(_castmap(STRING, "TO_STRING", "DENSE"))({9: "b", -1: "a"}).data
    assert y.dtype == object and y.tolist() == [["a", "b"]]


def test_castmap_refusals():
    m = load(_castmap(FLOAT, "TO_FLOAT", "SPARSE", 3))
    with pytest.raises(BpcliError, match=r"lie in \[0, max_map=3\), got \[3\]"):
        m({0: 1.0, 3: 2.0})  # onnxruntime drops the key; the spec forbids it
    with pytest.raises(BpcliError, match=r"got \[-1\]"):
        m({-1: 1.0})
    with pytest.raises(BpcliError, match="cannot read 'abc' as a float"):
        load(_castmap(STRING, "TO_FLOAT", "DENSE"))({0: "abc"})
    with pytest.raises(BpcliError, match="out of the float range"):
        load(_castmap(STRING, "TO_FLOAT", "DENSE"))({0: "1e50"})
    with pytest.raises(BpcliError, match="cannot cast nan to int64"):
        load(_castmap(FLOAT, "TO_INT64", "DENSE"))({0: float("nan")})
    for attrs, msg in [(("TO_BOOL", "DENSE"), "cast_to 'TO_BOOL'"),
                       (("TO_FLOAT", "CSR"), "map_form 'CSR'")]:  # fmt: skip
        with pytest.raises(BpcliError, match=msg):
            load(_castmap(FLOAT, *attrs), check=False)


# -- the backend ----------------------------------------------------------------------------


def test_backend_takes_and_gives_maps_as_onnxruntime():
    x = RNG.normal(size=(3, 2)).astype(np.float32)
    m = _zipmap(["p", "q"], ["N", 2])
    assert backend.prepare(m).run([x])[0] == _ort(m, x)
    d = _dictvec(STRING, FLOAT, string_vocabulary=["a", "b"])
    np.testing.assert_array_equal(backend.prepare(d).run({"X": {"b": 1.5}})[0], [[0, 1.5]])


# -- sklearn through skl2onnx's default options (ZipMap on) ---------------------------------


def _sklearn():
    pytest.importorskip("sklearn")
    return pytest.importorskip("skl2onnx")


def _data(labels=None):
    x = RNG.normal(size=(60, 4)).astype(np.float32)
    y = np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5])
    return x, (y if labels is None else np.array(labels, object)[y])


def _check_classifier(est, model, x, inputs):
    """Labels exactly and probabilities to 1e-5 against onnxruntime and sklearn."""
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want_labels, want_probs = s.run(None, {model.graph.input[0].name: inputs})
    labels, probs = load(model)(inputs)
    assert labels.data.tolist() == want_labels.tolist() == est.predict(x).tolist()
    assert [list(d) for d in probs] == [list(d) for d in want_probs]
    table = np.array([[d[c] for c in est.classes_] for d in probs])
    np.testing.assert_allclose(table, [[d[c] for c in est.classes_] for d in want_probs],
                               rtol=0, atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(table, est.predict_proba(x), rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # sklearn 1.9 deprecates probability=True
def test_sklearn_classifiers_with_zipmap():
    skl2onnx = _sklearn()
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    cases = [
        (LogisticRegression(max_iter=500), None),
        (LogisticRegression(max_iter=500), ["cat", "dog", "émeu"]),  # classlabels_strings
        (RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0), None),
        (SVC(probability=True, random_state=0), None),
    ]
    for est, names in cases:
        x, y = _data(names)
        est.fit(x, y)
        model = skl2onnx.to_onnx(est, x[:1])
        assert model.graph.node[-1].op_type == "ZipMap"
        _check_classifier(est, model, x, x)


def test_sklearn_dictvectorizer_pipeline():
    skl2onnx = _sklearn()
    from skl2onnx.common.data_types import DictionaryType, FloatTensorType, StringTensorType
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x, y = _data()
    rows = [{f"f{j}": float(v) for j, v in enumerate(r) if v > -1.0} for r in x]
    pipe = make_pipeline(DictVectorizer(sparse=False), LogisticRegression(max_iter=500))
    pipe.fit(rows, y)
    kind = DictionaryType(StringTensorType([1]), FloatTensorType([1]))
    model = skl2onnx.convert_sklearn(pipe, initial_types=[("input", kind)])
    assert model.graph.node[0].op_type == "DictVectorizer"
    for i in range(0, 60, 7):
        _check_classifier(pipe, model, rows[i : i + 1], rows[i])


def test_cli_import_and_check_a_converted_classifier(tmp_path):
    skl2onnx = _sklearn()
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = skl2onnx.to_onnx(LogisticRegression(max_iter=500).fit(x, y), x[:1])
    path = tmp_path / "logreg.onnx"
    onnx.save(model, path)
    res = run("import", path)
    assert res.exit_code == 0, res.output
    assert "ZipMap x1" in res.output and "output_probability" in res.output
    assert "seq(map(int64, float32))" in res.output
    res = run("onnx", "check", path)
    assert res.exit_code == 0, res.output
    assert "ZipMap" in res.output


def test_the_summary_names_map_and_sequence_types():
    from onnx import TensorProto, helper

    from bpcli.onnx.importer.load import load

    seq = helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(1, None))
    )
    node = helper.make_node("ZipMap", ["x"], ["p"], domain="ai.onnx.ml", classlabels_int64s=[3, 5])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, ["N", 2])],
                          [helper.make_value_info("p", seq)])  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("ai.onnx.ml", 1)])  # fmt: skip
    text = str(load(m).summary())
    assert "p [] seq(map(int64, float32))" in text and "x ['N', 2] float32" in text
