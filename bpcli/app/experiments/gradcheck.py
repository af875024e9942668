"""Model-level gradient checks: float64 central finite differences per parameter tensor.

``gradcheck_source(SPEC | CHECKPOINT | model.onnx)`` and ``check_module(model, inputs)`` cast a
copy of the model to float64 and compare, for every checked tensor ``t`` (parameters, and the
float inputs), the engine's ``<dL/dt, v>`` with ``(L(t + eps v) - L(t - eps v)) / (2 eps)``:
every coordinate ``v = e_i`` of tensors with at most ``full_below`` elements (the whole
Jacobian row), ``directions`` random unit directions of larger ones.

The scalar ``L`` is the spec's loss on a small batch of its training data, or, for ONNX files
and lone layers, ``sum(output * R)`` with a fixed random ``R`` (a plain sum would hide errors:
the sum of a softmax is constant).

A check passes when ``|numeric - analytic| <= atol + rtol * max(|numeric|, |analytic|)``.
Defaults ``eps = 1e-6, atol = 1e-6, rtol = 1e-4``: in float64 the central difference's
truncation error is ~eps^2 (1e-12) and its rounding error ~1e-16 |L| / eps (1e-10 |L|), so
these leave four orders of magnitude of headroom while a backward that is off by any factor
shows errors near 1.

Kinks: ReLU, max pooling, abs and clamps are not differentiable at their kinks; a step that
crosses one gives a difference quotient that matches neither one-sided derivative. Three
measures keep such points from being reported as wrong gradients: float inputs get a small
jitter (1e-3 std) so tied values (identical pixels into a max pool) are broken, the step is
small (a kink must lie within ~eps of a pre-activation to matter), and a failed check is
repeated at eps/10 and eps/100 (tolerance scaled by the same factor, rounding error growing
as 1/eps): a kink crossed at one step is almost never crossed at all three, whereas a wrong
backward fails at every step. Checks passed that way are counted as ``retried``.

Stochastic layers: the engine's generator and every ``np.random.Generator`` a module holds
(Dropout(seed=...)) are rewound before each forward, so every evaluation draws the same masks
and the check covers the training-mode graph (BatchNorm with batch statistics too).
"""

from __future__ import annotations

import copy
import fnmatch
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bpcli.engine import grad_mode
from bpcli.engine import random as bprandom
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

EPS, ATOL, RTOL = 1e-6, 1e-6, 1e-4
DIRECTIONS, FULL_BELOW = 3, 64
RETRY = (10.0, 100.0)  # step divisors tried when a check fails (kinks)
JITTER = 1e-3


@dataclass
class TensorCheck:
    """The worst disagreement found for one tensor."""

    name: str  # parameter name, or "input" / "input[i]"
    layer: str  # module path ("0", "conv1"), "input" for inputs
    layer_type: str
    shape: tuple[int, ...]
    mode: str  # "full" (every coordinate) or "random" (random directions)
    checks: int
    max_abs: float
    max_rel: float
    retried: int
    passed: bool


@dataclass
class LayerCheck:
    layer: str
    layer_type: str
    tensors: int
    checks: int
    max_abs: float
    max_rel: float
    passed: bool


@dataclass
class GradcheckReport:
    """Every tensor's result, grouped per layer by ``layers``."""

    source: str
    kind: str  # "spec", "checkpoint", "onnx" or "layer"
    objective: str  # what L is
    batch: int
    eps: float
    atol: float
    rtol: float
    tensors: list[TensorCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tensors)

    @property
    def checks(self) -> int:
        return sum(t.checks for t in self.tensors)

    @property
    def layers(self) -> list[LayerCheck]:
        out: dict[str, LayerCheck] = {}
        for t in self.tensors:
            lc = out.get(t.layer)
            if lc is None:
                out[t.layer] = LayerCheck(t.layer, t.layer_type, 1, t.checks, t.max_abs,
                                          t.max_rel, t.passed)  # fmt: skip
                continue
            lc.tensors += 1
            lc.checks += t.checks
            lc.max_abs, lc.max_rel = max(lc.max_abs, t.max_abs), max(lc.max_rel, t.max_rel)
            lc.passed = lc.passed and t.passed
        return list(out.values())

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "tensors"}
        d.update(passed=self.passed, checks=self.checks,
                 tensors=[asdict(t) for t in self.tensors],
                 layers=[asdict(lc) for lc in self.layers])  # fmt: skip
        return d


# -- float64 copies and deterministic forwards --------------------------------------------------


