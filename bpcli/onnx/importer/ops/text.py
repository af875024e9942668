"""Import of the string ops: StringNormalizer, StringSplit, StringConcat, RegexFullMatch, and
TfIdfVectorizer (n-gram counts of a string or integer sequence).

String tensors arrive as numpy ``str`` arrays (the backend's inputs) or ``object`` arrays of
``str`` (initializers, Constant, other string ops); every op here outputs ``object`` arrays, as
ONNX's own numpy form of ``tensor(string)``. Nothing here carries a gradient: the outputs are
strings, booleans, or n-gram counts of discrete tokens.

Where the spec leaves a choice open, onnxruntime's behaviour is followed:

- StringNormalizer changes case one character at a time (C's ``towupper``/``towlower`` under
  a UTF-8 locale), so ``ß`` stays ``ß`` in upper case and a final sigma lowers to the medial
  form; the locales "C" and "POSIX" change ASCII letters only. Turkish, Azeri and Lithuanian
  locales, whose case rules differ from Unicode's defaults, are refused. Case-insensitive
  stopwords compare the lowered forms.
- StringSplit without a delimiter splits on runs of spaces (U+0020) only, after stripping
  them from both ends; an empty string has no substrings.
- RegexFullMatch takes RE2 syntax. The pattern is translated to Python's ``re``: ``\\d \\w \\s
  \\b`` are ASCII as in RE2 (``\\s`` without ``\\v``), ``$`` is the end of the text unless
  ``(?m)``, ``\\z`` ends the text, ``{,n}`` is literal, octal escapes, ``\\x{...}``,
  ``\\Q...\\E`` and ``[[:alpha:]]`` classes are rewritten. Patterns RE2 rejects
  (backreferences, lookaround, possessive repeats, ``\\Z``, repeat counts over 1000) and RE2
  syntax Python lacks (``\\p{...}``, ``\\C``, ``(?U)``, flags after the start) are refused.
  Known remaining difference: RE2 and Python may fold the case of some rare characters
  differently under ``(?i)``.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from bpcli.onnx.importer.table import NodeView, register, wrap


def strings(t, node: NodeView, what: str = "input") -> np.ndarray:
    """The values of a string tensor as an ``object`` array of ``str``."""
    a = np.asarray(t.data)
    if a.dtype.kind == "U":
        return a.astype(object)
    if a.dtype.kind != "O":
        raise node.fail(f"the {what} must be a string tensor, got {a.dtype}")
    if any(isinstance(s, bytes) for s in a.flat):
        return np.frompyfunc(lambda s: s.decode() if isinstance(s, bytes) else s, 1, 1)(a)
    return a


def _objects(values, shape) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


# -- StringNormalizer ------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _upper_char(c: str) -> str:
    u = c.upper()
    return u if len(u) == 1 else c  # ß -> SS has no one-character form: towupper keeps ß


@lru_cache(maxsize=4096)
def _lower_char(c: str) -> str:
    return c.lower()[0]  # only U+0130 lowers to two characters; its simple form is "i"


def _case(s: str, upper: bool, ascii_only: bool) -> str:
    if ascii_only:
        return "".join((c.upper() if upper else c.lower()) if c.isascii() else c for c in s)
    fn = _upper_char if upper else _lower_char
    return "".join(fn(c) for c in s)


def _normalizer_check(node: NodeView) -> str | None:
    action = node.attr("case_change_action", "NONE")
    if action not in ("NONE", "LOWER", "UPPER"):
        return f"case_change_action {action!r} is not NONE, LOWER or UPPER"
    lang = re.split(r"[_.@-]", node.attr("locale", "") or "")[0].lower()
    if lang in ("tr", "az", "lt"):
        return f"locale {node.attr('locale')!r} has case rules of its own (Python has Unicode's)"
    return None


@register("StringNormalizer", since=10, check=_normalizer_check)
def string_normalizer(ctx, node, inputs):
    x = strings(inputs[0], node)
    if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[0] != 1):
        raise node.fail(f"the input must have shape [C] or [1, C], got {list(x.shape)}")
    action = node.attr("case_change_action", "NONE")
    ascii_only = (node.attr("locale", "") or "") in ("C", "POSIX")
    stop = set(node.attr("stopwords") or [])
    words = list(x.reshape(-1))
    if stop:
        if node.attr("is_case_sensitive", 0):
            words = [w for w in words if w not in stop]
        else:
            stop = {_case(s, False, ascii_only) for s in stop}
            words = [w for w in words if _case(w, False, ascii_only) not in stop]
    if action != "NONE":
        words = [_case(w, action == "UPPER", ascii_only) for w in words]
    words = words or [""]  # everything dropped: one empty string, as the spec says
    return wrap(_objects(words, (1, len(words)) if x.ndim == 2 else (len(words),)))


# -- StringSplit and StringConcat ------------------------------------------------------------


def _split(s: str, delimiter: str, maxsplit: int) -> list[str]:
    if delimiter:
        return s.split(delimiter, maxsplit) if s else []
    s = s.strip(" ")
    if not s:
        return []
    return [s] if maxsplit == 0 else re.split(" +", s, maxsplit=max(maxsplit, 0))


@register("StringSplit", since=20)
def string_split(ctx, node, inputs):
    x = strings(inputs[0], node)
    delimiter = node.attr("delimiter", "") or ""
    maxsplit = node.attr("maxsplit")
    maxsplit = -1 if maxsplit is None or maxsplit < 0 else maxsplit
    parts = [_split(s, delimiter, maxsplit) for s in x.reshape(-1)]
    width = max((len(p) for p in parts), default=0)
    y = np.full((len(parts), width), "", dtype=object)
    for i, p in enumerate(parts):
        y[i, : len(p)] = p
    z = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
    return wrap(y.reshape(*x.shape, width)), wrap(z)


@register("StringConcat", since=20)
def string_concat(ctx, node, inputs):
    a, b = strings(inputs[0], node, "first input"), strings(inputs[1], node, "second input")
    shape = np.broadcast_shapes(a.shape, b.shape)
    out = np.add(a, b) if a.size and b.size else np.empty(shape, dtype=object)
    return wrap(np.asarray(out, dtype=object).reshape(shape))


# -- RegexFullMatch: RE2 syntax translated to Python's re -----------------------------------

_W = "0-9A-Za-z_"
_CLASS_ESC = {"d": "0-9", "w": _W, "s": "\\t\\n\\f\\r "}  # RE2's Perl classes are ASCII
_ESC = {"d": "[0-9]", "D": "[^0-9]", "w": f"[{_W}]", "W": f"[^{_W}]",
        "s": "[\\t\\n\\f\\r ]", "S": "[^\\t\\n\\f\\r ]", "z": r"\Z",
        "b": f"(?:(?<=[{_W}])(?![{_W}])|(?<![{_W}])(?=[{_W}]))",
        "B": f"(?:(?<=[{_W}])(?=[{_W}])|(?<![{_W}])(?![{_W}]))"}  # fmt: skip
_POSIX = {"alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
          "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
          "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ",
          "upper": "A-Z", "word": _W, "xdigit": "0-9A-Fa-f"}  # fmt: skip
_REFUSED_ESC = {"Z": "\\Z (RE2 has \\z)", "C": "\\C (one byte)", "p": "\\p (Unicode classes)",
                "P": "\\P (Unicode classes)"}  # fmt: skip
_REPEAT = re.compile(r"\{(\d*)(,(\d*))?\}")
_OCTAL = re.compile(r"0[0-7]{0,2}|[1-7][0-7]{1,2}")


class PatternError(ValueError):
    """A pattern RE2 rejects, or one whose RE2 meaning Python's re cannot express."""


