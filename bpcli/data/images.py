"""Image folders ``root/<class>/*.png|jpg|...`` decoded with Pillow (the ``image`` extra).

Samples are float32, channels first ``(n, C, H, W)``, scaled to [0, 1] (value / 255); classes
are the subfolders' names in sorted order, files are read in sorted name order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpcli.data.dataset import Dataset
from bpcli.data.sources import IMAGE_SUFFIXES
from bpcli.errors import BpcliError

MODES = {1: "L", 3: "RGB"}


def _pillow():
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise BpcliError("reading images needs Pillow: pip install 'bpcli[image]'",
                         "image_folder") from None  # fmt: skip
    return Image, UnidentifiedImageError


def _size(size, where: str) -> tuple[int, int] | None:
    if size is None:
        return None
    if (not isinstance(size, list | tuple) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise BpcliError(f"options.size must be [height, width] in pixels, got {size!r}", where)
    return int(size[0]), int(size[1])


def read_image(path: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as ``(channels, H, W)`` float32 in [0, 1] (resized to ``size``)."""
    image, unidentified = _pillow()
    try:
        with image.open(path) as im:
            im = im.convert(MODES[channels])
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except (unidentified, OSError, ValueError) as e:
        raise BpcliError(f"Pillow cannot read this image ({e})", str(path)) from None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(root: str | Path, size: list[int] | None = None, channels: int = 3,
                      name: str | None = None) -> Dataset:  # fmt: skip
    """A folder with one subfolder of images per class as a classification dataset.

    Args:
        root: the folder; ``root/<class name>/*.png`` (jpg, bmp, gif, tiff, webp too).
        size: ``[height, width]`` every image is resized to; default the first image's size
            (then all images must have it).
        channels: 1 (grayscale) or 3 (RGB); images are converted to it.
    """
    root = Path(root)
    where = str(root)
    if not root.is_dir():
        raise BpcliError("no such folder" if not root.exists() else "expected a folder", where)
    if channels not in MODES:
        raise BpcliError(f"options.channels must be 1 (grayscale) or 3 (RGB), got {channels!r}",
                         where)  # fmt: skip
    want = _size(size, where)
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not dirs:
        raise BpcliError("no class subfolders (root/<class>/*.png): nothing to load", where)
    per_class = [image_files(d) for d in dirs]
    for d, files in zip(dirs, per_class, strict=True):
        if not files:
            raise BpcliError(f"class folder holds no images ({', '.join(IMAGE_SUFFIXES)})",
                             str(d))  # fmt: skip
    samples = []
    for f in (f for files in per_class for f in files):
        a = read_image(f, channels, want)
        if want is None:
            want = (a.shape[1], a.shape[2])
        elif a.shape[1:] != want:
            raise BpcliError(f"is {a.shape[1]}x{a.shape[2]} pixels but the first image is "
                             f"{want[0]}x{want[1]}; set options.size = [H, W] to resize all",
                             str(f))  # fmt: skip
        samples.append(a)
    x = np.stack(samples)
    y = np.repeat(np.arange(len(dirs)), [len(f) for f in per_class])
    classes = tuple(d.name for d in dirs)
    meta = {"source": where, "size": list(want), "channels": channels}
    return Dataset(x, y, "classification", name or root.name, len(dirs), classes, meta)
