"""Import of ImageDecoder: encoded image bytes (BMP, JPEG, JPEG 2000, TIFF, PNG, WebP, PNM) to
an (H, W, C) uint8 tensor in RGB, BGR or grayscale.

Decoding is Pillow's (an optional dependency: a graph without ImageDecoder never needs it); its
libjpeg-turbo upsamples chroma "smoothly", the method the spec names. Bytes that do not decode
give an empty tensor, as the spec says. No gradient: the input is bytes.
"""

from __future__ import annotations

import io

import numpy as np

from bpcli.onnx.importer.table import NodeView, register, wrap

_FORMATS = ("RGB", "BGR", "Grayscale")


def _check(node: NodeView) -> str | None:
    fmt = node.attr("pixel_format", "RGB")
    if fmt not in _FORMATS:
        return f"pixel_format={fmt!r} is not one of {', '.join(_FORMATS)}"
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return "ImageDecoder needs Pillow (pip install pillow)"
    return None


@register("ImageDecoder", since=20, check=_check)
def image_decoder(ctx, node: NodeView, inputs):
    import PIL.Image

    data = np.asarray(inputs[0].data)
    if data.dtype != np.uint8 or data.ndim != 1:
        raise node.fail(f"encoded_stream must be 1-D uint8 bytes, got {data.shape} {data.dtype}")
    fmt = node.attr("pixel_format", "RGB")
    try:
        with PIL.Image.open(io.BytesIO(data.tobytes())) as im:
            im = im.convert("L" if fmt == "Grayscale" else "RGB")
            out = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError):  # not an image Pillow can read
        return wrap(np.zeros((0, 0, 1 if fmt == "Grayscale" else 3), np.uint8))
    if fmt == "Grayscale":
        return wrap(out[:, :, None].copy())
    return wrap(np.ascontiguousarray(out[:, :, ::-1] if fmt == "BGR" else out))
