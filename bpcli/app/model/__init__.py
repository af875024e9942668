"""The parts of a run built from a spec: data splits, model, loss, optimizer, schedule
(``build``), and the ONNX side of the command line (``onnx_files``).

May import ``app.spec``, ``app.store`` and the layers below ``app`` (``onnx``, ``nn``,
``data``, ...).
"""
