"""``embedding_bag``: sums, means or maxima of bags of embedding rows, without materialising
the (n, dim) lookup as a graph tensor (torch.nn.functional.embedding_bag).

Bags are contiguous runs of the flat index: bag b is ``input[bounds[b]:bounds[b + 1]]``.
Entries equal to ``padding_idx`` take no part (a mean divides by the other entries' count; a
bag with none left is zeros), as in torch.
"""

from __future__ import annotations

import numpy as np

from bpcli.engine.convert import const, lift
from bpcli.engine.op import Op
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError
from bpcli.kernels.embedding import embedding_bwd

__all__ = ["embedding_bag"]

MODES = ("sum", "mean", "max")


class EmbeddingBag(Op):
    """y[b] = reduce_{k in bag b} w[idx[k]] * psw[k] (sum/mean/max); dw = scatter_add of g[bag]
    (mean: / count; max: at the argmax only); dpsw[k] = <g[bag k], w[idx[k]]>"""

    name, onnx = "embedding_bag", None  # 2-D input: Gather + Reduce*; offsets: no ONNX form

    def forward(self, weight, idx, *rest, mode, padding_idx, scale_grad_by_freq,
                include_last_offset, n_offsets):  # fmt: skip
        # rest: the offsets (n_offsets == 1), then the per-sample weights if any
        offsets = rest[0] if n_offsets else None
        psw = rest[n_offsets:]
        flat, bounds = _bounds(idx, offsets, include_last_offset)
        nb, dim = len(bounds) - 1, weight.shape[1]
        self.span = slice(int(bounds[0]), int(bounds[-1]))
        idx = flat[self.span]
        counts = np.diff(bounds)
        bag = np.repeat(np.arange(nb), counts)
        keep = np.ones(idx.shape, bool) if padding_idx is None else idx != padding_idx
        rows = np.take(weight, idx, axis=0)
        self.psw = psw[0].reshape(-1)[self.span] if psw else None
        if psw:
            rows *= self.psw[:, None]
        self.idx, self.bag, self.keep, self.num = idx, bag, keep, weight.shape[0]
        out = np.zeros((nb, dim), weight.dtype)
        full = counts > 0
        starts = bounds[:-1][full] - bounds[0]
        if mode == "max":
            rows = np.where(keep[:, None], rows, -np.inf)
            self.arg = np.full((nb, dim), -1, np.int64)
            if starts.size:
                out[full] = np.maximum.reduceat(rows, starts, axis=0)
                # the first entry that reaches the maximum gets the gradient (torch's `>`)
                hit = np.where(rows == out[bag], np.arange(len(idx))[:, None], len(idx))
                self.arg[full] = np.minimum.reduceat(hit, starts, axis=0)
            none = np.bincount(bag[keep], minlength=nb) == 0  # empty, or padding only
            self.arg[none] = -1
            out[none] = 0
            return out
        rows[~keep] = 0
        if starts.size:
            out[full] = np.add.reduceat(rows, starts, axis=0)
        if mode == "mean":
            n = np.bincount(bag[keep], minlength=nb).astype(weight.dtype)
            self.inv = np.where(n > 0, 1 / np.maximum(n, 1), 0).astype(weight.dtype)
            out *= self.inv[:, None]
        return out

    def backward(self, g):
        a = self.attrs
        mode, pad = a["mode"], a["padding_idx"]
        dw = dpsw = None
        gb = g[self.bag]  # each entry's bag gradient, (n, dim)
        if self.needs[0]:
            if mode == "max":
                dw = np.zeros((self.num, g.shape[1]), g.dtype)
                ok = self.arg >= 0
                cols = np.broadcast_to(np.arange(g.shape[1]), self.arg.shape)[ok]
                np.add.at(dw, (self.idx[self.arg[ok]], cols), g[ok])
            else:
                scale = gb
                if mode == "mean":
                    scale = gb * self.inv[self.bag, None]
                if self.psw is not None:
                    scale = scale * self.psw[:, None]
                dw = embedding_bwd(self.idx.astype(np.int64), np.ascontiguousarray(scale),
                                   self.num, -1 if pad is None else pad)  # fmt: skip
            if a["scale_grad_by_freq"]:
                freq = np.bincount(self.idx, minlength=self.num).astype(g.dtype)
                dw /= np.maximum(freq, 1)[:, None]
        grads = [dw, None] + [None] * a["n_offsets"]
        if self.psw is not None:
            psw_in = self.parents[-1]
            if self.needs[-1]:
                w = np.take(self.parents[0]._data, self.idx, axis=0)
                dpsw = np.zeros(psw_in._data.size, g.dtype)
                dpsw[self.span] = np.where(self.keep, np.sum(gb * w, axis=1), 0)
                dpsw = dpsw.reshape(psw_in.shape)
            grads.append(dpsw)
        return tuple(grads)


