"""Runs that study a model rather than train it: model-level gradient checks (``gradcheck``),
learning-rate x initialiser sweeps (``sweep``), the learning-rate range test (``lr_find``),
the labelled corpus gradient diagnostics are calibrated on (``diag_corpus``) and the trial of
their suggested fixes (``try_fix``).

May import ``app.training`` and everything it may import.
"""
