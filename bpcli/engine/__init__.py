"""The autodiff engine: Tensor, the op table, the backward walk, gradient checks."""

from bpcli.engine.memory import tune_allocator

tune_allocator()
