"""dtype names as torch spells them (numpy dtypes, so ``t.dtype == bp.float32``), the one
device there is (``bp.device("cpu")``), and the parsing of dtype/device arguments."""

from __future__ import annotations

import builtins

import numpy as np

from bpcli.errors import BpcliError

# NOTE: these names shadow the builtins float/int/bool below; use builtins.int etc. here.
float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)  # noqa: A001 - torch's name
float64 = double = np.dtype(np.float64)
complex64 = cfloat = np.dtype(np.complex64)
complex128 = cdouble = np.dtype(np.complex128)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)  # noqa: A001 - torch's name
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001 - torch's name

DTYPE_NAMES = (
    "float16", "half", "float32", "float", "float64", "double", "complex64", "cfloat",
    "complex128", "cdouble", "uint8", "int8", "int16", "short", "int32", "int", "int64", "long",
    "bool",
)  # fmt: skip


class device:  # noqa: N801 - torch's name
    """``bp.device("cpu")``: bpcli computes on the CPU only, so that is the one device."""

    __slots__ = ("index", "type")

    def __init__(self, type: str = "cpu", index: int | None = None):  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index  # noqa: A001
        kind, _, idx = str(type).partition(":")
        if kind != "cpu":
            raise BpcliError(f"device {type!r} is not available: bpcli runs on the CPU", "device")
        self.type = "cpu"
        self.index = builtins.int(idx) if idx else index

    def __eq__(self, other) -> builtins.bool:
        if isinstance(other, str):
            other = device(other) if other.partition(":")[0] == "cpu" else None
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        idx = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{idx})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def as_dtype(dtype, where: str) -> np.dtype:
    """A numpy dtype from ``bp.float32``, ``np.float32``, ``"float32"`` or a Python type."""
    if isinstance(dtype, str) and dtype in DTYPE_NAMES:
        return globals()[dtype]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise BpcliError(f"{dtype!r} is not a dtype", where) from None


def is_device(arg) -> builtins.bool:
    """Whether ``.to(arg)`` names a device (a device or a device string) rather than a dtype."""
    kinds = ("cpu", "cuda", "mps", "xpu", "meta")
    return isinstance(arg, device) or (isinstance(arg, str) and arg.partition(":")[0] in kinds)
