"""ONNX export: one forward pass traced on the tape (``trace``), each recorded op written as
ONNX nodes (``export``) through the graph under construction (``context``), the result checked in
onnxruntime (``verify``). ``ops/`` holds the emitters, one module per engine op family.

May import ``nn``, ``engine`` and below, never ``onnx.importer``.
"""
