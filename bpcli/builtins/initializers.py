"""Built-in initialisers, registered through the plugin hook like any third party's."""

from bpcli.nn.init import INITIALIZERS


def bpcli_register_initializers(register):
    for name, fn in INITIALIZERS.items():
        register(name, fn)
