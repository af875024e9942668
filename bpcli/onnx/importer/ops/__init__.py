"""One module per ONNX op family; each fills ``table.IMPORTERS`` when imported.

A family named like an engine family (``elementwise``, ``nn``, ``norm``, ``quant``, ``reduce``,
``rnn``, ``shape``, ``index``) maps ONNX nodes onto the ops of ``bpcli/engine/ops/<family>.py``;
the others (``ml``, ``trees``, ``text``, ...) are ONNX-only families. May import ``importer.table``,
``importer.graph``, ``importer.minifloat``, sibling families and the layers below ``onnx``.
"""

from bpcli.onnx.importer.ops import (  # noqa: F401  (importing fills IMPORTERS)
    attention,
    control,
    detect,
    elementwise,
    grid,
    image,
    index,
    maps,
    ml,
    nn,
    norm,
    quant,
    reduce,
    resize,
    rnn,
    sequence_models,
    shape,
    signal,
    spatial,
    svm,
    text,
    training,
    trees,
)
