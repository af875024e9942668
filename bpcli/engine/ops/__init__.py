"""Every primitive op, one module per family. Importing this package fills ``op.OPS``."""

from bpcli.engine.ops import (
    activation,
    conv,
    einsum,
    elementwise,
    embedding_bag,
    index,
    join,
    linalg,
    linalg_more,
    linalg_norm,
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

FAMILIES = (
    elementwise, activation, reduce, shape, join, index, linalg, nn, loss, norm, conv, pool, rnn,
    rnn_seq, scan, scatter, sort, quant,
    einsum, embedding_bag, linalg_more, linalg_norm,
)  # fmt: skip
