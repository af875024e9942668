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

import numpy as np

from bpcli.app import diagnostics_flags as rules
from bpcli.app.diagnostics_report import (
    DEAD,
    SATURATING,
    ActStats,
    DiagReport,
    NormStats,
    ParamStats,
)

HEAD = ("epoch", "step", "lr", "stepped", "bptt")  # bptt: boundary gradient norm, NaN if none
STEPPED, BPTT = 3, 4
P_COLS, A_COLS, N_COLS = 7, 4, 4
DELTA = 6  # the parameter column delta_sq_all writes after the optimizer's step
ROWS = 64  # check points held before they are written out (more: written out early)
# The vectorised calm test (the flags' _calm) keeps this far from the thresholds, so that
# numpy's rounding (sums, medians) can never call a row calm that the rules would flag.
SAFE = 1e-9


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
        self.template = _template(params, acts)
        # lines() writes None as NaN and then "nan" as null: a name holding "nan" would be
        # rewritten too. BatchNorm statistics are not in the template.
        self.usable = "nan" not in self.template and not norms


def _template(params, acts) -> str:
    """A check point's ``"diag"`` line with its numbers left out (the names, shapes and the
    rows' layout are the same at every check point): ``DiagReport.to_dict`` as json writes it."""
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
    return (
        '{"kind": "diag", "epoch": %d, "step": %d, "lr": %r, "bptt": null, '
        '"nonfinite": false, "grad_total": %r, '
        f'"params": [{", ".join(ps)}], "activations": [{", ".join(acs)}], '
        '"norms": [], "flags": []}'
    )


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

    @property
    def full(self) -> bool:
        return self.n == self.data.shape[0]

    def clear_row(self) -> None:
        self.data[self.n] = np.nan

    # -- written out ---------------------------------------------------------------------------
    def derive(self) -> dict[str, np.ndarray]:
        """The report numbers of the complete rows, as arrays (rows first)."""
        n = self.n
        s, ss, gmax, zeros, wsq, size, dsq = np.moveaxis(self.params[:n], -1, 0)
        active, ysum, units, ysize = np.moveaxis(self.acts[:n], -1, 0)
        with np.errstate(all="ignore"):
            empty = size == 0
            norm = np.sqrt(ss)
            mean = s / size
            std = np.where(np.isfinite(ss), np.sqrt(np.maximum(ss / size - mean * mean, 0.0)),
                           norm)  # fmt: skip
            wn = np.sqrt(wsq)
            has_ratio = (self.head[:n, STEPPED] == 1)[:, None] & (wn > 0)
            stats = np.stack(
                [norm, np.where(empty, 0.0, mean), np.where(empty, 0.0, std), gmax,
                 np.where(empty, 1.0, zeros / size), wn,
                 np.where(has_ratio, np.sqrt(dsq) / wn, np.nan)], axis=-1,
            )  # fmt: skip
            share = 1.0 - active / units
            amean = np.where(ysize > 0, ysum / ysize, 0.0)
        return {
            "stats": stats, "has_ratio": has_ratio, "total": np.sqrt(ss.sum(axis=1)),
            "units": units, "share": share, "has_share": ysize > 0, "amean": amean,
        }  # fmt: skip

    def calm(self, d: dict[str, np.ndarray]) -> np.ndarray:
        """Per row, True only when no flag rule can fire whatever the earlier check points
        (the flags' ``_calm`` less its exploding test, which needs them)."""
        n, lay = self.n, self.layout
        calm = np.isfinite(d["total"]) & np.isnan(self.head[:n, BPTT])
        if lay.norms:
            calm[:] = False
        share = d["share"]
        if lay.dead:
            calm &= ~(share[:, lay.dead] >= rules.DEAD_FRAC * (1 - SAFE)).any(axis=1)
        if lay.sat:
            calm &= ~(share[:, lay.sat] >= rules.SATURATED_FRAC * (1 - SAFE)).any(axis=1)
        w = d["stats"][:, lay.weights]
        if len(lay.weights) >= 3:
            norms = w[..., 0]
            calm &= norms[:, 0] >= norms.max(axis=1) * 10**-rules.VANISH_ORDERS * (1 + SAFE)
        if lay.weights:
            ratios = np.where(d["has_ratio"][:, lay.weights], w[..., 6], np.nan)
            med = _finite_median(ratios)
            low, high = rules.RATIO_LOW * (1 + SAFE), rules.RATIO_HIGH * (1 - SAFE)
            calm &= np.isnan(med) | (self.head[:n, 2] <= 0) | ((low <= med) & (med <= high))
        return calm

    def report(self, i: int, lists: dict) -> DiagReport:
        """Row ``i`` as a ``DiagReport`` (``lists``: ``derive()`` and the head as Python
        lists, see ``write_out``)."""
        lay = self.layout
        epoch, step, lr, _, bptt = lists["head"][i]
        stats, has_ratio = lists["stats"][i], lists["has_ratio"][i]
        params = [
            ParamStats(name, layer, shape, *v[:6], v[6] if r else None)
            for (name, layer, shape), v, r in zip(lay.params, stats, has_ratio)
        ]
        acts = []
        for (name, kind, src), u, sh, has, m in zip(
            lay.acts, lists["units"][i], lists["share"][i], lists["has_share"][i],
            lists["amean"][i],
        ):  # fmt: skip
            if u != u:  # NaN: the layer did not run at this check point
                continue
            sh = sh if has else None
            acts.append(ActStats(name, kind, int(u), sh if kind in DEAD else None,
                                 sh if kind in SATURATING else None, m, src))  # fmt: skip
        norms = [
            NormStats(name, kind, *row[:3], row[3] if gamma else None)
            for (name, kind, gamma), row in zip(lay.norms, self.norms[i].tolist())
        ]
        total = lists["total"][i]
        window = None if bptt != bptt else {"window": lay.bptt_window,
                                             "boundary_grad_norm": bptt}  # fmt: skip
        return DiagReport(int(epoch), int(step), lr, params, acts, norms, window, [],
                          not math.isfinite(total), total)  # fmt: skip

    def lines(self, d: dict) -> list[str | None]:
        """The ``"diag"`` line of each row formatted from the template, or None where the
        template does not fit (a non-finite number, a layer not observed, bptt, norms)."""
        n, lay = self.n, self.layout
        if not lay.usable:
            return [None] * n
        share = d["share"][:, :, None] if lay.acts else np.empty((n, 0, 1))
        vals = np.concatenate(
            [self.head[:n, :3], d["total"][:, None], d["stats"].reshape(n, -1),
             np.concatenate([d["units"][:, :, None], share, d["amean"][:, :, None]],
                            axis=2).reshape(n, -1)], axis=1,
        )  # fmt: skip
        nulls = np.concatenate(
            [np.zeros((n, 4), bool),
             np.concatenate([np.zeros_like(d["stats"][..., :6], bool),
                             ~d["has_ratio"][:, :, None]], axis=2).reshape(n, -1),
             np.concatenate([np.zeros_like(share, bool), ~d["has_share"][:, :, None],
                             np.zeros_like(share, bool)], axis=2).reshape(n, -1)], axis=1,
        )  # fmt: skip
        ok = (np.isfinite(vals) | nulls).all(axis=1) & np.isnan(self.head[:n, BPTT])
        has_null = nulls.any(axis=1)
        out: list[str | None] = []
        template = lay.template
        for row, good, null in zip(vals.tolist(), ok.tolist(), has_null.tolist()):
            if not good:
                out.append(None)
            elif null:  # None is NaN in the row; the template has no "nan" of its own
                out.append((template % tuple(row)).replace("nan", "null"))
            else:
                out.append(template % tuple(row))
        return out


