"""What the schedule tests share: an optimizer with several groups in either library, and the
rows of learning rates and momentums a schedule walks through."""

from __future__ import annotations

import numpy as np

import bpcli as bp
from bpcli import optim


def make_opt(mod, kind: str = "sgd", group_lrs=(None, 0.03)):
    """An optimizer of library ``mod`` (bpcli.optim or torch.optim), one param group per entry
    of ``group_lrs`` (None: the default lr 0.1)."""
    if mod is optim:
        ps = [bp.tensor(np.zeros(2), requires_grad=True) for _ in group_lrs]
    else:
        import torch

        ps = [torch.zeros(2, requires_grad=True) for _ in group_lrs]
    groups = [{"params": [p]} if lr is None else {"params": [p], "lr": lr}
              for p, lr in zip(ps, group_lrs, strict=True)]  # fmt: skip
    if kind == "adam":
        return mod.Adam(groups, lr=0.1)
    return mod.SGD(groups, lr=0.1, momentum=0.9)


def row(opt, sched) -> list[float]:
    g = opt.param_groups
    mom = [x["betas"][0] if "betas" in x else x["momentum"] for x in g]
    return [*sched.get_last_lr(), *(x["lr"] for x in g), *mom]


def trajectory(opt, sched, steps: int, start: int = 0) -> list[list[float]]:
    out = []
    for _ in range(start, steps):
        opt.step()
        sched.step()
        out.append(row(opt, sched))
    return out