def float64_copy(model):
    """A deep copy of ``model`` with float parameters and buffers in float64."""
    m = copy.deepcopy(model)
    m.to(np.float64)
    # NOTE: an imported ONNX graph declares float32 inputs; the float64 copy takes float64.
    ins = m.__dict__.get("_inputs")
    if isinstance(ins, list):
        m._inputs = [(n, s, np.dtype(np.float64) if d is not None and d.kind == "f" else d)
                     for n, s, d in ins]  # fmt: skip
    return m


class _Rewind:
    """Saves the engine generator's state and every Generator a module holds, and restores
    them before each forward so stochastic layers draw the same masks every time."""

    def __init__(self, model):
        self.gens = [bprandom.default_rng()]
        for m in model.modules():
            for v in vars(m).values():
                if isinstance(v, np.random.Generator) and all(v is not g for g in self.gens):
                    self.gens.append(v)
        self.states = [g.bit_generator.state for g in self.gens]

    def __call__(self) -> None:
        for g, s in zip(self.gens, self.states, strict=True):
            g.bit_generator.state = s


def _float_outputs(out) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out] if out.dtype.kind == "f" else []
    if isinstance(out, tuple | list):
        return [t for o in out for t in _float_outputs(o)]
    return []


# -- the check ----------------------------------------------------------------------------------


def _layer_of(name: str, types: dict[str, str]) -> tuple[str, str]:
    layer = name.rsplit(".", 1)[0] if "." in name else ""
    if layer in types:
        return layer or "(model)", types[layer]
    return (layer or name), types.get("", "?")


def _selected(name: str, layer: str, ltype: str, globs) -> bool:
    if not globs:
        return True
    keys = (name, layer, ltype.lower())
    return any(fnmatch.fnmatchcase(k, g) for g in globs for k in keys)


def _rel(err: float, scale: float, atol: float) -> float:
    # Where both sides are below atol (a gradient that is exactly zero, as a bias before a
    # BatchNorm) only the absolute error means anything.
    return err / scale if scale > atol else 0.0


