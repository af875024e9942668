"""``bpcli lr-find``: Leslie Smith's learning-rate range test.

Trains from the spec's initial parameters while the learning rate grows exponentially from
``min_lr`` to ``max_lr`` over ``steps`` steps (default: one epoch, at least 100 steps, cycling
through the data), records the loss of each batch and an exponentially smoothed, bias-corrected
copy (beta 0.98, as fastai), and stops once the smoothed loss exceeds 4x its minimum or turns
non-finite. The spec's schedule is not used.

Suggested LR: the steepest descent of the smoothed loss against log(lr), looked for between
the first tenth of the steps and the minimum; if that point is not within two decades below
the minimum's LR, the minimum's LR / 10 (the classic rule). The model's parameters and the
optimizer's state are restored afterwards.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from bpcli.errors import BpcliError

BETA, DIVERGE = 0.98, 4.0


@dataclass
class LrFindResult:
    spec: str
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested_lr: float | None = None
    steepest_lr: float | None = None
    min_loss_lr: float | None = None
    stopped_early: bool = False
    steps: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _batches(built, rng):
    from bpcli import data as bdata

    bs = built.spec.train["batch_size"]
    train = built.splits.train
    while True:
        if built.task == "language":
            yield from bdata.bptt_windows(bdata.stream_of(train), bs, built.spec.train["bptt"])
        else:
            yield from bdata.iter_batches(train.x, train.y, bs, True, rng)


def suggest(
    lrs: list[float], smoothed: list[float]
) -> tuple[float | None, float | None, float | None]:
    """(suggested, steepest, min-loss) learning rates of a smoothed range-test curve."""
    if len(smoothed) < 3:
        return None, None, None
    s = np.asarray(smoothed)
    i_min = int(np.nanargmin(s))
    min_lr = lrs[i_min]
    start = len(s) // 10
    steep = None
    if i_min - start >= 2:
        g = np.gradient(s[start : i_min + 1], np.log(lrs[start : i_min + 1]))
        steep = lrs[start + int(np.argmin(g))]
    ok = steep is not None and min_lr / 100 <= steep <= min_lr
    return (steep if ok else min_lr / 10), steep, min_lr


def lr_find(spec, min_lr: float = 1e-6, max_lr: float = 10.0, steps: int | None = None,
            built=None) -> LrFindResult:  # fmt: skip
    """Run the range test on a resolved Spec (or on an existing ``built``, restored after)."""
    from bpcli.app.model.build import build
    from bpcli.engine import random as bprandom

    if not (0 < min_lr < max_lr < math.inf):
        raise BpcliError(f"need 0 < min lr < max lr, got {min_lr}, {max_lr}", "lr-find")
    if steps is not None and steps < 2:
        raise BpcliError(f"must be >= 2, got {steps}", "--steps")
    bprandom.manual_seed(spec.seed)
    built = built or build(spec)
    n = steps or max(built.steps_per_epoch, 100)
    model, opt = built.model, built.optimizer
    saved_model = {k: v.copy() for k, v in model.state_dict().items()}
    saved_opt = copy.deepcopy(opt.state_dict())
    res = LrFindResult(spec.name, steps=n)
    avg, best = 0.0, math.inf
    batches = _batches(built, np.random.default_rng([spec.seed, 2]))
    model.train()
    try:
        for i in range(n):
            lr = min_lr * (max_lr / min_lr) ** (i / (n - 1))
            for g in opt.param_groups:
                g["lr"] = lr
            xb, yb = next(batches)
            out = model(xb)
            loss = built.loss_fn(out[0] if isinstance(out, tuple) else out, yb)
            opt.zero_grad()
            loss.backward()
            lv = float(loss.item())
            if not math.isfinite(lv):
                res.stopped_early = True
                break
            opt.step()
            avg = BETA * avg + (1 - BETA) * lv
            sm = avg / (1 - BETA ** (i + 1))
            res.lrs.append(lr)
            res.losses.append(lv)
            res.smoothed.append(sm)
            best = min(best, sm)
            if i > n // 10 and sm > DIVERGE * best:
                res.stopped_early = True
                break
    finally:
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)
    res.suggested_lr, res.steepest_lr, res.min_loss_lr = suggest(res.lrs, res.smoothed)
    return res
