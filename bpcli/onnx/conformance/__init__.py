"""The ONNX project's own backend test suite run through bpcli: the backend interface
(``backend``) and the runner with its expected-failure list (``suite``, ``xfail.txt``).

May import ``onnx.importer``; nothing in bpcli imports it.
"""