def check_module(model, inputs, loss_fn=None, targets=None, *, layers=(), eps: float = EPS,
                 atol: float = ATOL, rtol: float = RTOL, directions: int = DIRECTIONS,
                 full_below: int = FULL_BELOW, seed: int = 0, check_inputs: bool = True,
                 source: str = "<model>", kind: str = "layer", copy_model: bool = True,
                 ) -> GradcheckReport:  # fmt: skip
    """Finite-difference check of ``model``'s gradients at ``inputs`` (see the module doc).

    Args:
        model: a Module (copied and cast to float64 unless ``copy_model=False``).
        inputs: an array or a tuple of arrays (float inputs are cast to float64 and jittered).
        loss_fn: ``loss_fn(output, targets) -> scalar Tensor``; None uses ``sum(out * R)``.
        layers: globs matched against parameter names, layer paths and layer types.
        check_inputs: also check the gradients of the float inputs.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    m = float64_copy(model) if copy_model else model
    m.train()
    xs = []
    for a in inputs if isinstance(inputs, tuple | list) else (inputs,):
        a = np.asarray(a.data if isinstance(a, Tensor) else a)
        if a.dtype.kind == "f":
            a = a.astype(np.float64) + JITTER * rng.standard_normal(a.shape)
        xs.append(Tensor(a, requires_grad=check_inputs and a.dtype.kind == "f"))
    rewind = _Rewind(m)
    cot: list[np.ndarray] = []

    def objective() -> Tensor:
        rewind()
        out = m(*xs)
        if loss_fn is not None:
            head = out[0] if isinstance(out, tuple) else out
            return loss_fn(head, targets)
        outs = _float_outputs(out)
        if not cot:
            cot.extend(rng.standard_normal(o.shape) for o in outs)
        total = None
        for o, r in zip(outs, cot, strict=True):
            term = (o * Tensor(r)).sum()
            total = term if total is None else total + term
        if total is None:
            raise BpcliError("the model has no float output to differentiate", source)
        return total

    types = {name: type(mod).__name__ for name, mod in m.named_modules()}
    targets_ = []
    for name, p in m.named_parameters():
        layer, ltype = _layer_of(name, types)
        if p.requires_grad and _selected(name, layer, ltype, layers):
            targets_.append((name, layer, ltype, p))
    for i, x in enumerate(xs):
        if x.requires_grad:
            targets_.append(("input" if len(xs) == 1 else f"input[{i}]", "input", "input", x))
    if not targets_:
        what = f" matching {', '.join(layers)}" if layers else ""
        raise BpcliError(f"no trainable parameter or float input{what} to check", source)
    for *_, t in targets_:
        t.grad = None
    loss = objective()
    loss.backward()
    report = GradcheckReport(
        source,
        kind,
        "loss" if loss_fn else "sum(output * R)",
        int(xs[0].shape[0]) if xs and xs[0].ndim else 1,
        eps,
        atol,
        rtol,
    )

    def value(t: Tensor, base: np.ndarray, step: np.ndarray) -> float:
        t.data = base + step
        with grad_mode.no_grad():
            return float(objective().item())

    for name, layer, ltype, t in targets_:
        grad = t.grad if t.grad is not None else np.zeros(t.shape)
        base = t.data.copy()
        full = t.numel() <= full_below
        vs = ([np.eye(t.numel())[i].reshape(t.shape) for i in range(t.numel())] if full else
              [v / np.linalg.norm(v) for v in (rng.standard_normal(t.shape)
                                               for _ in range(directions))])  # fmt: skip
        worst_abs = worst_rel = 0.0
        retried, ok_all = 0, True
        try:
            for v in vs:
                ana = float((grad * v).sum())
                err = rel = None
                for k, div in enumerate((1.0, *RETRY)):
                    h = eps / div
                    num = (value(t, base, h * v) - value(t, base, -h * v)) / (2 * h)
                    e = abs(num - ana)
                    scale = max(abs(num), abs(ana))
                    if err is None:
                        err, rel = e, _rel(e, scale, atol)
                    if e <= atol * div + rtol * scale:
                        retried += k > 0
                        if k > 0:
                            err, rel = e, _rel(e, scale, atol)
                        break
                else:
                    ok_all = False
                worst_abs, worst_rel = max(worst_abs, err), max(worst_rel, rel)
        finally:
            t.data = base
        report.tensors.append(TensorCheck(name, layer, ltype, tuple(t.shape),
                                          "full" if full else "random", len(vs), worst_abs,
                                          worst_rel, retried, ok_all))  # fmt: skip
    report.seconds = time.perf_counter() - t0
    return report


# -- SPEC | CHECKPOINT | model.onnx -------------------------------------------------------------


def _batch_of(built, batch: int):
    from bpcli import data as bdata

    train = built.splits.train
    if built.task == "language":
        t = min(built.spec.train["bptt"], 16, max(1, len(train) // batch - 1))
        x, y = next(bdata.bptt_windows(bdata.stream_of(train), batch, t))
        return np.asarray(x), np.asarray(y)
    return np.asarray(train.x[:batch]), np.asarray(train.y[:batch])


def _onnx_inputs(model, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    xs = []
    for name, shape, dtype in model._inputs:
        dims = [d if isinstance(d, int) and d > 0 else batch for d in (shape or ())]
        if dtype is None or dtype.kind == "f":
            xs.append(rng.standard_normal(dims))
        elif dtype.kind in "iu":
            xs.append(rng.integers(0, 2, size=dims).astype(dtype))
        else:
            raise BpcliError(f"cannot draw a random input of type {dtype}", f"input {name}")
    return xs


def gradcheck_source(source: str | Path, layers=(), batch: int = 4, seed: int = 0,
                     dataset: str | None = None, **kw) -> GradcheckReport:  # fmt: skip
    """Check a spec (freshly initialised model), a checkpoint / run directory (its trained
    parameters) or an ONNX file (imported), on ``batch`` samples (of a spec's ``dataset``
    instead of its own when given). ``kw`` go to check_module."""
    p = Path(source)
    if batch < 1:
        raise BpcliError(f"must be >= 1, got {batch}", "--batch")
    if p.suffix.lower() == ".onnx":
        from bpcli.onnx import load

        if not p.exists():
            raise BpcliError("no such file", str(p))
        model = load(p, upcast="float64")  # its constants and casts too, not only the weights
        xs = _onnx_inputs(model, batch, np.random.default_rng(seed))
        return check_module(model, tuple(xs), layers=layers, seed=seed, source=str(p),
                            kind="onnx", **kw)  # fmt: skip
    if p.suffix.lower() == ".toml":
        from bpcli.app.model.build import build
        from bpcli.app.spec.schema import load_spec
        from bpcli.data.sources import dataset_overrides

        built, kind = build(load_spec(p, dataset_overrides(dataset))), "spec"
    elif dataset:
        raise BpcliError("applies to a spec (SPEC.toml) only", "--dataset")
    else:
        from bpcli.app.training.evaluate import restore

        built, kind = restore(p)[0], "checkpoint"
    x, y = _batch_of(built, batch)
    yt = Tensor(y.astype(np.float64) if y.dtype.kind == "f" else y)
    language = built.task == "language"
    return check_module(built.model, (x,), built.loss_fn, yt, layers=layers, seed=seed,
                        source=str(p), kind=kind, check_inputs=not language, **kw)  # fmt: skip