def _finite_median(x: np.ndarray) -> np.ndarray:
    """Per row, the median of the finite values (NaN if none)."""
    x = np.where(np.isfinite(x), x, np.inf)
    x.sort(axis=1)  # the non-finite ones last
    n = np.isfinite(x).sum(axis=1)
    rows = np.arange(len(x))
    hi = x[rows, np.maximum(n // 2, 0)] if x.shape[1] else np.full(len(x), np.inf)
    lo = x[rows, np.maximum((n - 1) // 2, 0)] if x.shape[1] else hi
    return np.where(n > 0, (lo + hi) / 2, np.nan)


def write_out(record: Record, info, recent: rules.Recent, reports: bool):
    """The complete rows of ``record``, in order: their flags (``recent`` is kept up to date),
    their ``metrics.jsonl`` lines, and their report objects if ``reports`` (otherwise only
    the ones that raised a flag are made). Empties the record."""
    if record.n == 0:
        return [], []
    d = record.derive()
    calm = record.calm(d).tolist()
    lists = {k: v.tolist() for k, v in d.items()}
    lists["head"] = record.head[: record.n].tolist()
    lines = record.lines(d)
    out_lines, out_reports = [], []
    for i, quiet in enumerate(calm):
        total = lists["total"][i]
        _, _, lr, _, _ = lists["head"][i]
        rep = None
        if not quiet or (recent.totals and total > rules.EXPLODE_GROWTH * recent.totals[0]):
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
        if reports:
            out_reports.append(rep or record.report(i, lists))
    record.n = 0
    return out_lines, out_reports
