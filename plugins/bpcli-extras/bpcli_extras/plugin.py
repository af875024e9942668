"""The hooks bpcli calls (entry point ``extras`` in the ``bpcli`` group).

Each hook imports its parts when it runs: loading the plugin module stays cheap, so a
command that needs no registry (``bpcli --help``) does not pay for numpy or the engine.
"""

from bpcli.plugins.hookspecs import hookimpl


@hookimpl
def bpcli_register_layers(register) -> None:
    from bpcli_extras.layers import Mish, Swish

    register("mish", Mish)
    register("swish", Swish)


@hookimpl
def bpcli_register_losses(register) -> None:
    from bpcli_extras.losses import FocalLoss

    register("focal", FocalLoss)


@hookimpl
def bpcli_register_optimizers(register) -> None:
    from bpcli_extras.optim import Lion

    register("lion", Lion)


@hookimpl
def bpcli_register_schedules(register) -> None:
    from bpcli_extras.optim import PolynomialLR

    register("polynomial", PolynomialLR)


@hookimpl
def bpcli_register_datasets(register) -> None:
    from bpcli_extras.data import checkerboard

    register("checkerboard", checkerboard)
