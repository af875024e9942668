"""The built-in learning-rate schedules, registered through ``bpcli_register_schedules``."""

from bpcli.optim import lr_scheduler as lrs


def bpcli_register_schedules(register) -> None:
    register("step", lrs.StepLR)
    register("multistep", lrs.MultiStepLR)
    register("exponential", lrs.ExponentialLR)
    register("cosine", lrs.CosineAnnealingLR)
    register("cosine_restarts", lrs.CosineAnnealingWarmRestarts)
    register("linear", lrs.LinearLR)
    register("warmup", lrs.WarmupLR)
    register("onecycle", lrs.OneCycleLR)
    register("plateau", lrs.ReduceLROnPlateau)
    register("sequential", lrs.SequentialLR)
