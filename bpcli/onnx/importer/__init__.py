"""ONNX import: a ModelProto becomes a differentiable Module (``load``).

``graph`` reads and runs the nodes, ``table`` is the (domain, op_type) -> function table and the
context those functions receive, ``ops/`` holds one module per op family, ``upcast`` and
``minifloat`` handle floats narrower than float32. May import ``nn``, ``engine`` and below, never
``onnx.exporter``.
"""
