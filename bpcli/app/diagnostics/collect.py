"""Gradient diagnostics: per-parameter gradient statistics, update/weight ratios and activation
health, taken at check points of a training run, with flags that say what is wrong and how to
fix it (the rules are in ``diagnostics_flags``).

A check point is one training step seen in full: the activations of its forward (forward hooks
on the activation layers, installed for that step only, or with ``every=1`` until the epoch's
``flush()``), its gradients before clipping, and the step the optimizer took (a snapshot of the
weights before ``optimizer.step``). Steps that are not check points run exactly as without
diagnostics: nothing is installed, nothing copied. ``close()`` removes the hooks.

``Diagnostics.wants(step, last_of_epoch)`` says which steps are check points: the first step
of the run (a baseline reading before training has changed anything), the last step of every
epoch, and with ``every=N`` every N-th step.

A check point costs its statistics kernels only: they write their sums into a row of a
preallocated record (``record``). ``flush()`` runs the flag rules over the rows,
turns them into ``DiagReport`` objects (``report``; a calm row's is a
``CalmReport`` that makes its lists only when they are read) and gives their
``{"kind": "diag", ...}`` lines of ``metrics.jsonl``; the trainer calls it at each epoch end and
when the run stops (a non-finite step is flagged there, the step it went non-finite).
"""

from __future__ import annotations

import json
import math
from operator import is_

import numpy as np

from bpcli.app.diagnostics import names, rules
from bpcli.app.diagnostics.record import DELTA, INPUT, STEPPED, Layout, Record, write_out
from bpcli.app.diagnostics.report import (  # noqa: F401  (the public names, re-exported)
    ActStats,
    DiagReport,
    NormStats,
    ParamStats,
    RunDiagnostics,
    as_float,
    load_run,
)
from bpcli.app.diagnostics.rules import (  # noqa: F401  (re-exported)
    DEAD,
    NORMS,
    SATURATING,
    SATURATION_MARGIN,
)
from bpcli.engine.tensor import Tensor


def parse_every(value) -> int | None:
    """``--diagnose`` value: "epoch"/0 -> None (epoch ends only), N >= 1 -> every N steps."""
    if value in (None, "epoch", 0, "0"):
        return None
    n = int(value)
    if n < 0:
        raise ValueError(value)
    return n or None


