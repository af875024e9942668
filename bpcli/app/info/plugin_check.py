"""``bpcli plugins check``: exercise every part each installed plugin registers.

Layers get a float64 finite-difference gradient check on a small random input (parameters
and input, see ``experiments.gradcheck``) and, where their ops have ONNX emitters, an export that
onnxruntime runs and compares (``bpcli.onnx.exporter.verify``). Losses get the same gradient check
with respect to their input; optimizers must lower a quadratic; schedules must give finite,
non-negative rates; datasets must build a non-empty, finite dataset; initialisers must fill
a weight with finite values.

How a part says how to build and feed it (class attributes, all optional)::

    class MyLayer(Module):
        example_config = {"width": 8}          # constructor keyword arguments (default: none)
        example_input_shape = (2, 3, 8, 8)     # one input, batch first (default: (2, 4));
                                               # a list of shapes for several inputs
        example_input_high = 10                # integer inputs in [0, high) (token ids)

Parts without them are tried with their defaults; the built-ins' examples are below.
"""

from __future__ import annotations

import inspect
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bpcli.app.experiments.gradcheck import check_module
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError

DEFAULT_SHAPE = (2, 4)


def _encoder(**kw):
    from bpcli.nn.layers.transformer import TransformerEncoderLayer

    return {"encoder_layer": TransformerEncoderLayer(**kw), "num_layers": 2}


# name -> (config, input shape(s), integer-input bound or None): small, so checks stay fast.
# A callable config is called; if it returns a Module, that is the example layer.
BUILTIN_EXAMPLES: dict[str, tuple] = {
    "linear": ({"in_features": 4, "out_features": 3}, (2, 4), None),
    "conv1d": ({"in_channels": 2, "out_channels": 3, "kernel_size": 3}, (2, 2, 6), None),
    "conv2d": ({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1},
               (2, 2, 5, 5), None),
    "conv_transpose2d": ({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2},
                         (2, 2, 3, 3), None),
    "max_pool1d": ({"kernel_size": 2}, (2, 3, 6), None),
    "max_pool2d": ({"kernel_size": 2}, (2, 2, 4, 4), None),
    "avg_pool1d": ({"kernel_size": 2}, (2, 3, 6), None),
    "avg_pool2d": ({"kernel_size": 2}, (2, 2, 4, 4), None),
    "adaptive_avg_pool2d": ({"output_size": 2}, (2, 2, 5, 5), None),
    "global_avg_pool": ({}, (2, 3, 4, 4), None),
    "batch_norm1d": ({"num_features": 3}, (4, 3), None),
    "batch_norm2d": ({"num_features": 2}, (3, 2, 3, 3), None),
    "layer_norm": ({"normalized_shape": 4}, (2, 3, 4), None),
    "group_norm": ({"num_groups": 2, "num_channels": 4}, (2, 4, 3), None),
    "embedding": ({"num_embeddings": 7, "embedding_dim": 3}, (2, 5), 7),
    "rnn": ({"input_size": 3, "hidden_size": 4, "batch_first": True}, (2, 3, 3), None),
    "lstm": ({"input_size": 3, "hidden_size": 4, "batch_first": True}, (2, 3, 3), None),
    "gru": ({"input_size": 3, "hidden_size": 4, "batch_first": True}, (2, 3, 3), None),
    "multihead_attention": ({"embed_dim": 4, "num_heads": 2, "batch_first": True},
                            [(2, 3, 4)] * 3, None),
    "transformer_encoder_layer": ({"d_model": 4, "nhead": 2, "dim_feedforward": 8,
                                   "batch_first": True}, (2, 3, 4), None),
    "transformer_encoder": (lambda: _encoder(d_model=4, nhead=2, dim_feedforward=8,
                                             batch_first=True), (2, 3, 4), None),
    "char_rnn": ({"vocab_size": 6, "embed_dim": 4, "hidden_size": 5}, (2, 4), 6),
    "char_transformer": ({"vocab_size": 6, "d_model": 4, "nhead": 2, "num_layers": 1,
                          "dim_feedforward": 8, "max_len": 8}, (2, 4), 6),
    "sequential": (lambda: _seq(), (2, 4), None),
    "residual": (lambda: _res(), (2, 4), None),
    "flatten": ({}, (2, 2, 3), None),
}  # fmt: skip


def _seq():
    from bpcli.nn.layers.activation import Tanh
    from bpcli.nn.layers.container import Sequential
    from bpcli.nn.layers.linear import Linear

    return Sequential(Linear(4, 3), Tanh())  # varargs: the example is the layer itself


def _res():
    from bpcli.nn.layers.linear import Linear

    return {"body": Linear(4, 4)}


@dataclass
class PartCheck:
    """One part's outcome; ``status`` is pass, fail, skip or error."""

    plugin: str
    kind: str
    name: str
    status: str
    detail: str = ""
    onnx: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PluginCheckReport:
    parts: list[PartCheck]
    warnings: list[str]

    @property
    def passed(self) -> bool:
        return all(p.status in ("pass", "skip") for p in self.parts)


