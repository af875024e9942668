"""The autodiff engine: Tensor, the op table, the backward walk, gradient checks."""
