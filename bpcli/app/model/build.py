"""From a resolved Spec to the parts of a run: data splits, model, loss, optimizer, schedule.

Sizes a spec leaves out (Linear ``in_features``, Conv ``in_channels``, BatchNorm
``num_features``, a language model's ``vocab_size``) are found by one dry forward pass of a
sample batch, layer by layer, so a size that does not fit is reported naming both layers and
their shapes before any training starts.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcli import data as bdata
from bpcli.app.spec.schema import Spec
from bpcli.data import sources
from bpcli.data.scale import input_rms
from bpcli.engine.grad_mode import no_grad
from bpcli.engine.random import manual_seed
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.nn.layers.container import Residual, Sequential
from bpcli.nn.module import Module
from bpcli.plugins.manager import registry

SAMPLE = 2  # samples in the dry-run batch (BatchNorm in train mode needs more than one)


@dataclass(eq=False)
class Built:
    """Everything a training run needs, built from one spec.

    ``loss_fn(outputs, targets)`` takes the model's output as is (language models: the logits
    ``(N, T, V)`` and targets ``(N, T)``). ``scheduler`` steps per ``schedule_interval``
    ("epoch" or "step"); a ReduceLROnPlateau wants ``step(metric)``. ``input_shape`` is one
    sample's shape (a BPTT window ``(bptt,)`` for language).
    """

    spec: Spec
    model: Module
    loss_fn: Callable[[Any, Any], Tensor]
    loss: Module
    optimizer: Any
    scheduler: Any
    schedule_interval: str | None
    splits: bdata.Splits | None
    task: str
    n_classes: int | None
    stateful: bool
    standardizer: bdata.Standardizer | None
    input_shape: tuple[int, ...]
    steps_per_epoch: int
    dataset: dict = field(default_factory=dict)  # Dataset.describe() of the full dataset
    classes: tuple[str, ...] | None = None
    input_rms: float | None = None  # of the raw training inputs (predict's scale check)


def _err(spec: Spec, path: str, msg: str) -> BpcliError:
    return BpcliError(msg, f"{spec.source}: {path}")


def _call(spec: Spec, path: str, fn, /, *args, **kwargs):
    # NOTE: positional-only, so a constructor argument named path (npz, csv) reaches fn.
    """Call a registered constructor; its complaints become errors naming the spec field."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        return fn(*args, **kwargs)
    except BpcliError as e:
        raise _err(spec, path, e.msg if e.where is None else f"{e.where}: {e.msg}") from None
    except TypeError as e:
        raise _err(spec, path, f"bad arguments: {e}") from None


# -- data ---------------------------------------------------------------------------------------


def load_dataset(spec: Spec, split: str | None = None) -> bdata.Dataset:
    """The spec's dataset, or with ``split`` ("val"/"test") its separate split file."""
    d = spec.data
    kind, options, field_ = d["dataset"], d["options"], "data.options"
    if split is not None:
        kind, options = sources.split_source(kind, options, d[split], None)
        field_ = f"data.{split}"
    factory = registry("dataset").get(kind)
    ds = _call(spec, field_, factory, **options)
    if split is None and d["limit"] is not None and d["limit"] < len(ds):
        ds = ds.subset(slice(0, d["limit"]))
    return ds


def _split_files(spec: Spec, ds: bdata.Dataset) -> dict[str, bdata.Dataset]:
    """The separate val/test files of a spec, checked against the training data."""
    out = {}
    for k in ("val", "test"):
        if not isinstance(spec.data[k], str):
            continue
        part = load_dataset(spec, k)
        where = f"{spec.source}: data.{k}"
        if part.feature_shape != ds.feature_shape or part.task != ds.task:
            raise BpcliError(f"{part.meta.get('source')}: {part.task} samples of shape "
                             f"{part.feature_shape}, but the training data are {ds.task} of "
                             f"shape {ds.feature_shape}", where)  # fmt: skip
        if ds.task == "language":
            raise BpcliError("separate split files are for classification and regression data; "
                             "split a text by fractions", where)  # fmt: skip
        if ds.task == "classification":
            part = bdata.align_classes(part, ds.classes, ds.n_classes, where)
        out[k] = part
    return out


