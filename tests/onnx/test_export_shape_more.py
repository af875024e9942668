"""The emitters of exporter/ops/shape_more.py: each op in a tiny model, exported at several
opsets and run by onnxruntime against bpcli (at a second batch size where the op allows it)."""

from __future__ import annotations

import pytest

from bpcli import functional as F
from bpcli.errors import BpcliError
from tests.onnx.export_helpers import OPSETS, Fn, check_export, randn

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.ort

# name -> (fn of (module, x) for x of shape (2, 3, 4), whether the batch may vary)
FUNCS = {
    "flip": (lambda m, x: F.flip(x, (0, 2)) + F.flip(x, -1), True),
    "roll": (lambda m, x: F.roll(x, (1, -5), (2, 1)) + F.roll(x, 3, 0), True),
    "roll_flat": (lambda m, x: F.roll(x, 7), True),
    "tril": (lambda m, x: F.tril(x) + F.tril(x, -1) * 2 + F.tril(x, 2), True),
    "triu": (lambda m, x: F.triu(x, 1) + F.triu(x, -2) * 3, True),
    "diagonal": (lambda m, x: F.diagonal(x, 0, 1, 2) + F.diagonal(x, 1, 2, 1)[..., :1]
                 + F.diagonal(x, -1, -1, -2).sum(), True),  # fmt: skip
    "diagonal_batch": (lambda m, x: F.diagonal(x, 1, 0, 2), False),
    "diag_embed": (lambda m, x: F.diag_embed(x), True),
    "diag_embed_dims": (lambda m, x: F.diag_embed(x, 1, 1, 3), True),
    "diag_embed_offset": (lambda m, x: F.diag_embed(x, -2, 0, 2), True),
    "unfold": (lambda m, x: x.unfold(2, 2, 1) * 2 + x.unfold(1, 2, 2).sum(), True),
    "unfold_last": (lambda m, x: x.unfold(-1, 3, 1), True),
    "unfold_batch": (lambda m, x: x.unfold(0, 1, 1), False),
}  # fmt: skip


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_function(name, opset, tmp_path):
    fn, dynamic = FUNCS[name]
    check_export(Fn(fn), randn(2, 3, 4), tmp_path, opset, grow=dynamic,
                 dynamic_batch=dynamic)  # fmt: skip


@pytest.mark.parametrize("name", ["diagonal_batch", "unfold_batch"])
def test_a_gather_along_the_batch_is_refused_in_one_line(name, tmp_path):
    with pytest.raises(BpcliError, match="follows the batch size"):
        check_export(Fn(FUNCS[name][0]), randn(2, 3, 4), tmp_path, OPSETS[-1])