# -- layers -------------------------------------------------------------------------------------


def layer_example(name: str, cls) -> tuple[dict, list[tuple[int, ...]], int | None]:
    """``(config, input shapes, int bound)`` from the class attributes, else the built-in
    table, else the defaults."""
    if hasattr(cls, "example_config") or hasattr(cls, "example_input_shape"):
        cfg = dict(getattr(cls, "example_config", {}))
        shape = getattr(cls, "example_input_shape", DEFAULT_SHAPE)
        high = getattr(cls, "example_input_high", None)
    elif name in BUILTIN_EXAMPLES:
        cfg, shape, high = BUILTIN_EXAMPLES[name]
        cfg = cfg() if callable(cfg) else dict(cfg)
    else:
        cfg, shape, high = {}, DEFAULT_SHAPE, None
    shapes = list(shape) if isinstance(shape, list) else [tuple(shape)]
    return cfg, shapes, high


def _inputs(shapes, high, rng) -> tuple[np.ndarray, ...]:
    if high is not None:
        return tuple(rng.integers(0, high, size=s) for s in shapes)
    return tuple(rng.standard_normal(s).astype(np.float32) for s in shapes)


def _onnx_round_trip(layer, xs, tmp: Path) -> str:
    try:
        import onnxruntime  # noqa: F401

        from bpcli.onnx import export, verify
        from bpcli.onnx.exporter.export import max_opset
    except ImportError:
        return "skipped (onnx/onnxruntime not installed)"
    path = tmp / "part.onnx"
    x = xs if len(xs) > 1 else xs[0]
    err = ""
    # NOTE: some ONNX ops are newer than the default opset 17 (Mish: 18), so newer opsets are
    # tried before the part is reported as not exportable.
    for opset in dict.fromkeys((17, 18, max_opset())):
        try:
            export(layer, x, path, opset=opset)
            v = verify(layer, path, inputs=xs)
        except BpcliError as e:
            err = f"not exported: {e.msg}"
            continue
        except Exception as e:  # a part's own exporter bug must not stop the other checks
            err = f"error: {type(e).__name__}: {str(e).splitlines()[0]}"
            continue
        return f"{'ok' if v.ok else 'MISMATCH'} (opset {opset}, max diff {v.max_abs:.1e})"
    return err


def check_layer(name: str, cls, plugin: str = "", onnx: bool = True, seed: int = 0,
                **kw) -> PartCheck:  # fmt: skip
    """Gradient check (and ONNX round trip) of one registered layer class."""
    rng = np.random.default_rng(seed)
    cfg, shapes, high = layer_example(name, cls)
    try:
        layer = cfg if not isinstance(cfg, dict) else cls(**cfg)
    except (TypeError, BpcliError) as e:
        return PartCheck(plugin, "layer", name, "skip",
                         f"cannot build with {cfg or 'defaults'} ({e}); give the class an "
                         "example_config")  # fmt: skip
    xs = _inputs(shapes, high, rng)
    try:
        r = check_module(layer, xs, seed=seed, source=name, **kw)
    except BpcliError as e:
        if "nothing" in e.msg or "no trainable" in e.msg:
            return PartCheck(plugin, "layer", name, "skip", e.msg)
        return PartCheck(plugin, "layer", name, "error", f"{e.where}: {e.msg}")
    worst = max(r.tensors, key=lambda t: t.max_abs)
    detail = (f"{len(r.tensors)} tensor(s), {r.checks} checks, max abs {worst.max_abs:.1e}, "
              f"max rel {max(t.max_rel for t in r.tensors):.1e}")  # fmt: skip
    if not r.passed:
        bad = ", ".join(t.name for t in r.tensors if not t.passed)
        detail += f"; WRONG gradient of {bad}"
    status = "pass" if r.passed else "fail"
    note = ""
    if onnx:
        layer.eval()
        with tempfile.TemporaryDirectory() as d:
            note = _onnx_round_trip(layer, xs, Path(d))
        if note.startswith(("MISMATCH", "error")):
            status = "fail"
    return PartCheck(plugin, "layer", name, status, detail, note)


# -- other kinds ---------------------------------------------------------------------------------


def _config(obj) -> dict:
    return dict(getattr(obj, "example_config", {}))


def check_loss(name: str, cls, plugin: str = "", seed: int = 0) -> PartCheck:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((4, 3))
    tries = [rng.integers(0, 3, size=4), rng.random((4, 3))]  # class indices, then soft targets
    last = ""
    for y in tries:
        try:
            loss = cls(**_config(cls))
            r = check_module(loss, (logits, y), seed=seed, source=name, kind="loss")
        except (BpcliError, TypeError, ValueError) as e:
            last = str(e)
            continue
        t = r.tensors[0]
        status = "pass" if r.passed else "fail"
        return PartCheck(plugin, "loss", name, status,
                         f"gradient wrt the input: {t.checks} checks, max abs {t.max_abs:.1e}"
                         + ("" if r.passed else "; WRONG gradient"))  # fmt: skip
    return PartCheck(plugin, "loss", name, "skip", f"no example input fits ({last})")