def _standardize_axis(mode: str, ndim: int):
    if mode == "channel" and ndim > 2:
        return (0, *range(2, ndim))
    if mode == "global":
        return tuple(range(ndim))
    return 0


def make_splits(spec: Spec, ds: bdata.Dataset):
    d = spec.data
    stratify = d["stratify"] and ds.task == "classification"
    files = _split_files(spec, ds)
    val, test = (0 if k in files else d[k] for k in ("val", "test"))
    try:
        splits = bdata.split(ds, val, test, seed=spec.seed, stratify=stratify)
    except BpcliError as e:
        raise _err(spec, "data", e.msg) from None
    if files:
        splits = splits._replace(**files)
    if not d["standardize"]:
        return splits, None
    if ds.task == "language":
        raise _err(spec, "data.standardize", "token ids of a language dataset cannot be "
                                              "standardised; set it to false")  # fmt: skip
    return bdata.standardize(splits, _standardize_axis(d["standardize"], ds.x.ndim))


def _sample(spec: Spec, splits: bdata.Splits, task: str):
    train = splits.train
    if task == "language":
        t = min(spec.train["bptt"], max(1, len(train) // SAMPLE - 1))
        x, y = next(bdata.bptt_windows(bdata.stream_of(train), SAMPLE, t))
        return x, y
    x = train.x[:SAMPLE]
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype(np.float32)
    return x, train.y[:SAMPLE]


# -- model --------------------------------------------------------------------------------------


def _make_layer(spec: Spec, path: str, cfg: dict, extra: dict) -> Module:
    kind = cfg["type"]
    if kind == "residual":
        body = _make_layers(spec, f"{path}.body", cfg["body"], extra)
        short = cfg.get("shortcut") or []
        sc = _make_layers(spec, f"{path}.shortcut", short, extra) if short else None
        return Residual(body, sc)
    if kind == "sequential":
        return _make_layers(spec, f"{path}.layers", cfg["layers"], extra)
    cls = registry("layer").get(kind)
    args = {k: v for k, v in cfg.items() if k != "type"}
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    for name, value in extra.items():  # sizes taken from the data (vocab_size)
        if name in params and name not in args:
            args[name] = value
    for name in ("in_features", "in_channels", "num_features", "input_size", "num_channels"):
        if name in params and name not in args and params[name].default is inspect._empty:
            args[name] = None  # built on the first forward
    index = path.rsplit("[", 1)[-1].rstrip("]")
    try:
        return _call(spec, path, cls, **args)
    except BpcliError as e:
        raise BpcliError(f"layer {index} ({kind}): {e.msg}", e.where) from None


def _make_layers(spec: Spec, path: str, cfgs: list[dict], extra: dict) -> Sequential:
    return Sequential(*[_make_layer(spec, f"{path}[{i}]", c, extra) for i, c in enumerate(cfgs)])


def _shape(t) -> str:
    shape = tuple(t.shape) if not isinstance(t, tuple) else tuple(t[0].shape)
    return "(N,)" if len(shape) == 1 else "(" + ", ".join(["N", *map(str, shape[1:])]) + ")"


def _dry(spec: Spec, path: str, seq: Sequential, cfgs: list[dict], x, source: str):
    """Run ``seq`` one child at a time so a failure names this layer and the one before it."""
    prev = source
    for i, (mod, cfg) in enumerate(zip(seq, cfgs, strict=True)):
        here, kind = f"{path}[{i}]", cfg["type"]
        if kind == "residual":
            body = _dry(spec, f"{here}.body", mod.body, cfg["body"], x, prev)
            skip = x if mod.shortcut is None else _dry(
                spec, f"{here}.shortcut", mod.shortcut, cfg["shortcut"], x, prev)  # fmt: skip
            if tuple(body.shape) != tuple(skip.shape):
                what = "its input" if mod.shortcut is None else "the shortcut"
                raise _err(spec, here, f"layer {i} (residual): the body gives {_shape(body)} but "
                                       f"{what} gives {_shape(skip)}")  # fmt: skip
            x = mod(x)
        elif kind == "sequential":
            x = _dry(spec, f"{here}.layers", mod, cfg["layers"], x, prev)
        else:
            try:
                x = mod(x)
            except (BpcliError, ValueError, TypeError, IndexError) as e:
                msg = e.msg if isinstance(e, BpcliError) else str(e)
                got = _shape(x)
                raise _err(spec, here, f"layer {i} ({kind}) {msg}, but {prev} gives {got}"
                           ) from None  # fmt: skip
        prev = f"layer {i} ({kind})"
    return x


def build_model(spec: Spec, x: np.ndarray, task: str, n_classes: int | None) -> Module:
    cfgs = spec.model["layers"]
    extra = {"vocab_size": n_classes} if task == "language" else {}
    seq = _make_layers(spec, "model.layers", cfgs, extra)
    language = [getattr(m, "language_model", False) for m in seq]
    if task == "language" or any(language):
        if task != "language" or len(seq) != 1 or not language[0]:
            raise _err(spec, "model.layers", "a language dataset needs exactly one language-"
                       "model layer (char_rnn or char_transformer), and such a layer needs a "
                       "language dataset")  # fmt: skip
        model = seq[0]
    else:
        model = seq
    model.eval()
    with no_grad():
        if task == "language":
            try:
                model(Tensor(x))
            except (BpcliError, ValueError, TypeError, IndexError) as e:
                msg = e.msg if isinstance(e, BpcliError) else str(e)
                raise _err(spec, "model.layers[0]", f"layer 0 ({cfgs[0]['type']}) {msg}") from None
        else:
            _dry(spec, "model.layers", seq, cfgs, Tensor(x), "the data")
    model.train()
    _apply_init(spec, model)
    return model


def _apply_init(spec: Spec, model: Module) -> None:
    rng = np.random.default_rng([spec.seed, 1])
    for key, pick in (("init", lambda p: p.ndim >= 2), ("bias_init", lambda p: p.ndim == 1)):
        cfg = spec.model[key]
        if cfg is None:
            continue
        fn = registry("initializer").get(cfg["type"])
        args = {k: v for k, v in cfg.items() if k != "type"}
        if "generator" in inspect.signature(fn).parameters:
            args["generator"] = rng
        for name, p in model.named_parameters():
            if pick(p) and (key == "init" or name.endswith("bias")):
                _call(spec, f"model.{key}", fn, p, **args)


# -- loss, optimizer, schedule ------------------------------------------------------------------


def make_loss(spec: Spec, task: str) -> tuple[Module, Callable]:
    args = {k: v for k, v in spec.loss.items() if k != "type"}
    loss = _call(spec, "loss", registry("loss").get(spec.loss["type"]), **args)
    if task != "language":
        return loss, loss

    def loss_fn(outputs, targets):
        v = outputs.shape[-1]
        t = targets if isinstance(targets, Tensor) else Tensor(np.asarray(targets))
        return loss(outputs.reshape(-1, v), t.reshape(-1))

    return loss, loss_fn


def steps_per_epoch(spec: Spec, splits: bdata.Splits, task: str) -> int:
    n, b = len(splits.train), spec.train["batch_size"]
    if task == "language":
        return bdata.n_bptt_windows(n + 1, b, spec.train["bptt"])
    return bdata.n_batches(n, b)


def make_schedule(spec: Spec, optimizer, steps: int):
    s = spec.schedule
    if s is None:
        return None, None
    interval, warmup = s["interval"], s["warmup"]
    total = spec.train["epochs"] * (steps if interval == "step" else 1)
    cls = registry("schedule").get(s["type"])
    fixed = ("type", "interval", "warmup", "warmup_start_factor")
    args = {k: v for k, v in s.items() if k not in fixed}
    params = inspect.signature(cls).parameters
    if "T_max" in params and "T_max" not in args:
        args["T_max"] = max(1, total - warmup)
    if "total_steps" in params and "total_steps" not in args and "epochs" not in args:
        args["total_steps"] = max(1, total - warmup)
    sched = _call(spec, "schedule", cls, optimizer, **args)
    if warmup:
        from bpcli.optim.lr_scheduler import WarmupLR

        sched = _call(spec, "schedule.warmup", WarmupLR, optimizer, warmup, after=sched,
                      start_factor=s["warmup_start_factor"])  # fmt: skip
    return sched, interval


# -- everything ---------------------------------------------------------------------------------


def build(spec: Spec, data: bool = True) -> Built:
    """The run's parts from a resolved spec. ``data=False`` keeps no splits (the data is still
    read to infer the model's sizes), as for rebuilding a model to load a checkpoint into."""
    manual_seed(spec.seed)  # layers' default initialisers draw from the engine's generator
    ds = load_dataset(spec)
    imported = None
    if "onnx" in spec.model:  # an imported graph instead of layers
        from bpcli.app.model.onnx_files import onnx_model

        imported, ds = onnx_model(spec, ds)
    splits, standardizer = make_splits(spec, ds)
    task = ds.task
    rms = input_rms(ds.x) if task != "language" else None
    x, y = _sample(spec, splits, task)
    model = build_model(spec, x, task, ds.n_classes) if imported is None else imported
    loss, loss_fn = make_loss(spec, task)
    _check_loss(spec, model, loss_fn, x, y, task, ds.n_classes)
    params = [p for p in model.parameters() if p.requires_grad]
    opt_args = {k: v for k, v in spec.optimizer.items() if k != "type"}
    optimizer = _call(spec, "optimizer", registry("optimizer").get(spec.optimizer["type"]),
                      params, **opt_args)  # fmt: skip
    steps = steps_per_epoch(spec, splits, task)
    scheduler, interval = make_schedule(spec, optimizer, steps)
    stateful = bool(getattr(model, "stateful", False))
    input_shape = (spec.train["bptt"],) if task == "language" else tuple(splits.train.x.shape[1:])
    return Built(spec, model, loss_fn, loss, optimizer, scheduler, interval,
                 splits if data else None, task, ds.n_classes, stateful, standardizer,
                 input_shape, steps, ds.describe(), ds.classes, rms)  # fmt: skip


def _check_loss(spec: Spec, model: Module, loss_fn, x, y, task: str, n_classes) -> None:
    """The loss of the dry-run output, so a head that does not fit the targets fails now."""
    model.eval()
    out = None
    try:
        with no_grad():
            out = model(Tensor(x))
            out = out[0] if task == "language" else out
            value = loss_fn(out, Tensor(y))
    except (BpcliError, ValueError, TypeError, IndexError) as e:
        msg = e.msg if isinstance(e, BpcliError) else str(e)
        raise _err(spec, "loss", f"{spec.loss['type']} cannot take the model's output "
                   f"{'?' if out is None else _shape(out)} with targets of shape "
                   f"{_shape(np.asarray(y))}: {msg}") from None  # fmt: skip
    finally:
        model.train()
    model_classes = out.shape[-1] if out is not None and out.ndim >= 2 else None
    if task != "regression" and spec.loss["type"] in ("cross_entropy", "nll"):
        if model_classes != n_classes:
            raise _err(
                spec,
                "model.layers",
                f"the last layer gives {_shape(out)} but the "
                f"dataset has {n_classes} classes: end with out_features = {n_classes}",
            )
    if not math.isfinite(float(value.item() if hasattr(value, "item") else value)):
        raise _err(spec, "loss", "the loss of the first batch is not finite")