def _bounds(idx: np.ndarray, offsets, include_last_offset: bool) -> tuple[np.ndarray, np.ndarray]:
    """The flat index and the B + 1 bag bounds."""
    if idx.ndim == 2:
        if offsets is not None:
            raise BpcliError("if input is 2-D, offsets has to be None (each row is a bag)",
                             "embedding_bag")  # fmt: skip
        n, m = idx.shape
        return idx.reshape(-1), np.arange(n + 1, dtype=np.int64) * m
    if idx.ndim != 1:
        raise BpcliError(f"input must be 1-D or 2-D, got shape {idx.shape}", "embedding_bag")
    if offsets is None:
        raise BpcliError("offsets has to be a 1-D tensor when input is 1-D", "embedding_bag")
    off = np.asarray(offsets.data if isinstance(offsets, Tensor) else offsets)
    if off.ndim != 1 or (off.size and off.dtype.kind not in "iu"):
        raise BpcliError(f"offsets must be a 1-D integer tensor, got {off.shape} {off.dtype}",
                         "embedding_bag")  # fmt: skip
    off = off.astype(np.int64)
    if off.size == 0 or off[0] != 0:
        raise BpcliError("offsets[0] has to be 0: the first bag starts at position 0",
                         "embedding_bag")  # fmt: skip
    if off[-1] > idx.size:
        raise BpcliError(f"offsets[-1] can not be greater than input's length {idx.size} but "
                         f"got {off[-1]}", "embedding_bag")  # fmt: skip
    if np.any(np.diff(off) < 0):
        raise BpcliError(f"offsets must not decrease, got {off.tolist()}", "embedding_bag")
    if include_last_offset:
        if off.size < 2:
            raise BpcliError("include_last_offset needs at least 2 offsets", "embedding_bag")
        # NOTE: torch's last bag runs to the end of input whatever offsets[-1] says (the
        # documented contract is offsets[-1] == len(input), where both agree)
        off = off[:-1]
    return idx, np.append(off, idx.size)


def _renorm_(weight: Tensor, idx: np.ndarray, max_norm: float, norm_type: float) -> None:
    """torch's max_norm: rows looked up whose norm exceeds max_norm are scaled down in place."""
    rows = np.unique(idx)
    w = weight._data
    norms = np.linalg.norm(w[rows], ord=norm_type, axis=1)
    big = norms > max_norm
    if np.any(big):
        w[rows[big]] *= (max_norm / (norms[big] + 1e-7))[:, None].astype(w.dtype)
        weight._version += 1  # as torch's in-place renorm: a saved use of weight is now stale


def embedding_bag(
    input, weight, offsets=None, max_norm=None, norm_type: float = 2, scale_grad_by_freq=False,
    mode: str = "mean", sparse: bool = False, per_sample_weights=None,
    include_last_offset: bool = False, padding_idx: int | None = None,
) -> Tensor:  # fmt: skip
    """Reduce bags of rows of ``weight`` (torch.nn.functional.embedding_bag).

    ``input`` is 2-D (B, N) (each row a bag) or 1-D with ``offsets`` giving each bag's start.
    ``mode`` is 'sum', 'mean' or 'max'; ``per_sample_weights`` (mode 'sum' only) scale each
    entry; entries equal to ``padding_idx`` are left out. ``sparse`` is accepted for torch's
    signature; the gradient is always dense. ``max_norm`` renormalises looked-up rows of
    ``weight`` in place, as torch does.
    """
    w, ix = lift(weight), lift(input)
    if w.ndim != 2:
        raise BpcliError(f"weight must be 2-D (num_embeddings, dim), got {w.shape}",
                         "embedding_bag")  # fmt: skip
    if ix.dtype.kind not in "iu":
        raise BpcliError(f"input must hold integer indices, got {ix.dtype}", "embedding_bag")
    if mode not in MODES:
        raise BpcliError(f"mode must be one of {MODES}, got {mode!r}", "embedding_bag")
    if scale_grad_by_freq and mode == "max":
        raise BpcliError("max mode does not support scaling the gradient by the frequency",
                         "embedding_bag")  # fmt: skip
    idx, bounds = _bounds(ix.data, offsets, include_last_offset)
    nrows = w.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= nrows):
        raise BpcliError(f"index out of range [0, {nrows}): min {idx.min()}, max {idx.max()}",
                         "embedding_bag")  # fmt: skip
    if padding_idx is not None:
        if not -nrows <= int(padding_idx) < nrows:
            raise BpcliError(f"padding_idx {padding_idx} out of range for {nrows} rows",
                             "embedding_bag")  # fmt: skip
        padding_idx = int(padding_idx) % nrows
    extra = []
    if per_sample_weights is not None:
        if mode != "sum":
            raise BpcliError(f"per_sample_weights is only supported for mode='sum' (got "
                             f"mode={mode!r})", "embedding_bag")  # fmt: skip
        psw = lift(per_sample_weights)
        if psw.shape != ix.shape or psw.dtype != w.dtype:
            raise BpcliError(f"per_sample_weights {psw.shape} {psw.dtype} must match input "
                             f"{ix.shape} and weight's dtype {w.dtype}",
                             "embedding_bag")  # fmt: skip
        extra.append(psw)
    if max_norm is not None:
        _renorm_(w, idx[bounds[0] : bounds[-1]], float(max_norm), float(norm_type))
    # the caller's index (and offsets) tensors themselves: an export keeps them graph inputs
    offs = [] if offsets is None else [offsets if isinstance(offsets, Tensor) else
                                       const(np.asarray(offsets, np.int64))]  # fmt: skip
    return EmbeddingBag.apply(w, ix, *offs, *extra, mode=mode, padding_idx=padding_idx,
                              scale_grad_by_freq=bool(scale_grad_by_freq),
                              include_last_offset=bool(include_last_offset),
                              n_offsets=len(offs))  # fmt: skip
