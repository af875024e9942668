"""ImageDecoder: bytes of PNG/JPEG/BMP to (H, W, C) uint8 in RGB, BGR or grayscale, an empty
tensor for bytes that are no image, and a one-line refusal without Pillow."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

from bpcli.errors import BpcliError
from bpcli.onnx.importer.load import load

PIL_Image = pytest.importorskip("PIL.Image")


def _model(fmt: str):
    node = helper.make_node("ImageDecoder", ["data"], ["img"], pixel_format=fmt)
    data = helper.make_tensor_value_info("data", TensorProto.UINT8, [None])
    img = helper.make_tensor_value_info("img", TensorProto.UINT8, [None, None, None])
    g = helper.make_graph([node], "g", [data], [img])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])


def _encoded(image: np.ndarray, fmt: str) -> np.ndarray:
    with io.BytesIO() as f:
        PIL_Image.fromarray(image).save(f, format=fmt)
        return np.frombuffer(f.getvalue(), np.uint8)


IMAGE = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])  # lossless: the pixels come back
def test_lossless_formats_decode_to_the_pixels(fmt):
    data = _encoded(IMAGE, fmt)
    np.testing.assert_array_equal(load(_model("RGB"))(data).data, IMAGE)
    np.testing.assert_array_equal(load(_model("BGR"))(data).data, IMAGE[:, :, ::-1])
    gray = load(_model("Grayscale"))(data).data
    want = np.asarray(PIL_Image.fromarray(IMAGE).convert("L"))[:, :, None]
    assert gray.shape == (6, 7, 1) and (gray == want).all()


def test_bytes_that_are_no_image_give_an_empty_tensor():
    out = load(_model("RGB"))(np.frombuffer(b"not an image", np.uint8)).data
    assert out.shape == (0, 0, 3) and out.dtype == np.uint8


def test_without_pillow_the_node_is_refused_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(BpcliError, match=r"ImageDecoder needs Pillow \(pip install pillow\)"):
        load(_model("RGB"))


def test_an_unknown_pixel_format_is_refused():
    with pytest.raises(BpcliError, match="pixel_format='CMYK'"):
        load(_model("CMYK"), check=False)
