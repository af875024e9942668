"""The import graph of a package, read from its source: every import statement counts, also one
inside a function (a lazy import that dodges a circle is still a circle); only imports under
``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
import pathlib


def modules(pkg: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, a package named by its ``__init__.py``."""
    out = {}
    for path in pkg.rglob("*.py"):
        parts = path.relative_to(pkg.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST):
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def imported(name: str, path: pathlib.Path, known: dict) -> set[str]:
    """The modules of ``known`` that module ``name`` (file ``path``) imports.

    ``from a import b`` is an import of module ``a.b`` when that is a module, else of ``a``.
    """
    out = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in _nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[: len(package) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                if full in known:
                    out.add(full)
                elif base in known:
                    out.add(base)
    out.discard(name)
    return out


def graph(pkg: pathlib.Path) -> dict[str, set[str]]:
    """Module -> the modules it imports, over every module of ``pkg``."""
    known = modules(pkg)
    return {name: imported(name, path, known) for name, path in known.items()}


def sibling_graph(g: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between siblings: an import of ``a.x.m`` by ``a.y.n`` is an edge ``a.y -> a.x``
    (the children of the closest common package). An import between a package and what it
    contains is no edge here: the module graph covers it."""
    out: dict[str, set[str]] = {}
    for src, dsts in g.items():
        for dst in dsts:
            a, b = src.split("."), dst.split(".")
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]:
                k += 1
            if k == len(a) or k == len(b):
                continue
            out.setdefault(".".join(a[: k + 1]), set()).add(".".join(b[: k + 1]))
    return out


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(g):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(g.get(root, ()))))]
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(g.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def path_in(g: dict[str, set[str]], comp: list[str]) -> str:
    """The shortest cycle through ``comp[0]`` inside its component, as ``a -> b -> a``."""
    members, start = set(comp), comp[0]
    came: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for w in sorted(g.get(node, ())):
                if w == start:
                    trail = [node]
                    while trail[-1] != start:
                        trail.append(came[trail[-1]])
                    return " -> ".join([*reversed(trail), start])
                if w in members and w not in came:
                    came[w] = node
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{comp} is no cycle")
