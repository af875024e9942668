"""The training loop (``loop``), the state an exact resume needs (``state``), evaluation and
prediction from a checkpoint (``evaluate``).

May import ``app.spec``, ``app.store``, ``app.model``, ``app.diagnostics``.
"""