def _escape(p: str, i: int, in_class: bool) -> tuple[str, int]:
    """The Python form of the escape at ``p[i] == '\\'`` and the index after it."""
    if i + 1 >= len(p):
        raise PatternError("trailing backslash")
    c = p[i + 1]
    if c in _REFUSED_ESC:
        raise PatternError(f"{_REFUSED_ESC[c]} is not supported")
    m = _OCTAL.match(p, i + 1)
    if m:
        return re.escape(chr(int(m.group(), 8))), m.end()
    if c.isdigit():
        raise PatternError(f"\\{c} is a backreference (RE2 has none)")
    if c == "x" and p.startswith("{", i + 2):
        end = p.find("}", i + 3)
        if end < 0:
            raise PatternError("unterminated \\x{")
        return re.escape(chr(int(p[i + 3 : end], 16))), end + 1
    if c == "Q":
        end = p.find("\\E", i + 2)
        end = len(p) if end < 0 else end
        if in_class:
            raise PatternError("\\Q...\\E inside a character class")
        return re.escape(p[i + 2 : end]), min(end + 2, len(p))
    if in_class:
        if c in "DWS":
            raise PatternError(f"\\{c} inside a character class")
        return _CLASS_ESC.get(c, p[i : i + 2]), i + 2
    return _ESC.get(c, p[i : i + 2]), i + 2


