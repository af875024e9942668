"""ONNX files as a model source: summarise or check a file, fine-tune an import.

``import_summary`` and ``check_onnx`` describe a file without training it;
``onnx_model`` and ``onnx_spec`` make an imported graph a model source for ``build``/``train``
(``[model] onnx = "file.onnx"``, ``freeze = ["glob", ...]``, ``replace_head = N``).
"""

from __future__ import annotations

import fnmatch
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpcli.errors import BpcliError

# -- bpcli import / onnx check ------------------------------------------------------------------


def load_onnx(path: str | os.PathLike, upcast: bool = False, language: bool = False):
    """``bpcli.onnx.load``, with the list of unsupported nodes on one line; ``language`` runs
    the graph as a language model (``model(x, state) -> (logits, None)``)."""
    from bpcli.onnx.importer.load import OnnxLanguageModel, OnnxModule, load

    try:
        return load(os.fspath(path), upcast=upcast,
                    cls=OnnxLanguageModel if language else OnnxModule)  # fmt: skip
    except BpcliError as e:
        raise BpcliError(e.msg.replace(":\n  ", ": ").replace("\n  ", "; "), e.where) from None


def import_summary(path: str | os.PathLike):
    """The ``ImportSummary`` of an ONNX file: inputs/outputs, op counts, parameters, opset."""
    return load_onnx(path).summary()


@dataclass
class CheckRow:
    """One node of ``bpcli onnx check``."""

    node: str
    op: str
    domain: str
    opset: int
    supported: bool
    reason: str = ""


@dataclass
class CheckResult:
    path: str
    opset: int
    converted_from: int | None
    rows: list[CheckRow] = field(default_factory=list)

    @property
    def unsupported(self) -> list[CheckRow]:
        return [r for r in self.rows if not r.supported]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "opset": self.opset, "converted_from": self.converted_from,
                "n_nodes": len(self.rows), "n_unsupported": len(self.unsupported),
                "nodes": [asdict(r) for r in self.rows]}  # fmt: skip


def check_onnx(path: str | os.PathLike) -> CheckResult:
    """Every node's (op, domain, opset) and whether the importer supports it; nothing runs.

    A file older than opset 7 is checked as the importer would load it (converted to 13).
    """
    import onnx.version_converter

    from bpcli.onnx.importer import graph
    from bpcli.onnx.importer import load as imp

    model, source = imp._read(os.fspath(path))
    opset = imp._opsets(model).get("", 0)
    converted_from = None
    if 0 < opset < imp.MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, imp.CONVERT_TO)
            converted_from, opset = opset, imp.CONVERT_TO
        except Exception:
            pass
    rows = []
    for label, v in graph.walk(graph.views_of(model, imp._opsets(model))):  # subgraphs too
        reason = graph.support_reason(v)
        rows.append(CheckRow(label, v.op_type, v.domain or "ai.onnx", v.opset, reason is None,
                             reason or ""))  # fmt: skip
    return CheckResult(source, opset, converted_from, rows)


# -- an imported graph as a model source -------------------------------------------------------


def onnx_spec(path: str, dataset: str, freeze=(), replace_head: int | None = None,
              overrides=()):  # fmt: skip
    """A resolved Spec that fine-tunes the ONNX file at ``path`` on ``dataset`` (a registered
    name or a data file); ``overrides`` are ``key.path=value`` strings as for ``--set``."""
    from bpcli.app.spec.schema import apply_overrides, resolve

    p = Path(path)
    if not p.is_file():
        raise BpcliError("no such file", str(path))
    if not dataset:
        raise BpcliError("an ONNX model needs --dataset NAME or --dataset FILE", "--dataset")
    from bpcli.data.sources import resolve_source
    from bpcli.plugins.manager import registry

    kind, options = resolve_source(dataset, {}, None, dataset in registry("dataset"))
    data: dict[str, Any] = {"dataset": kind, "options": options, "test": 0.2}
    model: dict[str, Any] = {"onnx": str(p.resolve())}
    if freeze:
        model["freeze"] = list(freeze)
    if replace_head is not None:
        model["replace_head"] = replace_head
    raw = {"name": p.stem, "data": data, "model": model}
    apply_overrides(raw, overrides)
    return resolve(raw, f"<{p}>")


def _fit_x(x: np.ndarray, shape, dtype, where: str) -> np.ndarray:
    """``x`` as the ONNX input wants it: reshaped when the sizes agree, cast to its float type."""
    want = tuple(shape[1:]) if shape else ()
    fixed = all(isinstance(s, int) and s > 0 for s in want)
    if shape and len(shape) != x.ndim and fixed:
        if int(np.prod(x.shape[1:])) != int(np.prod(want)):
            raise BpcliError(f"samples of shape {tuple(x.shape[1:])} do not fit the model's input "
                             f"{list(shape)}", where)  # fmt: skip
        x = x.reshape(len(x), *want)
    elif fixed and tuple(x.shape[1:]) != want:
        raise BpcliError(f"samples of shape {tuple(x.shape[1:])} do not fit the model's input "
                         f"{list(shape)}", where)  # fmt: skip
    if dtype is not None and x.dtype != dtype and x.dtype.kind == np.dtype(dtype).kind == "f":
        x = x.astype(dtype)
    return x


