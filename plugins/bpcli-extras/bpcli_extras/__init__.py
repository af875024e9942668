"""bpcli-extras: an example bpcli plugin, written against bpcli's public API only.

Parts (registry names): layers ``mish`` and ``swish``, loss ``focal``, optimizer ``lion``,
schedule ``polynomial``, dataset ``checkerboard``; and the engine op ``extras_mish``.
The hooks live in ``bpcli_extras.plugin``; the parts import bpcli's engine, so the plugin
module imports them only when a hook runs.
"""

__version__ = "0.1.0"
