"""ONNX emitters by engine op family: ``<family>.py`` writes the ops of
``bpcli/engine/ops/<family>.py``. ``elementwise`` holds the ``EMITTERS`` table the others fill.

May import ``exporter.context`` and the layers below ``onnx``.
"""

from bpcli.onnx.exporter.ops import (  # noqa: F401  (importing fills EMITTERS)
    clamp,
    elementwise,
    linalg,
    math,
    nn,
    order,
    reduce_more,
    select,
    setitem,
    rnn,
    scan_more,
    scatter_more,
    shape,
    shape_more,
    spatial,
)
