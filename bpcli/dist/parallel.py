"""What the training loop calls on each rank: shards, the step's allreduce, reduced metrics.

Equal to one process: every rank sees the same global batches (the shuffle generator is
seeded alike everywhere), takes rows ``[n*r//N, n*(r+1)//N)`` of each, and the gradients are
summed with weights ``n_r / n``, so each rank holds the gradient of the global batch's mean
loss. The step's loss sum, sample count, correct count and the Ctrl-C flag travel at the end
of the same buffer: one collective per step, and every decision taken from its result (the
NaN guard, stopping) is the same on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcli.app.training.evaluate import Meter, measure
from bpcli.engine import random as bprandom
from bpcli.errors import BpcliError

_TAIL = 4  # loss sum, samples, correct, interrupt flag


class AgreedError(BpcliError):
    """An error every rank raises alike; rank 0 alone prints it and all exit without abort."""


@dataclass
class _Shard:
    x: np.ndarray
    y: np.ndarray


class AgreedInterrupt:
    """``intr.flag`` as the ranks agreed at the last step (a local Ctrl-C counts from the next
    allreduce on), so every rank stops at the same step."""

    def __init__(self, local, par: DataParallel):
        self.local, self.par = local, par

    @property
    def flag(self) -> bool:
        return self.par.stop


class DataParallel:
    def __init__(self, comm):
        self.comm, self.rank, self.size = comm, comm.rank, comm.size
        self.writes = self.rank == 0
        self.buf: np.ndarray | None = None
        self.stop = False
        self.local_intr = None
        self.n_global = self.n_local = 0
        self.sums = (0.0, 0, 0)
        self.setup_done = False  # past the agreement point: errors from here on abort

    # -- start --------------------------------------------------------------------------------
    def setup(self, st, built) -> None:
        """Agree on spec, data and version, check the batches can be split, broadcast rank 0's
        parameters and buffers."""
        splits = {k: None if d is None else d.content_hash()
                  for k, d in built.splits._asdict().items()}  # fmt: skip
        self.agree({"spec": st.spec_hash, "data": splits})
        self._check_batches(built, st.spec)
        self.broadcast_state(built.model)
        if st.spec.train.get("sync_batchnorm"):
            from bpcli.dist.syncbn import sync_batchnorm

            sync_batchnorm(built.model, self)

    def agree(self, mine: dict | None, failed: str | None = None) -> None:
        """The agreement point: every rank calls it, with what must be equal everywhere or
        with the error it met before getting here (``failed``), so an error on some ranks
        or a difference ends all of them alike (AgreedError) instead of a hang."""
        import bpcli

        mine = None if failed is not None else {**mine, "bpcli version": bpcli.__version__}
        gathered = self.comm.allgather((failed, mine))
        errors = [(r, e) for r, (e, _) in enumerate(gathered) if e is not None]
        if errors:
            r, e = errors[0]
            raise AgreedError(e if len(errors) == self.size else f"{e} (on rank {r})", "")
        differ = [k for k in mine if any(g[1][k] != gathered[0][1][k] for g in gathered)]
        if differ:
            ranks = [r for r, g in enumerate(gathered) if g[1] != gathered[0][1]]
            raise AgreedError(
                f"the ranks differ in {', '.join(differ)} (ranks {ranks} vs rank 0): every rank "
                "must run the same bpcli on the same spec and data",
                "mpiexec",
            )
        self.setup_done = True

    def _check_batches(self, built, spec) -> None:
        if built.task == "language":
            raise AgreedError("language models train in one process only for now", "mpiexec")
        bs, n = spec.train["batch_size"], len(built.splits.train)
        smallest = min(bs, n % bs or bs)
        if smallest < self.size:
            raise AgreedError(
                f"a batch of {smallest} samples cannot be split over {self.size} ranks; use at "
                f"most {smallest} ranks or a train.batch_size that leaves >= {self.size}",
                "train.batch_size",
            )

    def broadcast_state(self, model) -> None:
        state = model.state_dict()
        for arr in state.values():
            self.comm.bcast_(arr)
        model.load_state_dict(state)

    def on_root(self, fn):
        """``fn()`` on rank 0 only (writing the run directory); its result or its error on all."""
        out = err = None
        if self.writes:
            try:
                out = fn()
            except BpcliError as e:
                err = e
        out, err = self.comm.bcast((out, None if err is None else (str(err.msg), err.where)))
        if err is not None:
            raise AgreedError(*err)
        return out

    def agreed(self, intr) -> AgreedInterrupt:
        self.local_intr = intr
        return AgreedInterrupt(intr, self)

    # -- each step ----------------------------------------------------------------------------
    def shard(self, xb: np.ndarray, yb: np.ndarray):
        n = len(xb)
        lo, hi = shard_bounds(n, self.rank, self.size)
        self.n_global, self.n_local = n, hi - lo
        bprandom.set_batch_shard(lo, hi - lo)
        return xb[lo:hi], yb[lo:hi]

    def reduce_step(self, tensors, loss: float, out: np.ndarray, yb: np.ndarray, task: str):
        """Sum the weighted gradients and the step's metrics over the ranks, in one buffer;
        returns the global batch's mean loss."""
        m = Meter(task)
        m.add(loss, out, yb)
        sizes = [p.data.size for p in tensors]
        dtype = np.result_type(*[p.data.dtype for p in tensors]) if tensors else np.float32
        if self.buf is None or self.buf.size != sum(sizes) + _TAIL or self.buf.dtype != dtype:
            self.buf = np.empty(sum(sizes) + _TAIL, dtype)
        buf, w, off = self.buf, self.n_local / self.n_global, 0
        for p, k in zip(tensors, sizes):
            if p.grad is None:
                buf[off : off + k] = 0
            else:
                np.multiply(np.asarray(p.grad).reshape(-1), w, out=buf[off : off + k])
            off += k
        flag = self.local_intr is not None and self.local_intr.flag
        buf[off:] = (m.loss_sum, m.count, m.correct, float(flag))
        self.comm.allreduce_(buf)
        off = 0
        for p, k in zip(tensors, sizes):
            if p.grad is not None:
                # NOTE: a view of the buffer: the optimizer reads it before the next step
                # repacks, and zero_grad() drops it (set_to_none) before the next backward.
                p.grad = buf[off : off + k].reshape(p.data.shape)
            off += k
        loss_sum, count, correct, stop = (float(v) for v in buf[off:])
        self.sums = (loss_sum, round(count), round(correct))
        self.stop = self.stop or stop > 0
        return loss_sum / self.n_global

    def add_to(self, meter: Meter) -> int:
        """The last step's global sums into ``meter`` (the same on every rank); returns n."""
        loss_sum, count, correct = self.sums
        meter.loss_sum += loss_sum
        meter.count += count
        meter.correct += correct
        return count

    # -- evaluation ---------------------------------------------------------------------------
    def measure(self, built, ds, batch_size: int, bptt: int = 64, prefix: str = ""):
        """``evaluate.measure`` on this rank's part of ``ds``, the shard-weighted mean of all."""
        n = len(ds.x)
        lo, hi = shard_bounds(n, self.rank, self.size)
        metrics, _ = measure(built, _Shard(ds.x[lo:hi], ds.y[lo:hi]), batch_size, bptt, prefix)
        keys = sorted(metrics)
        sums = np.array([metrics[k] * (hi - lo) for k in keys], np.float64)
        self.comm.allreduce_(sums)
        return {k: float(v) / n for k, v in zip(keys, sums)}, None

    def finish(self) -> None:
        bprandom.set_batch_shard(0, 0)


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s rows of ``n``: contiguous, sizes differing by at most one."""
    return n * rank // size, n * (rank + 1) // size
