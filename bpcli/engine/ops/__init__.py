"""Every primitive op, one module per family. Importing this package fills ``op.OPS``."""

from bpcli.engine.ops import (  # noqa: F401 - imported to register the ops
    activation,
    conv,
    elementwise,
    index,
    join,
    linalg,
    loss,
    nn,
    norm,
    pool,
    reduce,
    rnn,
    shape,
)

FAMILIES = (
    elementwise, activation, reduce, shape, join, index, linalg, nn, loss, norm, conv, pool, rnn,
)  # fmt: skip
