"""Built-in losses, registered through the plugin hook like any third party's."""

from bpcli.nn.losses import LOSSES
from bpcli.nn.losses_more import LOSSES as LOSSES_MORE


def bpcli_register_losses(register):
    for name, cls in {**LOSSES, **LOSSES_MORE}.items():
        register(name, cls)
