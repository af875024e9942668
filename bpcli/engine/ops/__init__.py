"""Every primitive op, one module per family. Importing this package fills ``op.OPS``."""

from bpcli.engine.ops import (
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
    quant,
    reduce,
    rnn,
    rnn_seq,
    scan,
    scatter,
    shape,
    sort,
)
from bpcli.engine.ops import order, reduce_more, scan_more, scatter_more, select  # issue 11

FAMILIES = (
    elementwise, activation, reduce, shape, join, index, linalg, nn, loss, norm, conv, pool, rnn,
    rnn_seq, scan, scatter, sort, quant,
    reduce_more, scan_more, order, select, scatter_more,
)  # fmt: skip
