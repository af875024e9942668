"""The run-level verdict on the flags of a run: a check point sees gradients, the run's epochs
see whether training suffered. A gradient spike is "exploding" only if it persists or the loss
worsens with it, an update ratio is a problem only when training stalls or diverges with it;
the others are kept as information notes. A training loss that blows far above the chance
level is "exploding" even when no check point caught the spike (check points are at epoch
ends, a blow-up can be over by then).

Thresholds are calibrated on the corpus of bench/diagnostics (``make diagnostics-corpus``).
"""

from __future__ import annotations

import math
from typing import Any

from bpcli.app.diagnostics.rules import _round1

HE = 'model.init={type = "he_normal", nonlinearity = "relu"}'
LOSS_BLOWUP = 13.0  # an epoch's mean training loss over the chance-level loss: exploded
STALL = 0.5  # last epoch's training loss over the first epoch's above this: stalled ...
SATURATION_LOSS = 0.2  # saturated units matter while the loss stays above this x chance
PLATEAU = 0.98  # ... if also no better than this share of the epoch before


def chance_loss(n_classes) -> float | None:
    """Cross-entropy of a uniform guess over ``n_classes``: what an untrained model scores."""
    return math.log(n_classes) if isinstance(n_classes, int) and n_classes > 1 else None


def judge(
    timeline: list[dict[str, Any]],
    epochs: list[dict],
    chance: float | None,
    stopped_nonfinite: bool = False,
    lr: float | None = None,
    hand_drawn_init: bool = False,
) -> list[dict[str, Any]]:
    """``timeline`` (``RunDiagnostics.timeline`` entries) with unconfirmed flags made
    ``"info"`` (and a ``why`` saying so), and an ``exploding`` entry where the loss blew up."""
    losses = [float(e["train_loss"]) for e in epochs
              if isinstance(e.get("train_loss"), int | float)]  # fmt: skip
    blowup = _blowup(epochs, chance)
    diverged = stopped_nonfinite or blowup is not None
    # stalled: still near where it started, and no longer improving
    stalled = bool(losses) and (not math.isfinite(losses[-1]) or (
        losses[-1] > STALL * losses[0] and losses[-1] >= PLATEAU * losses[max(0, len(losses) - 2)]
    ))  # fmt: skip
    out = []
    for e in timeline:
        e = dict(e)
        if e["kind"] == "exploding" and e["severity"] == "warn":
            if not (len(e["steps"]) >= 2 or diverged
                    or _worse_at(epochs, e.get("epochs"), chance)):  # fmt: skip
                e.update(severity="info", why="a single spike while the loss kept improving")
        elif e["kind"] == "saturation" and e["severity"] == "warn":
            if chance is not None and losses and losses[-1] <= SATURATION_LOSS * chance:
                e.update(severity="info", why="the loss fell far below a uniform guess's "
                                              "regardless")  # fmt: skip
        elif e["kind"] == "update_ratio" and e["severity"] == "warn":
            if not (stalled or diverged):
                e.update(severity="info", why="the loss kept improving with it")
        out.append(e)
    if blowup is not None and not any(e["kind"] == "exploding" and e["severity"] != "info"
                                      for e in out):  # fmt: skip
        epoch, loss = blowup
        lower = f"optimizer.lr={_round1(lr / 10):g}" if lr else ""
        # weights drawn by hand at a large scale blow the loss up at any learning rate
        # (corpus: relu-large-init is worse at lr / 10); He's scale is the fix there
        sets = [HE] if hand_drawn_init else [lower] if lower else []
        out = [e for e in out if e["kind"] != "exploding"]
        out.insert(0, {
            "kind": "exploding", "severity": "warn", "layers": [], "steps": [],
            "epochs": [epoch],
            "evidence": f"the mean training loss of epoch {epoch} is {loss:.3g}, "
                        f"{loss / chance:.0f}x the {chance:.3g} of a uniform guess: the "
                        "weights were thrown far off between check points",
            "suggestion": ("start the weights at He's scale: model.init = he_normal"
                           if hand_drawn_init else "lower the learning rate"
                           + (f": {lower}" if lower else "")),
            "set": sets,
        })  # fmt: skip
    return out


def _blowup(epochs: list[dict], chance: float | None) -> tuple[int, float] | None:
    if chance is None:
        return None
    for e in epochs:
        loss = e.get("train_loss")
        if isinstance(loss, int | float) and (not math.isfinite(loss)
                                              or loss > LOSS_BLOWUP * chance):  # fmt: skip
            return int(e["epoch"]), float(loss)
    return None


def _worse_at(epochs: list[dict], raised_epochs, chance: float | None) -> bool:
    """Did the training loss rise with the flag: the epoch it was raised in, or the next, worse
    than the epoch before (before the first: a uniform guess)?"""
    loss = {int(e["epoch"]): e.get("train_loss") for e in epochs}
    loss[0] = chance
    num = lambda v: isinstance(v, int | float)  # noqa: E731
    for ep in raised_epochs or ():
        before = loss.get(ep - 1)
        after = [v for v in (loss.get(ep), loss.get(ep + 1)) if num(v)]
        if num(before) and after and max(after) > before:
            return True
    return False