class Diagnostics:
    """Collects check points during training.

    Args:
        model: the Module being trained.
        optimizer: its optimizer (``param_groups[0]["lr"]`` is recorded).
        every: a check point every N steps as well as at epoch ends (None: epoch ends only).
        context: what the flag rules may cite: ``init`` (the spec's model.init), ``bptt``,
            ``clip_grad_norm``.
        sink: ``sink(lines, reports)`` receives what ``flush`` writes out (the record also
            flushes itself when its rows are used up).
        reports: make a ``DiagReport`` of every check point (False: only of those that raise
            a flag, when nothing reads the others).
    """

    def __init__(self, model, optimizer, every: int | None = None, context=None, sink=None,
                 reports: bool = True):  # fmt: skip
        from bpcli.kernels import stats

        self._k = stats  # numba loads with the first Diagnostics, not with `bpcli diagnose`
        self.model, self.optimizer, self.every = model, optimizer, every
        self.sink, self.reports = sink, reports
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._tensors = [p for _, p in self.params]
        info = self.model_info = rules.ModelInfo.of(model, dict(context or {}))
        self._recent = rules.Recent()
        self._norms = [(n, m) for n, m in info.norms if getattr(m, "running_var", None) is not None]
        self.record = Record(Layout(
            [(n, n.rsplit(".", 1)[0] if "." in n else "", list(p.shape)) for n, p in self.params],
            [(n, kind, info.before.get(n, "")) for n, _, kind in info.activations],
            [(n, type(m).__name__, getattr(m, "weight", None) is not None)
             for n, m in self._norms],
            info.context.get("bptt"),
        ))  # fmt: skip
        # The weights before the step, copied by the statistics kernel into these buffers;
        # the flat views of the weights and the buffers as the kernels take them, made again
        # only when a parameter's array is not the one they were made for.
        self._snaps: list[np.ndarray] = [np.empty(0, np.float32) for _ in self.params]
        self._datas: list = []
        self._ws: tuple = ()
        self._snaps_t: tuple = ()
        self._bits = None  # (_BITS entry) when every weight has that float dtype
        # With every=1, a check point's update is measured at the next one, by the pass that
        # snapshots the weights again (they do not move in between): its params block.
        self._pending: np.ndarray | None = None
        self._scratch = np.empty((len(self.params), 7))  # that pass's output when none is
        self._hooks = [
            (mod, self._observer(j, kind, info.unit_axis(name)))
            for j, (name, mod, kind) in enumerate(info.activations)
        ]
        if info.layers:  # the scale of what the first weighted layer is fed: inputs not scaled
            self._hooks.append((info.layers[0][1], self._input_observer(len(self._hooks))))
        self._removers: list = []
        self._seen = [False] * len(self._hooks)  # activation layers observed at this step
        self._all_seen = [True] * len(self._hooks)
        self._row = -1  # the record row of the check point in progress
        self._acts: np.ndarray | None = None  # its activation block
        self._backward_done = False
        self._state_in: list[Tensor] = []
        self._held: list[DiagReport] = []  # flushed without a sink, for the next flush()
        # the readable layer names, written before the first check point's line
        self._names_line: str | None = json.dumps({"kind": "diag_layers",
                                                   "names": names.labels(model)})  # fmt: skip

    # -- when ----------------------------------------------------------------------------------
    def wants(self, step: int, last_of_epoch: bool) -> bool:
        """Is the step about to run (1-based ``step``) a check point?"""
        return step == 1 or last_of_epoch or (self.every is not None and step % self.every == 0)

    # -- during the step ------------------------------------------------------------------------
    def begin(self) -> None:
        """Before the forward: observe the activation layers."""
        self._open()
        if not self._removers:
            self._removers = [mod.register_forward_hook(hook) for mod, hook in self._hooks]

    def track_state(self, state):
        """A carried recurrent state as leaves that require grad, so backward reports the
        gradient that reaches the truncation boundary of truncated BPTT."""
        self._state_in = []
        if state is None:
            return None
        if isinstance(state, tuple | list):
            return type(state)(self.track_state_one(s) for s in state)
        return self.track_state_one(state)

    def track_state_one(self, s):
        if isinstance(s, tuple | list):
            return type(s)(self.track_state_one(x) for x in s)
        t = Tensor(s.data, requires_grad=True)
        self._state_in.append(t)
        return t

    def after_backward(self, epoch: int, step: int) -> None:
        """After backward, before clipping: gradient statistics; snapshots the weights."""
        if self.every == 1:  # every step observed: the hooks stay until flush(), ignoring
            self._seen = self._all_seen  # forwards outside the check points' steps
        else:
            self._unhook()
        if self._row < 0:  # a non-finite step that was not a check point: no activations
            self._open()
        rec, i = self.record, self._row
        bptt = math.nan
        if self._state_in:
            g = [s.grad for s in self._state_in if s.grad is not None]
            bptt = math.sqrt(sum(float(np.vdot(x, x)) for x in g)) if g else 0.0
            self._state_in = []
        rec.head[i, :INPUT] = (epoch, step, float(self.optimizer.param_groups[0]["lr"]), 0.0,
                               bptt)  # fmt: skip
        self._grad_stats(rec.params[i])
        if self._norms:
            _norm_stats(self._norms, rec.norms[i])
        self._backward_done = True

    def after_step(self) -> None:
        """After ``optimizer.step``: the squared distance each parameter moved."""
        rec, i = self.record, self._row
        block = rec.params[i]
        if self._bits is not None and all(map(is_, [p.data for p in self._tensors], self._datas)):
            # updated in place (every optimizer here): the views made before the step hold
            if self.every == 1:
                self._pending = block
            else:
                self._k.delta_sq_all(self._ws, self._snaps_t, block)
            rec.head[i, STEPPED] = 1.0
            self._close()
            return
        ws = [p.data.reshape(-1) for p in self._tensors]
        snaps = self._snaps
        if all(w.shape == w0.shape and w.dtype == w0.dtype for w, w0 in zip(ws, snaps)):
            if ws and all(w.dtype == ws[0].dtype for w in ws):
                self._k.delta_sq_all(tuple(ws), tuple(snaps), block)
            else:
                for j, (w, w0) in enumerate(zip(ws, snaps, strict=True)):
                    block[j, DELTA] = self._k.delta_sq(w, w0)
            rec.head[i, STEPPED] = 1.0
        self._close()

    def abandon(self) -> None:
        """The step will not be taken: a check point with its gradients is kept without an
        update (non-finite gradients), one interrupted before them is dropped."""
        self._unhook()
        if self._row >= 0 and self._backward_done:
            self._close()
        self._row, self._backward_done = -1, False

    # -- written out ---------------------------------------------------------------------------
    def flush(self) -> list[DiagReport]:
        """The check points recorded since the last flush, flagged: to the sink, and returned
        as reports (those that raised a flag only, if built with ``reports=False``)."""
        if self._row < 0:
            self._unhook()  # at an epoch end: evaluation runs without hooks
        self._settle()
        lines, reports = write_out(self.record, self.model_info, self._recent,
                                   self.reports or self.sink is None)  # fmt: skip
        if self.sink is not None and lines:
            if self._names_line is not None:
                lines, self._names_line = [self._names_line, *lines], None
            self.sink(lines, reports)
        held, self._held = self._held, []
        return held + reports

    # -- inside ---------------------------------------------------------------------------------
    def _open(self) -> None:
        rec = self.record
        if rec.full:
            self._held += self.flush()
            if self.sink is not None:
                self._held = []  # the sink has them
        self._row = rec.n
        rec.clear_row()
        self._acts = rec.acts[rec.n]
        self._seen = [False] * len(self._hooks)

    def _close(self) -> None:
        self.record.n += 1
        self._row, self._backward_done = -1, False

    def close(self) -> None:
        """Remove what is installed on the model (the hooks kept between check points)."""
        self._unhook()

    def _unhook(self) -> None:
        for remove in self._removers:
            remove()
        self._removers = []
        self._seen = self._all_seen

    def _grad_stats(self, block: np.ndarray) -> None:
        """Gradient sums, |w| and the weight snapshot of every parameter into the record,
        in one kernel call when all share a float dtype (a call per parameter otherwise)."""
        datas = [p.data for p in self._tensors]
        if len(datas) != len(self._datas) or not all(map(is_, datas, self._datas)):
            self._settle()
            self._prepare(datas)
        bits = self._bits
        if bits is not None:
            try:
                gs = tuple([p.grad.reshape(-1) for p in self._tensors])
            except AttributeError:  # a parameter without a gradient
                gs = None
            dt = bits[2]
            if gs is not None and all([g.dtype == dt for g in gs]):
                prev, self._pending = self._pending, None
                self._k.grad_weight_stats_all(gs, bits[1], self._ws, self._snaps_t, block,
                                              self._scratch if prev is None else prev)  # fmt: skip
                return
        self._settle()
        self._grad_stats_each(block)

    def _settle(self) -> None:
        """The pending check point's update, measured apart (the weights have not moved)."""
        if self._pending is not None:
            self._k.delta_sq_all(self._ws, self._snaps_t, self._pending)
            self._pending = None

    def _prepare(self, datas: list) -> None:
        self._datas = datas
        ws = [w.reshape(-1) for w in datas]
        for i, w in enumerate(ws):
            if self._snaps[i].shape != w.shape or self._snaps[i].dtype != w.dtype:
                self._snaps[i] = np.empty_like(w)
        self._ws, self._snaps_t = tuple(ws), tuple(self._snaps)
        dtypes = {w.dtype for w in ws}
        self._bits = _BITS.get(ws[0].dtype) if len(dtypes) == 1 else None  # None: no weights

    def _grad_stats_each(self, block: np.ndarray) -> None:
        snaps, gs, ws = self._snaps, [], []
        for i, p in enumerate(self._tensors):
            w = p.data.reshape(-1)
            if snaps[i].shape != w.shape or snaps[i].dtype != w.dtype:
                snaps[i] = np.empty_like(w)
            g = p.grad
            gs.append(w[:0] if g is None else g.reshape(-1))
            ws.append(w)
        if not ws:
            return
        dtype = ws[0].dtype
        bits = _BITS.get(dtype)
        if (
            bits is not None
            and all(g.dtype == dtype for g in gs)
            and all(w.dtype == dtype for w in ws)
        ):
            self._k.grad_weight_stats_all(tuple(gs), bits[1], tuple(ws), tuple(snaps), block,
                                          np.empty((len(ws), 7)))  # fmt: skip
            return
        for i, (g, w) in enumerate(zip(gs, ws, strict=True)):
            if g.dtype not in _BITS:  # an integer or float16 gradient: summed as float64
                g = g.astype(np.float64)
            bits = _BITS[g.dtype]
            self._k.grad_weight_stats(g, bits[1], w, snaps[i], block[i])

    def _observer(self, j: int, kind: str, axis: int):
        unit_activity = self._k.unit_activity
        sat = kind in SATURATING
        if sat:
            lo, hi = SATURATING[kind]
            m = SATURATION_MARGIN * (hi - lo)
            lo, hi = lo + m, hi - m
        else:
            lo, hi = 0.0, math.inf  # alive: above 0 somewhere in the batch

        last = [None, None, 0]  # the latest output shape, as (outer, units, inner), and units

        def hook(module, args, out):
            # NOTE: a layer called twice in one forward is recorded at its first call.
            if self._seen[j] or not isinstance(out, Tensor):
                return
            self._seen[j] = True
            y = out.data
            if y.shape != last[0]:
                last[:] = [y.shape, *_unit_shape(y.shape, axis)]
            if not y.size:
                self._acts[j] = (0.0, 0.0, last[2], 0.0)
                return
            if y.dtype not in _BITS:
                y = y.astype(np.float64)
            if sat:
                # Saturation is the share of outputs near a bound over the batch (each one
                # passes back a derivative near 0): the kernel counts every output as a
                # "unit", scaled back to the layer's units so the record reads as for ReLU.
                out = self._acts[j]
                unit_activity(y.reshape(1, -1, 1), lo, hi, out)
                out[0] *= last[2] / out[3]
                out[2] = last[2]
                return
            unit_activity(y.reshape(last[1]), lo, hi, self._acts[j])

        return hook

    def _input_observer(self, j: int):
        def hook(module, args, out):
            if self._seen[j] or not args:
                return
            self._seen[j] = True
            x = args[0].data if isinstance(args[0], Tensor) else np.asarray(args[0])
            if x.size and x.dtype.kind == "f":  # token ids (an embedding's input) have no scale
                self.record.head[self._row, INPUT] = math.sqrt(float(np.vdot(x, x)) / x.size)

        return hook


# The unsigned integer of each float's width, and its mask without the sign bit (an array:
# a numpy scalar argument costs Numba's dispatcher more than the kernel's work).
_BITS = {
    np.dtype(np.float32): (np.uint32, np.array([0x7FFFFFFF], np.uint32), np.dtype(np.float32)),
    np.dtype(np.float64): (
        np.uint64,
        np.array([0x7FFFFFFFFFFFFFFF], np.uint64),
        np.dtype(np.float64),
    ),
}


def _unit_shape(shape: tuple, axis: int) -> tuple[tuple[int, int, int], int]:
    """An activation of ``shape`` as (outer, units, inner) with its units on ``axis``."""
    if not shape:
        return (1, 1, 1), 1
    ax = axis % len(shape)
    return (math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1 :])), shape[ax]


def _norm_stats(norms, block: np.ndarray) -> None:
    for (_, mod), slot in zip(norms, block):
        v = mod.running_var.data.astype(np.float64)
        gamma = getattr(mod, "weight", None)
        slot[:] = (v.min(), np.median(v), (v < rules.BN_VAR_COLLAPSE).mean(),
                   math.nan if gamma is None else np.abs(gamma.data).min())  # fmt: skip
