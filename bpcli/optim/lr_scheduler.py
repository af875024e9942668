"""Learning-rate schedules with torch's names and semantics (``bpcli.optim.lr_scheduler``)."""

from bpcli.optim.schedules import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    StepLR,
)
from bpcli.optim.schedules_more import OneCycleLR, ReduceLROnPlateau, SequentialLR, WarmupLR

__all__ = [
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "WarmupLR",
]
