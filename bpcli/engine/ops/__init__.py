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
    order,
    pool,
    quant,
    reduce,
    reduce_more,
    rnn,
    rnn_seq,
    scan,
    scan_more,
    scatter,
    scatter_more,
    select,
    shape,
    sort,
)

FAMILIES = (
    elementwise, activation, reduce, shape, join, index, linalg, nn, loss, norm, conv, pool, rnn,
    rnn_seq, scan, scatter, sort, quant,
    reduce_more, scan_more, order, select, scatter_more,
    math, math_binary, logic, activation_more, loss_more,
)  # fmt: skip