def onnx_model(spec, ds):
    """``(model, ds)``: the spec's ONNX file imported (head replaced), and the dataset with its
    samples shaped as the graph's input wants them."""
    where = f"{spec.source}: model.onnx"
    lm = ds.task == "language"
    model = load_onnx(spec.model["onnx"], upcast=True, language=lm)  # float16 trains in float32
    if len(model._inputs) != 1 or (len(model._outputs) != 1 and not lm):
        raise BpcliError(f"training needs one input and one output; the graph has "
                         f"{len(model._inputs)} and {len(model._outputs)}", where)  # fmt: skip
    _, shape, dtype = model._inputs[0]
    if lm:  # token ids in; the first output is the logits (state outputs are not carried)
        if dtype is not None and dtype.kind not in "iu":
            raise BpcliError(f"a language dataset needs a graph of token ids, but its input "
                             f"{model.input_names[0]} is {dtype}", where)  # fmt: skip
        ds = ds.with_x(ds.x.astype(dtype or np.int64))
        if model.window and model.window != spec.train["bptt"]:
            raise BpcliError(f"the graph takes windows of {model.window} tokens; train with "
                             f"--set train.bptt={model.window}",
                             f"{spec.source}: train.bptt")  # fmt: skip
    else:
        ds = ds.with_x(_fit_x(ds.x, shape, dtype, where))
    if spec.model.get("replace_head"):
        replace_head(model, spec.model["replace_head"], np.random.default_rng([spec.seed, 2]))
    window = spec.train["bptt"]
    _dry_run(model, ds.x[:window].reshape(1, -1) if lm else ds.x[:2], where)
    freeze(model, spec.model.get("freeze") or (), f"{spec.source}: model.freeze")
    model.train()
    return model, ds


def _dry_run(model, x: np.ndarray, where: str) -> None:
    from bpcli.engine.grad_mode import no_grad
    from bpcli.engine.tensor import Tensor

    model.eval()
    try:
        with no_grad():
            model(Tensor(x))
    except BpcliError as e:
        raise BpcliError(f"the imported graph cannot run on samples of shape "
                         f"{tuple(x.shape[1:])}: {e}", where) from None  # fmt: skip


def _users(model, value: str):
    return [v for v in model._nodes if value in v.inputs]


def replace_head(model, n: int, rng: np.random.Generator) -> str:
    """Give the last Gemm (or MatMul + Add) with weight initializers ``n`` outputs, initialised
    as a fresh ``Linear`` (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias).
    Returns the weight's name."""
    from bpcli.nn.module import Parameter

    params = model._parameters
    for node in reversed(model._nodes):
        if node.op_type not in ("Gemm", "MatMul") or len(node.inputs) < 2:
            continue
        w = node.inputs[1]
        if w not in params or params[w].ndim != 2:
            continue
        out_axis = 0 if node.op_type == "Gemm" and node.attr("transB", 0) else 1
        bias = node.inputs[2] if node.op_type == "Gemm" and len(node.inputs) > 2 else None
        if node.op_type == "MatMul":
            adds = [u for u in _users(model, node.outputs[0]) if u.op_type == "Add"]
            other = [i for u in adds for i in u.inputs if i != node.outputs[0]]
            bias = other[0] if other else None
        old = params[w]
        fan_in = old.shape[1 - out_axis]
        bound = 1.0 / math.sqrt(fan_in)
        shape = (n, fan_in) if out_axis == 0 else (fan_in, n)
        params[w] = Parameter(rng.uniform(-bound, bound, shape).astype(old.dtype))
        if bias in params and params[bias].numel() == old.shape[out_axis]:
            b = params[bias]
            bshape = (*b.shape[:-1], n) if b.ndim else (n,)
            params[bias] = Parameter(rng.uniform(-bound, bound, bshape).astype(b.dtype))
        return w
    raise BpcliError("no Gemm or MatMul with a weight initializer to replace", "replace_head")


def freeze(model, patterns, where: str) -> list[str]:
    """Turn off ``requires_grad`` of the parameters whose names match any glob; a glob that
    matches nothing is an error listing the names."""
    named = list(model.named_parameters())
    frozen = []
    for pat in patterns:
        hits = [n for n, _ in named if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            names = ", ".join(n for n, _ in named[:12]) + (" ..." if len(named) > 12 else "")
            raise BpcliError(f"{pat!r} matches no parameter (parameters: {names})", where)
        frozen += [n for n in hits if n not in frozen]
    for n, p in named:
        if n in frozen:
            p.requires_grad = False
    return frozen
