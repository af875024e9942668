"""Model specs: the TOML schema and its resolution (``schema``), the TOML writer, the starter
template.

The lowest part of ``app``: imports ``bpcli.plugins`` (to check registered names) and
``bpcli.errors``, no other ``app`` package.
"""