def _char_class(p: str, i: int) -> tuple[str, int]:
    """The Python form of the class opening at ``p[i] == '['`` and the index after it."""
    out, j = ["["], i + 1
    if p.startswith("^", j):
        out.append("^")
        j += 1
    first = True
    while j < len(p):
        c = p[j]
        if c == "]" and not first:
            return "".join(out) + "]", j + 1
        first = False
        if c == "\\":
            s, j = _escape(p, j, True)
            out.append(s)
        elif p.startswith("[:", j):
            end = p.find(":]", j + 2)
            name = p[j + 2 : end] if end > 0 else ""
            if name not in _POSIX:
                raise PatternError(f"unknown class [:{name}:]")
            out.append(_POSIX[name])
            j = end + 2
        else:
            out.append("\\" + c if c in "[&~|" or c == "]" else c)  # no nested-set warnings
            j += 1
    raise PatternError("missing ]")


def _group(p: str, i: int, out: list[str]) -> int:
    """Copy the opening of the group at ``p[i] == '('``; the index after what was copied."""
    if not p.startswith("(?", i):
        out.append("(")
        return i + 1
    m = re.compile(r"\(\?([a-zA-Z]*)(-[a-zA-Z]*)?([:)])").match(p, i)
    if p.startswith(("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?(", "(?P="), i):
        raise PatternError(f"{p[i : i + 4]}... (lookaround, atomic, conditional, backreference)")
    if m and (bad := set(m.group(1) + (m.group(2) or "")) - set("ims-")):
        raise PatternError(f"flag(s) {''.join(sorted(bad))} in {m.group()}")
    if m and m.group(3) == ")" and i:
        raise PatternError(f"{m.group()} after the start (Python's re takes global flags first)")
    out.append("(?")
    return i + 2


def _quantifier_end(p: str, i: int, out: list[str]) -> int:
    """Copy the quantifier at ``p[i]`` (``* + ?`` or a counted repeat); the index after it."""
    if p[i] == "{":
        m = _REPEAT.match(p, i)
        if not m or not m.group(1):  # "{,n}" and a lone "{" are literal in RE2
            out.append("\\{")
            return i + 1
        if any(int(n) > 1000 for n in (m.group(1), m.group(3)) if n):
            raise PatternError(f"repeat count {m.group()} is over RE2's 1000")
        out.append(m.group())
        j = m.end()
    else:
        out.append(p[i])
        j = i + 1
    if p.startswith("+", j):
        raise PatternError(f"possessive repeat {p[i : j + 1]}")
    if p.startswith("?", j):
        out.append("?")
        j += 1
    return j


def re2_to_python(p: str) -> re.Pattern:
    """Compile RE2 pattern ``p`` into a Python pattern of the same meaning (or raise)."""
    multiline = re.match(r"\(\?[ims]*m[ims]*\)", p) is not None
    if "$" in p and re.search(r"\(\?[a-z]*m[a-z]*(-[a-z]*)?:", p):
        raise PatternError("$ with a scoped (?m:...) group")
    out, i = [], 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            s, i = _escape(p, i, False)
            out.append(s)
        elif c == "[":
            s, i = _char_class(p, i)
            out.append(s)
        elif c == "(":
            i = _group(p, i, out)
        elif c in "*+?{":
            i = _quantifier_end(p, i, out)
        else:
            out.append(r"\Z" if c == "$" and not multiline else c)
            i += 1
    try:
        return re.compile("".join(out))
    except re.error as e:
        raise PatternError(f"Python's re rejects it: {e}") from None


def _regex_check(node: NodeView) -> str | None:
    try:
        node.state["regex"] = re2_to_python(node.attr("pattern", "") or "")
    except (PatternError, ValueError, OverflowError) as e:  # bad \x{...} too
        return f"pattern {node.attr('pattern')!r}: {e}"
    return None


@register("RegexFullMatch", since=20, check=_regex_check)
def regex_full_match(ctx, node, inputs):
    x = strings(inputs[0], node)
    if "regex" not in node.state and (why := _regex_check(node)):
        raise node.fail(why)
    rx = node.state["regex"]
    return wrap(
        np.array([rx.fullmatch(s) is not None for s in x.reshape(-1)], bool).reshape(x.shape)
    )


