"""Whether ops record the graph: ``no_grad`` switches it off for a block or a function."""

from __future__ import annotations

import functools

enabled = True


class no_grad:
    """Inside this block (or decorated function) ops record no graph and save nothing."""

    def __enter__(self):
        global enabled
        self._prev = enabled
        enabled = False
        return self

    def __exit__(self, *exc):
        global enabled
        enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


class enable_grad(no_grad):
    """Turn graph recording back on inside a ``no_grad`` block."""

    def __enter__(self):
        global enabled
        self._prev = enabled
        enabled = True
        return self


def is_grad_enabled() -> bool:
    return enabled
