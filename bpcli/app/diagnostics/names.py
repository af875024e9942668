"""Layer names a person can read: ``3 linear (128→64)``, ``0 conv2d (1→8, 3x3)``,
``1 batch_norm1d (128)``, ``2 relu``: the module's path, its spec type and its sizes. The
diagnostics write them once per run (a ``"diag_layers"`` line of metrics.jsonl) and every view
of the run (per-layer table, flags, notes, charts) shows them instead of the bare path."""

from __future__ import annotations

import re


def spec_type(module) -> str:
    """``BatchNorm1d`` -> ``batch_norm1d``, ``Conv2d`` -> ``conv2d``, ``LSTM`` -> ``lstm``."""
    name = type(module).__name__
    # a capital after a lowercase letter starts a word; ReLU is one word (leaky_relu)
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name.replace("ReLU", "Relu"))
    return name.lower()


def sizes(module) -> str:
    g = lambda k: getattr(module, k, None)  # noqa: E731
    if g("in_features") is not None and g("out_features") is not None:
        return f"{g('in_features')}→{g('out_features')}"
    if g("in_channels") is not None and g("out_channels") is not None:
        k = g("kernel_size")
        k = "x".join(map(str, k)) if isinstance(k, tuple | list) else str(k)
        return f"{g('in_channels')}→{g('out_channels')}, {k}"
    if g("input_size") is not None and g("hidden_size") is not None:
        return f"{g('input_size')}→{g('hidden_size')}"
    if g("num_embeddings") is not None:
        return f"{g('num_embeddings')}→{g('embedding_dim')}"
    if g("num_features") is not None:
        return str(g("num_features"))
    shape = g("normalized_shape")
    if shape is not None:
        return "x".join(map(str, shape)) if isinstance(shape, tuple | list) else str(shape)
    return ""


def labels(model) -> dict[str, str]:
    """Module path -> readable name, for every named module of ``model``."""
    out = {}
    for name, mod in model.named_modules():
        if not name:
            continue
        size = sizes(mod)
        out[name] = f"{name} {spec_type(mod)}" + (f" ({size})" if size else "")
    return out


def label_of(name: str, names: dict[str, str]) -> str:
    """A layer's readable name; a parameter ``3.weight`` as ``3 linear (128→64) weight``."""
    if name in names:
        return names[name]
    layer, _, leaf = name.rpartition(".")
    if layer in names:
        return f"{names[layer]} {leaf}"
    return name
