"""The record of gradient diagnostics: check points as rows of one preallocated float64 array,
written by the statistics kernels (``bpcli.kernels.stats``) during training and turned into
report objects, flags and ``metrics.jsonl`` lines only when they are written out.

A row is ``HEAD`` then, per parameter, the kernels' 7 columns ``[sum g, sum g^2, max |g|,
count g == 0, sum w^2, size of g, sum (w_after - w_before)^2]``, per activation layer their 4
``[units active, sum y, units, size of y]`` (NaN: not observed at that check point), per
BatchNorm layer ``[var min, var median, collapsed, gamma min]``. Every statistic of a report
is derived from these sums in ``Record.derive``, for all rows at once.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields

import numpy as np

from bpcli.app.diagnostics import rules
from bpcli.app.diagnostics.report import (
    ActStats,
    DiagReport,
    NormStats,
    ParamStats,
)
from bpcli.app.diagnostics.rules import DEAD, SATURATING

# bptt: boundary gradient norm, input: root mean square of the first weighted layer's input
# (NaN if none)
HEAD = ("epoch", "step", "lr", "stepped", "bptt", "input")
STEPPED, BPTT, INPUT = 3, 4, 5
P_COLS, A_COLS, N_COLS = 7, 4, 4
DELTA = 6  # the parameter column written after the optimizer's step (delta_sq_all)
ROWS = 64  # check points held before they are written out (more: written out early)
# The vectorised calm test (the flags' _calm) keeps this far from the thresholds, so that
# numpy's rounding (sums, medians) can never call a row calm that the rules would flag.
SAFE = 1e-9
# The numbers of a templated line (the lines of calm check points): 9 significant digits.
# Flagged check points' lines are json.dumps of their reports (repr, 17 digits).
FLOAT = "%.9g"
POW10 = 10.0 ** np.arange(-308, 309)  # format_rows' powers of ten


class Layout:
    """Which column holds what, for one model: built once per ``Diagnostics``.

    Args:
        params: (name, layer, shape) per parameter.
        acts: (name, class name, source layer) per activation layer observed.
        norms: (name, class name, has gamma) per BatchNorm layer with a running variance.
    """

    def __init__(self, params, acts, norms, bptt_window=None):
        self.params, self.acts, self.norms = params, acts, norms
        self.bptt_window = bptt_window
        k, a, m = len(params), len(acts), len(norms)
        self.p0 = len(HEAD)
        self.a0 = self.p0 + P_COLS * k
        self.n0 = self.a0 + A_COLS * a
        self.width = self.n0 + N_COLS * m
        self.weights = [i for i, (_, _, shape) in enumerate(params) if len(shape) >= 2]
        self.dead = [j for j, (_, kind, _) in enumerate(acts) if kind in DEAD]
        self.sat = [j for j, (_, kind, _) in enumerate(acts) if kind in SATURATING]
        # derive()'s rows: the numbers of a "diag" line in its order (l0: the activations')
        self.l0 = 4 + P_COLS * k
        self.line_width = self.l0 + 3 * a
        self.p_at = [4 + P_COLS * i for i in range(k)]
        self.a_at = [self.l0 + 3 * j for j in range(a)]
        self.ratio_cols = [o + 6 for o in self.p_at]
        self.p_rep = [(*p, o) for p, o in zip(params, self.p_at)]  # what report() reads
        self.a_rep = [(n, kind, src, o, kind in DEAD, kind in SATURATING)
                      for (n, kind, src), o in zip(acts, self.a_at)]  # fmt: skip
        self.share_cols = [o + 1 for o in self.a_at]
        # check_rows' arguments: the columns of derive()'s rows that calm() and lines() read
        i64 = lambda xs: np.array(xs, np.int64)  # noqa: E731
        self.checks = (
            np.array([rules.DEAD_FRAC * (1 - SAFE), rules.SATURATED_FRAC * (1 - SAFE),
                      10**-rules.VANISH_ORDERS, 1 + SAFE, rules.RATIO_LOW * (1 + SAFE),
                      rules.RATIO_HIGH * (1 - SAFE)]),
            i64([self.p_at[i] for i in self.weights]), i64([self.a_at[j] + 1 for j in self.dead]),
            i64([self.a_at[j] + 1 for j in self.sat]), i64(self.ratio_cols), i64(self.share_cols),
        )  # fmt: skip
        self.template = _template(params, acts)
        self.segs, self.seg_at, self.ints = _pieces(self.template)
        self.line_bytes = len(self.segs) + 25 * self.line_width + 1  # a number: <= 16 bytes
        self.usable = not norms  # BatchNorm statistics are not in the template


def _template(params, acts) -> str:
    """A check point's ``"diag"`` line with its numbers left out (the names, shapes and the
    rows' layout are the same at every check point): ``DiagReport.to_dict`` as json writes it,
    but with 9 significant digits (``FLOAT``) where json writes repr: enough to give back every
    float32 value exactly, and what ``format_rows`` writes in a tenth of %-formatting's time."""
    j = lambda v: json.dumps(v).replace("%", "%%")  # noqa: E731
    ps = [
        f'{{"name": {j(n)}, "layer": {j(layer)}, "shape": {j(list(shape))}, "grad_norm": %r, '
        '"grad_mean": %r, "grad_std": %r, "grad_max": %r, "zero_frac": %r, '
        '"weight_norm": %r, "update_ratio": %r}'
        for n, layer, shape in params
    ]
    acs = [
        f'{{"name": {j(n)}, "type": {j(kind)}, "units": %d, '
        + ('"dead": %r, "saturated": null' if kind in DEAD else '"dead": null, "saturated": %r')
        + f', "mean": %r, "source": {j(src)}}}'
        for n, kind, src in acts
    ]
    line = (
        '{"kind": "diag", "epoch": %d, "step": %d, "lr": %r, "bptt": null, '
        '"nonfinite": false, "grad_total": %r, '
        f'"params": [{", ".join(ps)}], "activations": [{", ".join(acs)}], '
        '"norms": [], "flags": []}'
    )
    return re.sub(r"(?<!%)((?:%%)*)%r", lambda m: m[1] + FLOAT, line)  # not a name's "%%r"


