"""The built-in layers, one module per family; each module's ``LAYERS`` maps registry names."""

from bpcli.nn.layers import (
    activation,
    activation_more,
    attention,
    bilinear,
    container,
    conv,
    dropout,
    embedding,
    linear,
    lm,
    norm,
    pool,
    recurrent,
    shaping,
    transformer,
)

FAMILIES = (linear, activation, container, conv, pool, norm, dropout, embedding, recurrent,
            attention, transformer, lm, activation_more)  # fmt: skip
FAMILIES += (bilinear, shaping)


def all_layers() -> dict:
    """Every built-in layer class by registry name."""
    out = {}
    for mod in FAMILIES:
        out.update(mod.LAYERS)
    return out
