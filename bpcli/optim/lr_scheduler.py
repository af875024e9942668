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
from bpcli.optim.schedules_cyclic import CyclicLR
from bpcli.optim.schedules_lambda import ConstantLR, LambdaLR, MultiplicativeLR
from bpcli.optim.schedules_more import OneCycleLR, ReduceLROnPlateau, SequentialLR, WarmupLR

__all__ = [
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "WarmupLR",
]
