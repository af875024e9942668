"""A small TOML writer for resolved specs (the standard library only reads TOML).

Tables become ``[section]`` headers, nested tables inline tables, lists of tables one inline
table per line. ``None`` has no TOML spelling: such keys are written as a comment saying they
are unset, which reads back as absent (and ``resolve`` fills absent keys with ``None`` again).
"""

from __future__ import annotations

import math
import re

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key(k: str) -> str:
    return k if _BARE.match(k) else string(k)


def string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\u{ord(ch):04x}"))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def value(v) -> str:
    """One TOML value on one line (tables inline)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = [f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None]
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"{type(v).__name__} {v!r} has no TOML form")


def _entry(k: str, v) -> list[str]:
    if v is None:
        return [f"# {key(k)} is unset"]
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return [f"{key(k)} = ["] + [f"  {value(x)}," for x in v] + ["]"]
    return [f"{key(k)} = {value(v)}"]


def dumps(doc: dict, header: str = "") -> str:
    """``doc`` as TOML text: scalars first, then one ``[table]`` per top-level dict."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
    for k, v in doc.items():
        if k not in tables:
            lines += _entry(k, v)
    for name, table in tables.items():
        lines += ["", f"[{key(name)}]"]
        for k, v in table.items():
            lines += _entry(k, v)
    return "\n".join(lines) + "\n"
