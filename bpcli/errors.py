"""User-facing errors: one line that names where the problem is."""

from __future__ import annotations


class BpcliError(ValueError):
    """A mistake in the user's input, reported as ``<where>: <msg>`` without a traceback.

    Args:
        msg: what is wrong and, where it helps, how to fix it.
        where: the op, file, field, node or option at fault.
    """

    def __init__(self, msg: str, where: str | None = None):
        self.where = where
        self.msg = msg
        super().__init__(f"{where}: {msg}" if where else msg)
