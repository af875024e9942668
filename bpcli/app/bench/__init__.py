"""``bpcli bench``: the timed workloads (``runner``), the ones built from the shipped specs
(``models``), and what diagnostics cost (``diagnostics``).

May import ``app.training`` and everything it may import.
"""
