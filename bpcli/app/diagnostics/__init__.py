"""Gradient diagnostics: what training attaches (``collect``), the preallocated record
of check points (``record``), the flag rules (``rules``) and the report read back from a
run (``report``).

May import ``app.store`` and the layers below ``app``; training imports it, never the reverse.
"""