def check_optimizer(name: str, cls, plugin: str = "") -> PartCheck:
    from bpcli.nn.module import Parameter

    p = Parameter(np.array([1.5, -2.0, 0.5, 1.0]))
    cfg = _config(cls)
    if "lr" in inspect.signature(cls).parameters:
        cfg.setdefault("lr", 0.05)
    try:
        opt = cls([p], **cfg)
        start = float((p.data**2).sum())
        for _ in range(50):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
    except (BpcliError, TypeError, ValueError) as e:
        return PartCheck(plugin, "optimizer", name, "error", str(e))
    end = float((p.data**2).sum())
    ok = math.isfinite(end) and end < start
    return PartCheck(plugin, "optimizer", name, "pass" if ok else "fail",
                     f"sum(p^2) {start:.3g} -> {end:.3g} in 50 steps")  # fmt: skip


def check_schedule(name: str, cls, plugin: str = "") -> PartCheck:
    from bpcli.nn.module import Parameter
    from bpcli.optim import SGD

    opt = SGD([Parameter(np.ones(2))], lr=0.1)
    cfg = _config(cls)
    params = inspect.signature(cls).parameters
    for key, value in (("T_max", 10), ("total_steps", 10), ("step_size", 3), ("milestones", (3,)),
                       ("gamma", 0.5), ("lr_lambda", lambda e: 0.9**e), ("base_lr", 0.01),
                       ("max_lr", 0.1)):  # fmt: skip
        if key in params and params[key].default is inspect.Parameter.empty:
            cfg.setdefault(key, value)
    try:
        sched = cls(opt, **cfg)
        lrs = []
        for _ in range(10):
            opt.step()
            sched.step(1.0) if "metrics" in inspect.signature(
                sched.step
            ).parameters else sched.step()
            lrs.append(opt.param_groups[0]["lr"])
    except (BpcliError, TypeError, ValueError) as e:
        return PartCheck(plugin, "schedule", name, "skip" if isinstance(e, TypeError) else "error",
                         str(e))  # fmt: skip
    ok = all(math.isfinite(v) and v >= 0 for v in lrs)
    return PartCheck(plugin, "schedule", name, "pass" if ok else "fail",
                     "lr " + " ".join(f"{v:.3g}" for v in lrs[:5]) + " ...")  # fmt: skip


def check_dataset(name: str, factory, plugin: str = "") -> PartCheck:
    try:
        ds = factory(**_config(factory))
    except (BpcliError, TypeError, OSError) as e:
        return PartCheck(plugin, "dataset", name, "skip", f"needs options ({e})")
    x = np.asarray(ds.x)
    ok = len(ds) > 0 and len(ds.y) == len(x) and (x.dtype.kind != "f" or np.isfinite(x).all())
    return PartCheck(plugin, "dataset", name, "pass" if ok else "fail",
                     f"{len(ds)} samples, x {x.shape[1:]} {x.dtype}, task {ds.task}")  # fmt: skip


def check_initializer(name: str, fn, plugin: str = "") -> PartCheck:
    t = Tensor(np.zeros((6, 5), np.float32))
    try:
        fn(t, **_config(fn))
    except (BpcliError, TypeError, ValueError) as e:
        return PartCheck(plugin, "initializer", name, "skip", str(e))
    ok = bool(np.isfinite(t.data).all()) and t.dtype == np.float32
    return PartCheck(plugin, "initializer", name, "pass" if ok else "fail",
                     f"mean {t.data.mean():.3g}, std {t.data.std():.3g}")  # fmt: skip


CHECKERS = {"loss": check_loss, "optimizer": check_optimizer, "schedule": check_schedule,
            "dataset": check_dataset, "initializer": check_initializer}  # fmt: skip


def check_plugins(include_builtins: bool = False, kinds=None, names=(), onnx: bool = True,
                  **kw) -> PluginCheckReport:  # fmt: skip
    """Check every part the loaded plugins register (third-party ones unless
    ``include_builtins``), optionally only some ``kinds`` or part ``names``."""
    from bpcli.plugins import manager

    regs = manager.registries()
    parts = []
    for kind, reg in regs.items():
        if kinds and kind not in kinds:
            continue
        for name in reg.names():
            plugin = reg.plugin_of(name)
            if plugin in manager.DEFAULT_PLUGINS and not include_builtins:
                continue
            if names and name not in names:
                continue
            obj = reg.get(name)
            if kind == "layer":
                parts.append(check_layer(name, obj, plugin, onnx=onnx, **kw))
            elif kind in CHECKERS:
                parts.append(CHECKERS[kind](name, obj, plugin))
            else:
                parts.append(PartCheck(plugin, kind, name, "skip", "checked by ONNX import"))
    return PluginCheckReport(parts, list(manager.warnings))
