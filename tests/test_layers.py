"""Layers import downwards only: cli -> app -> onnx -> nn -> plugins -> engine -> kernels;
inside app and onnx the parts do too; no module or package imports itself back in a circle."""

import ast
import pathlib
import subprocess
import sys

from tests import import_graph

PKG = pathlib.Path(__file__).resolve().parents[1] / "bpcli"
RANK = {"kernels": 0, "engine": 1, "functional": 1, "data": 2, "plugins": 2, "builtins": 3, "nn": 3,
        "optim": 3, "onnx": 4, "app": 5, "cli": 6}  # fmt: skip
SHARED = {"errors", "__init__", "__main__"}
# The parts of app and onnx, lowest first; a part imports only parts of a lower rank (so parts
# of one rank are independent of each other). Each package's docstring says the same in words.
PART_RANK = {
    "bpcli.app": {"spec": 0, "store": 1, "model": 2, "diagnostics": 2, "training": 3,
                  "experiments": 4, "info": 5, "bench": 6},
    "bpcli.onnx": {"importer": 0, "exporter": 0, "conformance": 1},
}  # fmt: skip


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


def _graph():
    return import_graph.graph(PKG)


def test_no_import_circles_between_modules():
    g = _graph()
    found = [import_graph.path_in(g, c) for c in import_graph.circles(g)]
    assert not found, "import circles (lazy imports count):\n" + "\n".join(found)


def test_no_import_circles_between_packages():
    # Between the children of each package: bpcli.app.training -> bpcli.app.model and back
    # is a circle even when no single module imports itself back.
    g = import_graph.sibling_graph(_graph())
    found = [import_graph.path_in(g, c) for c in import_graph.circles(g)]
    assert not found, "import circles between packages:\n" + "\n".join(found)


def test_parts_of_app_and_onnx_import_downwards():
    bad = []
    for src, dsts in _graph().items():
        for dst in dsts:
            for parent, rank in PART_RANK.items():
                a, b = src.split("."), dst.split(".")
                depth = parent.count(".") + 1
                if src.startswith(parent + ".") and dst.startswith(parent + "."):
                    pa, pb = a[depth], b[depth]
                    if pa != pb and rank[pa] <= rank[pb]:
                        bad.append(f"{src} imports {dst} ({parent}.{pa} is not above {pb})")
    assert not bad, "imports that do not go down:\n" + "\n".join(bad)


def test_every_part_is_ranked_and_says_what_it_may_import():
    for parent, rank in PART_RANK.items():
        folder = PKG.parent.joinpath(*parent.split("."))
        parts = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
        assert parts == set(rank), f"{parent}: parts {sorted(parts)}, ranked {sorted(rank)}"
        for part in parts:
            doc = ast.get_docstring(ast.parse((folder / part / "__init__.py").read_text()))
            assert doc and "import" in doc, f"{parent}.{part}: no docstring saying what it imports"


def test_the_circle_finder_finds_circles():
    # The checks above must be able to fail: a known circle and a lazy import are seen.
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_graph.circles(g) == [["a", "b", "c"]]
    assert import_graph.path_in(g, ["a", "b", "c"]) == "a -> b -> c -> a"
    assert "bpcli.app.training.loop" in _graph()["bpcli.cli.train"]  # imported in a function


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
