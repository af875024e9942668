"""Runs that study a model rather than train it: model-level gradient checks (``gradcheck``),
learning-rate x initialiser sweeps (``sweep``), the learning-rate range test (``lr_find``).

May import ``app.training`` and everything it may import.
"""
