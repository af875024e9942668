"""DESIGN's promise, checked as far as it holds: an op's forward, VJP and ONNX name live in one
class of ``bpcli/engine/ops/<family>.py``, and its ONNX emitter in the exporter module of the
same family name. The emitters are grouped coarser than the engine families today; the
families whose emitters still live in another module are listed in ``EMITTED_ELSEWHERE``
(moving them means splitting emitter files, left for later), so a new mismatch fails."""

import pathlib

import bpcli.functional
from bpcli.engine.op import OPS
from bpcli.onnx.exporter.ops.elementwise import EMITTERS

PKG = pathlib.Path(bpcli.functional.__file__).parent
# engine family -> the exporter module its emitters are in, where the names differ
EMITTED_ELSEWHERE = {
    "activation": "elementwise", "reduce": "elementwise", "sort": "elementwise",
    "quant": "elementwise", "join": "shape", "index": "shape", "scan": "shape",
    "scatter": "shape", "conv": "nn", "pool": "nn", "norm": "nn", "loss": "nn",
    "rnn_seq": "rnn", "linalg": ("elementwise", "nn", "linalg"), "nn": ("nn", "elementwise"),
    # the families issue 11 added, emitted by one module per group of them
    "einsum": "linalg", "embedding_bag": "linalg", "math_binary": "math", "logic": "math",
    "activation_more": "math", "loss_more": "math", "reduce_more": "select", "order": "select",
    "scatter_more": "select", "scan_more": "select", "conv3d": "nn", "pool3d": ("nn", "spatial"),
    "fold": "spatial", "grid": "spatial", "resample": "spatial", "pool": ("nn", "spatial"),
    "conv": ("nn", "spatial"),
}  # fmt: skip
# exporter modules that group several engine families (named for the group)
GROUPS = {"spatial"}


def _family(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def test_each_op_is_one_class_with_forward_vjp_and_onnx_name():
    for name, cls in OPS.items():
        if not cls.__module__.startswith("bpcli."):
            continue  # a plugin's or a test's op
        assert callable(getattr(cls, "forward", None)), f"{name}: no forward"
        assert callable(getattr(cls, "backward", None)), f"{name}: no backward (VJP)"
        assert hasattr(cls, "onnx"), f"{name}: no ONNX name"
        assert cls.__module__.startswith("bpcli.engine.ops."), f"{name}: in {cls.__module__}"


def test_emitters_live_in_the_family_module_of_the_same_name():
    bad = []
    for name, emit in EMITTERS.items():
        if name not in OPS:
            continue
        fam, where = _family(OPS[name].__module__), _family(emit.__module__)
        allowed = EMITTED_ELSEWHERE.get(fam, ())
        allowed = (allowed,) if isinstance(allowed, str) else allowed
        if where != fam and where not in allowed:
            bad.append(f"{name}: engine/ops/{fam}.py, emitter in exporter/ops/{where}.py")
    assert not bad, "\n".join(bad)


def test_every_exporter_and_importer_family_is_named_after_an_engine_family_or_onnx_only():
    engine = {p.stem for p in (PKG / "engine" / "ops").glob("[!_]*.py")}
    exporter = {p.stem for p in (PKG / "onnx" / "exporter" / "ops").glob("[!_]*.py")}
    assert exporter <= engine | GROUPS, exporter - engine - GROUPS
    importer = {p.stem for p in (PKG / "onnx" / "importer" / "ops").glob("[!_]*.py")}
    assert {"elementwise", "nn", "norm", "quant", "reduce", "rnn", "shape", "index"} <= importer
