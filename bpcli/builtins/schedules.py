"""The built-in learning-rate schedules, registered through ``bpcli_register_schedules``.

LambdaLR and MultiplicativeLR take Python functions, which a spec cannot give: they are not
registered. Nor is PolynomialLR: the bpcli-extras plugin registers it as ``polynomial``, and
a second registration of one name is an error that would stop every run with that plugin.
"""

from bpcli.optim import lr_scheduler as lrs


def bpcli_register_schedules(register) -> None:
    register("step", lrs.StepLR)
    register("multistep", lrs.MultiStepLR)
    register("exponential", lrs.ExponentialLR)
    register("cosine", lrs.CosineAnnealingLR)
    register("cosine_restarts", lrs.CosineAnnealingWarmRestarts)
    register("linear", lrs.LinearLR)
    register("constant", lrs.ConstantLR)
    register("cyclic", lrs.CyclicLR)
    register("warmup", lrs.WarmupLR)
    register("onecycle", lrs.OneCycleLR)
    register("plateau", lrs.ReduceLROnPlateau)
    register("sequential", lrs.SequentialLR)
