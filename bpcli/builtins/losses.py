"""Built-in losses, registered through the plugin hook like any third party's."""

from bpcli.nn.losses import LOSSES


def bpcli_register_losses(register):
    for name, cls in LOSSES.items():
        register(name, cls)
