"""Model specs: TOML files naming registered parts, validated and filled with every default.

A spec (see models/*.toml and ``bpcli init-spec``)::

    name = "mlp-digits"              # default: the file's stem
    seed = 0
    [data]
    dataset = "digits"               # a registered dataset
    options = {flatten = true}       # keyword arguments of the dataset factory
    val = 0.1                        # fraction (float) or count (int); also test
    standardize = true               # true/"feature", "channel", "global" or false
    [model]
    init = {type = "he_normal", nonlinearity = "relu"}   # or a name; weights only (2+ dims)
    layers = [{type = "linear", out_features = 256}, {type = "relu"},
              {type = "residual", body = [...], shortcut = [...]}]
    [loss]
    type = "cross_entropy"           # plus the loss's constructor arguments
    [optimizer]
    type = "adam"
    lr = 2e-3
    [schedule]                       # optional
    type = "cosine"                  # T_max defaults to the epochs (or steps) after warmup
    interval = "epoch"               # or "step" (the default of cyclic)
    warmup = 0                       # linear warmup, in intervals
    [train]
    epochs = 40
    batch_size = 32
    early_stopping = {metric = "val_loss", patience = 5}

Constructor arguments are checked against the registered part's signature here, so a typo is
reported before any data is loaded. ``Spec.to_toml()`` writes the resolved spec, which
``load_spec`` reads back to an equal Spec.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpcli.app.spec import toml_writer
from bpcli.errors import BpcliError

REQUIRED = object()
SECTIONS = ("data", "model", "loss", "optimizer", "schedule", "train")
TOP_LEVEL = ("name", "seed", "description", *SECTIONS)

# Fixed fields per section: default (REQUIRED: must be given) and checker kind.
DEFAULTS: dict[str, dict[str, tuple[Any, str]]] = {
    "data": {
        "dataset": (None, "str?"), "options": ({}, "table"), "val": (0.1, "split"),
        "test": (0.0, "split"), "train": (None, "str?"), "stratify": (True, "bool"),
        "standardize": (False, "standardize"),
        "limit": (None, "posint?"),
    },
    "model": {
        "layers": (REQUIRED, "layers"), "init": (None, "init?"), "bias_init": (None, "init?"),
    },
    "train": {
        "epochs": (10, "posint"), "batch_size": (32, "posint"),
        "clip_grad_norm": (None, "posfloat?"), "clip_grad_value": (None, "posfloat?"),
        "early_stopping": (None, "early?"), "bptt": (64, "posint"), "log_every": (50, "posint"),
        "sync_batchnorm": (False, "bool"),
    },
    "schedule": {
        "type": (REQUIRED, "str"), "interval": ("epoch", "interval"), "warmup": (0, "nonnegint"),
        "warmup_start_factor": (0.01, "posfloat"),
    },
    "loss": {"type": ("cross_entropy", "str")},
    "optimizer": {"type": ("adam", "str")},
}  # fmt: skip
EARLY_STOPPING = {"metric": "val_loss", "patience": 5, "mode": None, "min_delta": 0.0}
# Sections whose other keys are the registered part's constructor arguments.
ARG_SECTIONS = {"loss": "loss", "optimizer": "optimizer", "schedule": "schedule"}
# Layer arguments build() infers from the data when the spec leaves them out.
INFERRED = ("in_features", "in_channels", "num_features", "input_size", "num_channels",
            "vocab_size")  # fmt: skip
# Schedule arguments build() fills from the epochs and batches.
SCHEDULE_AUTO = ("T_max", "total_steps", "epochs", "steps_per_epoch")
_NOT_ARGS = ("self", "params", "optimizer", "last_epoch", "after", "generator", "tensor", "t")
STANDARDIZE = ("feature", "channel", "global")
ONNX_MODEL = ("onnx", "freeze", "replace_head")  # [model] fields of an imported graph


@dataclass
class Spec:
    """A resolved spec: every section a plain dict with every default filled in."""

    name: str
    seed: int
    data: dict
    model: dict
    loss: dict
    optimizer: dict
    schedule: dict | None
    train: dict
    description: str = ""
    source: str = field(default="<spec>", compare=False)

    def to_dict(self) -> dict:
        return {"name": self.name, "seed": self.seed, "description": self.description,
                "data": copy.deepcopy(self.data), "model": copy.deepcopy(self.model),
                "loss": dict(self.loss), "optimizer": dict(self.optimizer),
                "schedule": None if self.schedule is None else dict(self.schedule),
                "train": copy.deepcopy(self.train)}  # fmt: skip

    def to_toml(self, header: str = "") -> str:
        """The resolved spec as TOML text that ``load_spec`` reads back to an equal Spec."""
        return toml_writer.dumps(self.to_dict(), header)


# -- loading ------------------------------------------------------------------------------------


ONNX_HINT = "`bpcli import FILE` describes it, `bpcli train FILE --dataset NAME` fine-tunes it"


def load_spec(path: str | Path, overrides=()) -> Spec:
    """Read, override (``"a.b=value"``, the value parsed as TOML) and resolve a spec file."""
    p = Path(path)
    where = str(p)
    if p.suffix.lower() == ".onnx":
        raise BpcliError(f"an ONNX model, not a spec: {ONNX_HINT}", where)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BpcliError("no such spec file", where) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BpcliError(f"cannot read the spec ({e})", where) from None
    raw = parse_toml(text, where)
    apply_overrides(raw, overrides)
    return resolve(raw, where)


def parse_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        if m:
            msg = msg[: m.start()].strip()
            where = f"{where}:{m.group(1)}:{m.group(2)}"
        raise BpcliError(f"TOML syntax error: {msg}", where) from None


def _override_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word such as adam or digits is meant as a string


def apply_overrides(raw: dict, overrides) -> None:
    """Apply ``key.path=value`` strings to the raw spec in place (``layers.2`` indexes a list)."""
    for item in overrides:
        path, sep, text = item.partition("=")
        path = re.sub(r"\[(\d+)\]", r".\1", path.strip())
        keys = [k.strip() for k in path.split(".")]
        if not sep or not all(keys):
            raise BpcliError(f"expected key.path=value, got {item!r}", "--set")
        _check_override_path(keys, item)
        node: Any = raw
        for i, k in enumerate(keys):
            last = i == len(keys) - 1
            here = ".".join(keys[: i + 1])
            if isinstance(node, list):
                if not k.isdigit() or int(k) >= len(node):
                    raise BpcliError(f"{here}: no item {k} in a list of {len(node)}", "--set")
                k = int(k)
            elif not isinstance(node, dict):
                raise BpcliError(f"{here}: {'.'.join(keys[:i])} is a value, not a table", "--set")
            if last:
                node[k] = _override_value(text)
            else:
                if isinstance(node, dict) and k not in node:
                    node[k] = {}
                node = node[k]


def _check_override_path(keys: list[str], item: str) -> None:
    top = keys[0]
    if top not in TOP_LEVEL:
        raise BpcliError(f"{item!r}: unknown field {top!r}{_hint(top, TOP_LEVEL)}", "--set")
    if len(keys) > 1 and top in SECTIONS and top not in ARG_SECTIONS:
        valid = [*DEFAULTS[top], *(ONNX_MODEL if top == "model" else ())]
        if keys[1] not in valid:
            raise BpcliError(
                f"{item!r}: unknown field {top}.{keys[1]}{_hint(keys[1], valid)}", "--set"
            )


# -- resolving ----------------------------------------------------------------------------------


def _hint(name: str, valid) -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    sug = f"; did you mean {close[0]!r}?" if close else ""
    return f"{sug} (valid: {', '.join(valid)})"


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def error(self, path: str, msg: str) -> BpcliError:
        return BpcliError(msg, f"{self.source}: {path}")


def resolve(raw: dict, source: str = "<spec>") -> Spec:
    """Validate a raw spec (as parsed from TOML) and fill every default."""
    ctx = _Ctx(source)
    raw = copy.deepcopy(raw)
    for k in raw:
        if k not in TOP_LEVEL:
            raise ctx.error(k, f"unknown field{_hint(k, TOP_LEVEL)}")
    name = raw.get("name", Path(source).stem if source != "<spec>" else "spec")
    seed = raw.get("seed", 0)
    if not isinstance(name, str) or not name:
        raise ctx.error("name", f"must be a non-empty string, got {name!r}")
    _check(ctx, "seed", seed, "nonnegint")
    description = raw.get("description", "")
    _check(ctx, "description", description, "str")
    out: dict[str, Any] = {}
    for sec in SECTIONS:
        given = raw.get(sec)
        if given is None and sec in ("schedule",):
            out[sec] = None
            continue
        if given is None and sec in ("data", "model"):
            raise ctx.error(sec, f"the [{sec}] section is required")
        given = {} if given is None else given
        if not isinstance(given, dict):
            raise ctx.error(sec, f"must be a table, got {_kind(given)}")
        out[sec] = _section(ctx, sec, given)
    _cross_checks(ctx, out)
    return Spec(name, seed, out["data"], out["model"], out["loss"], out["optimizer"],
                out["schedule"], out["train"], description, source)  # fmt: skip


def _section(ctx: _Ctx, sec: str, given: dict) -> dict:
    if sec == "model" and "onnx" in given:
        return _onnx_model(ctx, given)
    fixed = DEFAULTS[sec]
    res: dict[str, Any] = {}
    for k, (default, kind) in fixed.items():
        path = f"{sec}.{k}"
        if k not in given:
            if default is REQUIRED:
                raise ctx.error(path, "is required")
            res[k] = copy.deepcopy(default)
        else:
            res[k] = _check(ctx, path, given[k], kind)
    extra = {k: v for k, v in given.items() if k not in fixed}
    if sec in ARG_SECTIONS:
        obj = _registered(ctx, f"{sec}.type", ARG_SECTIONS[sec], res["type"])
        if sec == "schedule" and "interval" not in given:  # a class may default to "step"
            interval = getattr(obj, "default_interval", "epoch")
            res["interval"] = _check(ctx, "schedule.interval", interval, "interval")
        auto = SCHEDULE_AUTO if sec == "schedule" else ()
        res.update(_args(ctx, sec, obj, extra, auto=auto))
        if sec == "optimizer" and "lr" in res:
            res["lr"] = _check(ctx, "optimizer.lr", res["lr"], "posfloat")
    elif extra:
        k = next(iter(extra))
        raise ctx.error(f"{sec}.{k}", f"unknown field{_hint(k, fixed)}")
    if sec == "data":
        _data_source(ctx, res)
        res["options"] = _args(ctx, "data.options", _registered(ctx, "data.dataset", "dataset",
                               res["dataset"]), res["options"], fill=False)  # fmt: skip
    if sec == "model":
        res["layers"] = _layers(ctx, "model.layers", res["layers"])
    return res


def _data_source(ctx: _Ctx, res: dict) -> None:
    """A data file named as the dataset (or ``data.train``) becomes its loader with the file's
    absolute path in ``options``; split files (``val``/``test`` strings) become absolute paths."""
    from bpcli.data.sources import absolute, resolve_source, split_source
    from bpcli.plugins.manager import registry

    base = None if ctx.source.startswith("<") else Path(ctx.source).parent
    if res.get("train") is not None:
        if res["dataset"] is not None:
            raise ctx.error("data.train", "give the training data once: dataset or train")
        res["dataset"] = res["train"]
    if res["dataset"] is None:
        raise ctx.error("data.dataset", "is required (a registered name or a data file)")
    res["train"] = None
    name = _check(ctx, "data.dataset", res["dataset"], "str")
    try:
        known = name in registry("dataset")
        kind, res["options"] = resolve_source(name, res["options"], base, known)
    except BpcliError as e:
        raise ctx.error("data.dataset", f"{e.where}: {e.msg}" if e.where else e.msg) from None
    res["dataset"] = kind
    for k in ("val", "test"):
        if isinstance(res[k], str):
            try:
                split_source(kind, res["options"], res[k], base)
            except BpcliError as e:
                raise ctx.error(f"data.{k}", f"{e.where}: {e.msg}") from None
            res[k] = absolute(res[k], base)
    _registered(ctx, "data.dataset", "dataset", kind)


def _onnx_model(ctx: _Ctx, given: dict) -> dict:
    """``[model] onnx = "file.onnx"`` (relative to the spec's folder), ``freeze = ["glob"]``
    (parameter names to keep fixed), ``replace_head = N`` (a fresh N-class classifier)."""
    for k in given:
        if k not in ONNX_MODEL:
            raise ctx.error(f"model.{k}", f"does not apply to an imported ONNX model "
                                          f"(valid: {', '.join(ONNX_MODEL)})")  # fmt: skip
    path = _check(ctx, "model.onnx", given["onnx"], "str")
    if not ctx.source.startswith("<") and not Path(path).is_absolute():
        path = str((Path(ctx.source).parent / path).resolve())
    freeze = given.get("freeze", [])
    if isinstance(freeze, str):
        freeze = [freeze]
    if not isinstance(freeze, list) or not all(isinstance(f, str) and f for f in freeze):
        raise ctx.error("model.freeze", f"must be an array of glob strings, got {freeze!r}")
    head = _check(ctx, "model.replace_head", given.get("replace_head"), "posint?")
    return {"onnx": path, "freeze": list(freeze), "replace_head": head}


def _cross_checks(ctx: _Ctx, out: dict) -> None:
    data = out["data"]
    for k in ("val", "test"):
        if isinstance(data[k], float) and not 0.0 <= data[k] < 1.0:
            raise ctx.error(f"data.{k}", f"a fraction must be in [0, 1), got {data[k]}")
    if isinstance(data["val"], float) and isinstance(data["test"], float):
        if data["val"] + data["test"] >= 1.0:
            raise ctx.error(
                "data", f"val {data['val']} + test {data['test']} leave no training data"
            )
    sched = out["schedule"]
    if sched is not None and sched["type"] == "plateau" and sched["interval"] != "epoch":
        raise ctx.error("schedule.interval", "plateau steps once per epoch (on a metric)")


def _kind(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(v), type(v).__name__)  # fmt: skip


def _check(ctx: _Ctx, path: str, v, kind: str):
    """The value, validated (and ints coerced to float where a float is meant)."""
    if kind.endswith("?"):
        if v is None:
            return None
        kind = kind[:-1]
    number = isinstance(v, int | float) and not isinstance(v, bool)
    if kind in ("posint", "nonnegint"):
        low = 1 if kind == "posint" else 0
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ctx.error(path, f"must be an integer >= {low}, got {v!r}")
        return v
    if kind == "posfloat":
        if not number or not v > 0 or v != v or v == float("inf"):
            raise ctx.error(path, f"must be a number > 0, got {v!r}")
        return float(v)
    if kind == "bool":
        if not isinstance(v, bool):
            raise ctx.error(path, f"must be true or false, got {_kind(v)} {v!r}")
        return v
    if kind == "str":
        if not isinstance(v, str):
            raise ctx.error(path, f"must be a string, got {_kind(v)} {v!r}")
        return v
    if kind == "table":
        if not isinstance(v, dict):
            raise ctx.error(path, f"must be a table, got {_kind(v)} {v!r}")
        return v
    if kind == "split" and isinstance(v, str) and v:  # a separate split file
        return v
    if kind in ("part", "split"):
        if not number or v < 0:
            file = " or a data file" if kind == "split" else ""
            raise ctx.error(path, f"must be a fraction in [0, 1) or a count >= 0{file}, "
                                  f"got {v!r}")  # fmt: skip
        return v
    if kind == "interval":
        if v not in ("epoch", "step"):
            raise ctx.error(path, f'must be "epoch" or "step", got {v!r}')
        return v
    if kind == "standardize":
        if v is True:
            return "feature"
        if v is False or v in STANDARDIZE:
            return v
        raise ctx.error(path, f"must be false, true or one of {', '.join(STANDARDIZE)}; got {v!r}")
    if kind == "init":
        return _init(ctx, path, v)
    if kind == "early":
        return _early(ctx, path, v)
    if kind == "layers":
        return v
    raise AssertionError(kind)


def _init(ctx: _Ctx, path: str, v) -> dict:
    if isinstance(v, str):
        v = {"type": v}
    if not isinstance(v, dict) or not isinstance(v.get("type"), str):
        raise ctx.error(path, f"must be an initialiser name or a table with a type, got {v!r}")
    fn = _registered(ctx, f"{path}.type", "initializer", v["type"])
    args = {k: x for k, x in v.items() if k != "type"}
    return {"type": v["type"], **_args(ctx, path, fn, args)}


def _early(ctx: _Ctx, path: str, v) -> dict:
    if not isinstance(v, dict):
        raise ctx.error(path, f"must be a table like {{metric = \"val_loss\", patience = 5}}, "
                              f"got {_kind(v)}")  # fmt: skip
    for k in v:
        if k not in EARLY_STOPPING:
            raise ctx.error(f"{path}.{k}", f"unknown field{_hint(k, EARLY_STOPPING)}")
    res = {**EARLY_STOPPING, **v}
    _check(ctx, f"{path}.metric", res["metric"], "str")
    _check(ctx, f"{path}.patience", res["patience"], "posint")
    res["min_delta"] = float(_check(ctx, f"{path}.min_delta", res["min_delta"], "part"))
    if res["mode"] is None:
        res["mode"] = "max" if res["metric"].endswith(("accuracy", "r2")) else "min"
    if res["mode"] not in ("min", "max"):
        raise ctx.error(f"{path}.mode", f'must be "min" or "max", got {res["mode"]!r}')
    return res


def _registered(ctx: _Ctx, path: str, kind: str, name: str):
    from bpcli.plugins.manager import registry

    reg = registry(kind)
    if not isinstance(name, str) or name not in reg:
        raise ctx.error(path, reg.unknown_message(str(name)))
    return reg.get(name)


def _toml_able(v) -> bool:
    if isinstance(v, bool | int | float | str):
        return True
    return isinstance(v, list | tuple) and all(_toml_able(x) for x in v)


def _plain(v):
    return [_plain(x) for x in v] if isinstance(v, tuple | list) else v


def _args(ctx, path: str, obj, given: dict, auto=(), what=None, fill=True) -> dict:
    """``given`` checked against ``obj``'s signature, then its TOML-able defaults filled in."""
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return dict(given)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    names = [n for n, p in params.items() if n not in _NOT_ARGS
             and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]  # fmt: skip
    what = what or path
    for k in given:
        if k not in names and not var_kw:
            raise ctx.error(f"{path}.{k}", f"{what} takes no argument {k!r}{_hint(k, names)}")
    out = {}
    for n in names:
        p = params[n]
        if n in given:
            out[n] = _plain(given[n])
        elif p.default is inspect.Parameter.empty:
            if n not in auto:
                raise ctx.error(f"{path}.{n}", f"{what} needs the argument {n!r}")
        elif fill and p.default is not None and _toml_able(p.default):
            out[n] = _plain(p.default)
    out.update({k: _plain(v) for k, v in given.items() if k not in out})
    return out


def _layers(ctx: _Ctx, path: str, layers) -> list[dict]:
    if not isinstance(layers, list) or not layers:
        raise ctx.error(path, 'must be a non-empty array of tables like {type = "linear", ...}')
    return [_layer(ctx, f"{path}[{i}]", layer) for i, layer in enumerate(layers)]


def _layer(ctx: _Ctx, path: str, layer) -> dict:
    if not isinstance(layer, dict) or not isinstance(layer.get("type"), str):
        raise ctx.error(path, f'must be a table with a type = "<layer name>", got {layer!r}')
    kind = layer["type"]
    args = {k: v for k, v in layer.items() if k != "type"}
    if kind == "residual":
        for k in args:
            if k not in ("body", "shortcut"):
                raise ctx.error(f"{path}.{k}", f"unknown field{_hint(k, ('body', 'shortcut'))}")
        if "body" not in args:
            raise ctx.error(f"{path}.body", "a residual block needs a body = [layers]")
        short = args.get("shortcut", [])
        return {"type": kind, "body": _layers(ctx, f"{path}.body", args["body"]),
                "shortcut": _layers(ctx, f"{path}.shortcut", short) if short else []}  # fmt: skip
    if kind == "sequential":
        if set(args) != {"layers"}:
            raise ctx.error(path, "a sequential block takes only layers = [...]")
        return {"type": kind, "layers": _layers(ctx, f"{path}.layers", args["layers"])}
    cls = _registered(ctx, f"{path}.type", "layer", kind)
    index = path.rsplit("[", 1)[-1].rstrip("]")
    return {"type": kind, **_args(ctx, path, cls, args, auto=INFERRED,
                                  what=f"layer {index} ({kind})")}  # fmt: skip
