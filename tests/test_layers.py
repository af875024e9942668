"""Layers import downwards only: cli -> app -> onnx -> nn -> plugins -> engine -> kernels."""

import ast
import pathlib
import subprocess
import sys

PKG = pathlib.Path(__file__).resolve().parents[1] / "bpcli"
RANK = {"kernels": 0, "engine": 1, "functional": 1, "data": 2, "plugins": 2, "builtins": 3, "nn": 3,
        "optim": 3, "onnx": 4, "app": 5, "cli": 6}  # fmt: skip
SHARED = {"errors", "__init__", "__main__"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "bpcli" or len(parts) < 2 or parts[1] in SHARED:
        return None
    return parts[1]


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_no_upward_imports():
    bad = []
    for path in PKG.rglob("*.py"):
        mod = "bpcli." + ".".join(path.relative_to(PKG).with_suffix("").parts)
        own = _layer(mod)
        if own is None or own not in RANK:
            continue
        for imported in _imports(path):
            other = _layer(imported)
            if other in RANK and RANK[other] > RANK[own]:
                bad.append(f"{mod} imports {imported}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_kernels_never_import_the_engine():
    for path in (PKG / "kernels").rglob("*.py"):
        for imported in _imports(path):
            assert not imported.startswith("bpcli.engine"), f"{path.name} imports {imported}"


def test_cli_import_loads_neither_numba_nor_onnx():
    code = (
        "import sys, bpcli.cli\n"
        "print(sorted(m for m in ('numba', 'onnx', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_bpcli_compiles_nothing():
    code = (
        "import bpcli as bp, numba.core.registry as r, sys\n"
        "bp.tensor([1.0]); import bpcli.functional\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "import gc\n"
        "print(sum(len(d.overloads) for d in gc.get_objects() if isinstance(d, Dispatcher)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
