"""Every primitive op, one module per family. Importing this package fills ``op.OPS``."""

from bpcli.engine.ops import (
    activation,
    activation_more,
    conv,
    elementwise,
    index,
    join,
    linalg,
    logic,
    loss,
    loss_more,
    math,
    math_binary,
    nn,
    norm,
    pool,
    quant,
    reduce,
    rnn,
    rnn_seq,
    scan,
    scatter,
    shape,
    sort,
)

FAMILIES = (
    elementwise, activation, reduce, shape, join, index, linalg, nn, loss, norm, conv, pool, rnn,
    rnn_seq, scan, scatter, sort, quant,
    math, math_binary, logic, activation_more, loss_more,
)  # fmt: skip
