"""What a run leaves on disk: run folders (``runs``) and checkpoints (``checkpoint``).

May import ``app.spec`` and the layers below ``app``.
"""