def _pieces(template: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The template for ``format_rows``: its text around the numbers, as bytes, the offsets
    of the pieces, and which numbers are integers."""
    text, at, ints = [], [0], []
    for piece in re.split(r"(%%|%d|%\.9g)", template):
        if piece in ("%d", FLOAT):
            at.append(sum(map(len, text)))
            ints.append(piece == "%d")
        else:
            text.append("%" if piece == "%%" else piece)
    raw = "".join(text).encode("ascii")  # json.dumps escapes everything else
    at.append(len(raw))
    return np.frombuffer(raw, np.uint8).copy(), np.array(at, np.int64), np.array(ints, bool)


class Record:
    """``ROWS`` check points of one layout; ``n`` rows are complete."""

    def __init__(self, layout: Layout, rows: int = ROWS):
        lay = self.layout = layout
        self.data = np.full((rows, lay.width), np.nan)
        self.head = self.data[:, : lay.p0]
        # Views, so that row i of each is a C-contiguous block the kernels write in place.
        self.params = self.data[:, lay.p0 : lay.a0].reshape(rows, len(lay.params), P_COLS)
        self.acts = self.data[:, lay.a0 : lay.n0].reshape(rows, len(lay.acts), A_COLS)
        self.norms = self.data[:, lay.n0 :].reshape(rows, len(lay.norms), N_COLS)
        self.n = 0
        # derive()'s outputs that are read (as lists, text) before the next derive(): made
        # once, as allocations cost an epoch end's single row more than its kernel's work
        self._out = (np.empty((rows, len(lay.params)), bool), np.empty(rows, bool),
                     np.empty(rows, bool), np.empty(rows * lay.line_bytes, np.uint8))  # fmt: skip

    @property
    def full(self) -> bool:
        return self.n == self.data.shape[0]

    def clear_row(self) -> None:
        self.data[self.n] = np.nan

    # -- written out ---------------------------------------------------------------------------
    def derive(self) -> dict[str, np.ndarray]:
        """The complete rows worked out by one kernel call (``write_rows``): ``vals`` has a
        row's report numbers in the order of its ``"diag"`` line, ``has_ratio`` which
        parameters have an update ratio, ``calm`` and ``good`` are ``check_rows``', ``text``
        the templated lines (``lines``). All but ``vals`` (the reports' rows) are overwritten
        by the next ``derive``."""
        from bpcli.kernels.stats import write_rows  # numba: loaded by Diagnostics

        n, lay = self.n, self.layout
        vals = np.empty((n, lay.line_width))
        o = self._out
        has_ratio, calm, good, buf = o[0][:n], o[1][:n], o[2][:n], o[3][: n * lay.line_bytes]
        text = (lay.segs, lay.seg_at, lay.ints, POW10, buf)
        end = write_rows(self.head[:n], self.params[:n], self.acts[:n], vals, has_ratio,
                         *lay.checks, calm, good, *text)  # fmt: skip
        if lay.norms:
            calm[:] = False
        return {"vals": vals, "has_ratio": has_ratio, "calm": calm, "good": good,
                "text": buf[:end]}  # fmt: skip

    def lists(self, d: dict[str, np.ndarray]) -> dict[str, list]:
        """What ``report`` reads, as Python lists (but ``rows``: a row is made a list when
        it is read, the reports of most being read seldom)."""
        return {"rows": d["vals"], "head": d["vals"][:, :4].tolist(),
                "has_ratio": d["has_ratio"].tolist(),
                "bptt": self.head[: self.n, BPTT].tolist(),
                "input": self.head[: self.n, INPUT].tolist()}  # fmt: skip

    def calm(self, d: dict[str, np.ndarray]) -> np.ndarray:
        """Per row, True only when no flag rule can fire whatever the earlier check points
        (the flags' ``_calm`` less its exploding test, which needs them)."""
        return d["calm"]

    def report(self, i: int, lists: dict) -> DiagReport:
        """Row ``i`` as a ``DiagReport`` (``lists``: from ``lists()``)."""
        lay = self.layout
        norms = [
            NormStats(name, kind, *v[:3], v[3] if gamma else None)
            for (name, kind, gamma), v in zip(lay.norms, self.norms[i].tolist())
        ] if lay.norms else []  # fmt: skip
        bptt = lists["bptt"][i]
        window = None if bptt != bptt else {"window": lay.bptt_window,
                                             "boundary_grad_norm": bptt}  # fmt: skip
        row = lists["rows"][i].tolist()
        params, acts = _row_lists(lay, row, lists["has_ratio"][i])
        total, rms = row[3], lists["input"][i]
        return DiagReport(int(row[0]), int(row[1]), row[2], params, acts, norms, window, [],
                          not math.isfinite(total), total,
                          rms if rms > rules.INPUT_RMS else None)  # fmt: skip

    def lines(self, d: dict) -> list[str | None]:
        """The ``"diag"`` line of each row formatted from the template, or None where the
        template does not fit (a non-finite number, a layer not observed, bptt, norms)."""
        if not self.layout.usable:
            return [None] * self.n
        # Formatting ~40 numbers a line is most of the writing out: %-formatting takes ~100 ns
        # a float, format_rows ~10 (the same text as "%.9g", bar ties; kernel tests).
        text = str(d["text"].data, "ascii").split("\n")
        return [line if g else None for line, g in zip(text, d["good"].tolist())]


def _row_lists(lay: Layout, row: list, has_ratio: list) -> tuple[list, list]:
    """A row's ``ParamStats`` and ``ActStats`` (``row``: its numbers from ``derive``)."""
    params = [
        ParamStats(name, layer, shape, row[o], row[o + 1], row[o + 2], row[o + 3],
                   row[o + 4], row[o + 5], row[o + 6] if r else None)
        for (name, layer, shape, o), r in zip(lay.p_rep, has_ratio)
    ]  # fmt: skip
    acts = []
    for name, kind, src, o, dead, sat in lay.a_rep:
        u, sh = row[o], row[o + 1]
        if u != u:  # NaN: the layer did not run at this check point
            continue
        sh = None if sh != sh else sh
        acts.append(ActStats(name, kind, int(u), sh if dead else None, sh if sat else None,
                             row[o + 2], src))  # fmt: skip
    return params, acts


class CalmReport(DiagReport):
    """The report of a check point that raised no flag, made from its row only when its
    parameter or activation lists are read: the reporters of ``bpcli train`` read them of few
    check points (the Rich view: the last one; ``--json``: ``to_dict``, written here from the
    row without the objects). Only for rows whose templated line fits: no bptt, no norms,
    every number finite."""

    def __init__(self, lay: Layout, head: list, row: np.ndarray, has_ratio: list,
                 line: str | None = None):  # fmt: skip
        self.epoch, self.step, self.lr = int(head[0]), int(head[1]), head[2]
        self.bptt, self.flags, self.nonfinite, self.grad_total = None, [], False, head[3]
        self.input_rms = None  # written in full only where it raises a flag
        self._row = (lay, row, has_ratio)  # row: the numbers of derive(), as an array
        self._line = line  # its templated "diag" line

    def __getattr__(self, name: str):
        src = self.__dict__.get("_row")
        if src is None or name not in ("params", "activations", "norms"):
            raise AttributeError(name)
        self.params, self.activations = _row_lists(src[0], src[1].tolist(), src[2])
        self.norms = []
        return getattr(self, name)

    def __eq__(self, other) -> bool:  # equal to the DiagReport of the same numbers
        if not isinstance(other, DiagReport):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(DiagReport))

    __hash__ = None

    def to_dict(self) -> dict:
        lay, row, has_ratio = self._row
        row = row.tolist()
        ps = []
        for (name, layer, shape, o), r in zip(lay.p_rep, has_ratio):
            n, mean, std, mx, zero, w, ratio = row[o : o + 7]
            ps.append({"name": name, "layer": layer, "shape": list(shape), "grad_norm": n,
                       "grad_mean": mean, "grad_std": std, "grad_max": mx, "zero_frac": zero,
                       "weight_norm": w, "update_ratio": ratio if r else None})  # fmt: skip
        acts = []
        for name, kind, src, o, dead, sat in lay.a_rep:
            u, sh, mean = row[o : o + 3]
            if u != u:
                continue
            sh = None if sh != sh else sh
            acts.append({"name": name, "type": kind, "units": int(u),
                         "dead": sh if dead else None, "saturated": sh if sat else None,
                         "mean": mean, "source": src})  # fmt: skip
        return {"kind": "diag", "epoch": self.epoch, "step": self.step, "lr": self.lr,
                "bptt": None, "nonfinite": False, "grad_total": self.grad_total, "params": ps,
                "activations": acts, "norms": [], "flags": []}  # fmt: skip

    def to_json(self) -> str:
        """Its ``metrics.jsonl`` line: ``to_dict`` as JSON, with 9 significant digits."""
        return self._line if self._line is not None else json.dumps(self.to_dict())

    def layer_norms(self) -> dict[str, float]:
        row = self._row[1].tolist()
        return {name: row[o] for name, _, _, o in self._row[0].p_rep}


def write_out(record: Record, info, recent: rules.Recent, reports: bool):
    """The complete rows of ``record``, in order: their flags (``recent`` is kept up to date),
    their ``metrics.jsonl`` lines, and their report objects if ``reports`` (otherwise only
    the ones that raised a flag are made). Empties the record."""
    if record.n == 0:
        return [], []
    d, lay = record.derive(), record.layout
    calm = record.calm(d).tolist()
    lists = record.lists(d)
    lines = record.lines(d)
    out_lines, out_reports = [], []
    for i, quiet in enumerate(calm):
        _, _, lr, total = lists["head"][i]
        rep = None
        if (
            not quiet
            or lists["input"][i] > rules.INPUT_RMS
            or (recent.totals and total > rules.EXPLODE_GROWTH * recent.totals[0])
        ):
            rep = record.report(i, lists)
            rep.flags = rules.check(rep, [], info, recent)
            recent.add(rep)
        else:
            recent.add_total(total, False, lr)
        line = lines[i]
        if line is None or (rep is not None and rep.flags):
            rep = rep or record.report(i, lists)
            line = json.dumps(rep.to_dict())
        out_lines.append(line)
        if reports:  # a calm row's line is its template's (rep is made where it does not fit)
            rep = rep or CalmReport(lay, lists["head"][i], lists["rows"][i],
                                    lists["has_ratio"][i], line)  # fmt: skip
            out_reports.append(rep)
    record.n = 0
    return out_lines, out_reports
