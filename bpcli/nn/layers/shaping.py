"""Unflatten, PixelShuffle, PixelUnshuffle, Upsample: layers that only rearrange or resample.

PixelShuffle/PixelUnshuffle/Upsample call ``F.pixel_shuffle``/``F.pixel_unshuffle``/
``F.interpolate``, the functional forms (torch's names and arguments), so the layer adds
nothing but its options; a build without them says so in one line.
"""

from __future__ import annotations

import math

from bpcli import functional as F
from bpcli.errors import BpcliError
from bpcli.nn.module import Module


def _functional(name: str, layer: str):
    fn = getattr(F, name, None)
    if fn is None:
        raise BpcliError(f"needs bpcli.functional.{name}, which this build lacks", layer)
    return fn


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size`` (one entry may be -1), as torch."""

    example_config = {"dim": 1, "unflattened_size": (2, 3)}  # for `bpcli plugins check`
    example_input_shape = (2, 6)

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if not isinstance(dim, int):
            raise BpcliError(f"dim must be an int, got {type(dim).__name__}", "Unflatten")
        size = tuple(unflattened_size)
        if not size or not all(isinstance(s, int) for s in size) or size.count(-1) > 1:
            raise BpcliError(
                f"unflattened_size must be ints with at most one -1, got {unflattened_size!r}",
                "Unflatten",
            )
        self.dim, self.unflattened_size = dim, size

    def forward(self, x):
        d = self.dim + x.ndim if self.dim < 0 else self.dim
        if not 0 <= d < x.ndim:
            raise BpcliError(f"dim {self.dim} is out of range for shape {x.shape}", "Unflatten")
        known = math.prod(s for s in self.unflattened_size if s != -1)
        n = x.shape[d]
        if (-1 in self.unflattened_size and (known == 0 or n % known)) or (
                -1 not in self.unflattened_size and known != n):  # fmt: skip
            raise BpcliError(
                f"cannot split dim {self.dim} of size {n} into {self.unflattened_size}",
                "Unflatten",
            )
        return F.reshape(x, (*x.shape[:d], *self.unflattened_size, *x.shape[d + 1 :]))

    def get_config(self) -> dict:
        return {"dim": self.dim, "unflattened_size": list(self.unflattened_size)}


class PixelShuffle(Module):
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r), r = ``upscale_factor``."""

    example_config = {"upscale_factor": 2}  # for `bpcli plugins check`
    example_input_shape = (1, 8, 2, 3)

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x):
        return _functional("pixel_shuffle", "PixelShuffle")(x, self.upscale_factor)


class PixelUnshuffle(Module):
    """(N, C, H*r, W*r) -> (N, C*r*r, H, W), r = ``downscale_factor``."""

    example_config = {"downscale_factor": 2}  # for `bpcli plugins check`
    example_input_shape = (1, 2, 4, 6)

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x):
        return _functional("pixel_unshuffle", "PixelUnshuffle")(x, self.downscale_factor)


class Upsample(Module):
    """Resizes to ``size`` or by ``scale_factor`` with ``mode`` (torch's arguments)."""

    # what `bpcli plugins check` builds and gradient-checks it with
    example_config = {"scale_factor": 2, "mode": "bilinear"}
    example_input_shape = (1, 2, 3, 3)

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None):  # fmt: skip
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise BpcliError("give exactly one of size and scale_factor", "Upsample")
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        kw = {"size": self.size, "scale_factor": self.scale_factor, "mode": self.mode,
              "align_corners": self.align_corners}  # fmt: skip
        if self.recompute_scale_factor is not None:
            kw["recompute_scale_factor"] = self.recompute_scale_factor
        return _functional("interpolate", "Upsample")(x, **kw)


LAYERS = {
    "unflatten": Unflatten,
    "pixel_shuffle": PixelShuffle,
    "pixel_unshuffle": PixelUnshuffle,
    "upsample": Upsample,
}
