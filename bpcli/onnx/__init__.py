"""ONNX in both directions: ``export`` (trace -> ONNX file) and ``load`` (ONNX -> Module).

The submodules load on first use, so ``import bpcli.onnx`` does not import ``onnx`` itself.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "export": ("bpcli.onnx.exporter.export", "export"),
    "ExportResult": ("bpcli.onnx.exporter.export", "ExportResult"),
    "verify": ("bpcli.onnx.exporter.verify", "verify"),
    "VerifyResult": ("bpcli.onnx.exporter.verify", "VerifyResult"),
    "load": ("bpcli.onnx.importer.load", "load"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'bpcli.onnx' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
