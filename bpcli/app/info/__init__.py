"""What the installed code and a model consist of: model summary (``summary``), the op table
(``ops_table``), what plugins register (``plugins``) and the check of each plugin part
(``plugin_check``).

The top of ``app``: may import every other ``app`` package.
"""
