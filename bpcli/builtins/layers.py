"""Built-in layers, registered through the plugin hook like any third party's."""

from bpcli.nn.layers import all_layers


def bpcli_register_layers(register):
    for name, cls in all_layers().items():
        register(name, cls)