# -- TfIdfVectorizer ------------------------------------------------------------------------


def _tfidf_check(node: NodeView) -> str | None:
    mode = node.attr("mode")
    if mode not in ("TF", "IDF", "TFIDF"):
        return f"mode {mode!r} is not TF, IDF or TFIDF"
    if bool(node.attr("pool_strings")) == bool(node.attr("pool_int64s")):
        return "exactly one of pool_strings and pool_int64s must be set"
    try:
        node.state["pool"] = _pool(node)
    except ValueError as e:
        return str(e)
    return None


def _pool(node: NodeView) -> tuple[dict, set, int]:
    """(n-gram -> output index, every prefix of a pooled n-gram, output size)."""
    pool = list(node.attr("pool_strings") or node.attr("pool_int64s"))
    starts, index = list(node.attr("ngram_counts")), list(node.attr("ngram_indexes"))
    lo, hi = node.attr("min_gram_length"), node.attr("max_gram_length")
    if not index:
        raise ValueError("ngram_indexes is empty")
    if not 1 <= lo <= hi:
        raise ValueError(f"gram lengths min {lo}, max {hi} must satisfy 1 <= min <= max")
    grams, prefixes, k = {}, set(), 0
    for n, start in enumerate(starts, 1):
        end = starts[n] if n < len(starts) else len(pool)
        if (end - start) % n:
            raise ValueError(f"pool entries {start}..{end} are no whole number of {n}-grams")
        for j in range(start, end, n):
            if k >= len(index):
                raise ValueError(f"ngram_indexes has {len(index)} entries, the pool more n-grams")
            gram = tuple(pool[j : j + n])
            if lo <= n <= hi:
                grams.setdefault(gram, index[k])  # a repeated n-gram keeps its first slot
                prefixes.update(gram[:m] for m in range(1, n + 1))
            k += 1
    return grams, prefixes, max(index) + 1


def _count(row: list, grams: dict, prefixes: set, out: np.ndarray, node: NodeView) -> None:
    lo, hi = node.attr("min_gram_length"), node.attr("max_gram_length")
    c = len(row)
    for d in range(1, node.attr("max_skip_count") + 2):
        first = lo if d == 1 else max(lo, 2)  # a unigram is counted once, not once per skip
        if first > hi:
            break
        for start in range(c):
            gram = ()
            for n in range(1, hi + 1):
                pos = start + (n - 1) * d
                if pos >= c:
                    break
                gram += (row[pos],)
                if gram not in prefixes:
                    break
                if n >= first and gram in grams:
                    out[grams[gram]] += 1


@register("TfIdfVectorizer", since=9, check=_tfidf_check)
def tfidf_vectorizer(ctx, node, inputs):
    if "pool" not in node.state and (why := _tfidf_check(node)):
        raise node.fail(why)
    grams, prefixes, size = node.state["pool"]
    a = np.asarray(inputs[0].data)
    if node.attr("pool_strings"):
        a = strings(inputs[0], node)
    elif a.dtype.kind not in "iu":
        raise node.fail(f"pool_int64s needs an integer input, got {a.dtype}")
    if a.ndim > 2:
        raise node.fail(f"the input must have shape [C] or [N, C], got {list(a.shape)}")
    rows = a.reshape(1, -1) if a.ndim < 2 else a
    counts = np.zeros((rows.shape[0], size), dtype=np.float32)
    for r, row in enumerate(rows.tolist()):
        _count(row, grams, prefixes, counts[r], node)
    y = _weigh(counts, node)
    return wrap(y if a.ndim == 2 else y[0])


def _weigh(counts: np.ndarray, node: NodeView) -> np.ndarray:
    mode, w = node.attr("mode"), node.attr("weights")
    if mode == "IDF":
        counts = (counts > 0).astype(np.float32)
    if mode == "TF" or not w:
        return counts
    index = node.attr("ngram_indexes")
    if len(w) != len(index):
        raise node.fail(f"weights has {len(w)} entries for {len(index)} pooled n-grams")
    # the k-th weight scales the k-th pooled n-gram, wherever ngram_indexes puts it (as the spec
    # and onnxruntime have it; onnx's reference indexes weights by output position instead)
    per_slot = np.zeros(counts.shape[1], dtype=np.float32)
    per_slot[np.asarray(index)] = w
    return counts * per_slot
