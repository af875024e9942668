"""bpcli: train neural networks with a backpropagation engine of its own.

The public API (``bp.tensor``, ``bp.Tensor``, ``bp.no_grad``, ``bp.functional``, ...) loads on
first use, so ``import bpcli.cli`` (and ``bpcli --help``) pulls in neither numpy nor Numba.

``__all__`` is the public surface (tests/test_public_api.py holds it to this list):
tensors ``Tensor``, ``tensor``, ``zeros``, ``ones``, ``zeros_like``, ``ones_like``, ``full``,
``arange``, ``rand``, ``randn``, ``concat``, ``stack``, ``where``; autograd ``no_grad``,
``enable_grad``, ``is_grad_enabled``, ``gradcheck``; ``manual_seed``, ``set_num_threads``,
``get_num_threads``; the op table ``OPS``; the error ``BpcliError``; the modules
``functional`` (also ``F``), ``nn``, ``optim``, ``data``, ``onnx``; ``__version__``.
Everything else is private: by name (``_x``) or by module (``bpcli.app``, ``bpcli.cli``, the
engine's internals), and may change without notice.

 PyTorch's top-level functions and names, as ``torch.<name>`` (issue 11): ``Generator``,
``acos``, ``acosh``, ``addmm``, ``addmv``, ``allclose``, ``any``, ``arccos``, ``arccosh``,
``arcsin``, ``arcsinh``, ``arctan``, ``arctan2``, ``arctanh``, ``argsort``, ``as_tensor``,
``asin``, ``asinh``, ``atan``, ``atan2``, ``atanh``, ``baddbmm``, ``bernoulli``, ``bilinear``,
``bitwise_and``, ``bitwise_left_shift``, ``bitwise_not``, ``bitwise_or``,
``bitwise_right_shift``, ``bitwise_xor``, ``bmm``, ``bool``, ``broadcast_tensors``,
``broadcast_to``, ``bucketize``, ``cdouble``, ``ceil``, ``cfloat``, ``clamp``, ``clip``,
``complex128``, ``complex64``, ``conv3d``, ``conv_transpose1d``, ``conv_transpose3d``,
``copysign``, ``cosh``, ``cosine_similarity``, ``count_nonzero``, ``cross``, ``cummax``,
``cummin``, ``device``, ``diag``, ``diag_embed``, ``diagonal``, ``divide``, ``dot``, ``double``,
``einsum``, ``embedding_bag``, ``empty``, ``empty_like``, ``exp2``, ``expm1``, ``eye``, ``fix``,
``flip``, ``fliplr``, ``flipud``, ``float``, ``float16``, ``float32``, ``float64``, ``floor``,
``floor_divide``, ``fmod``, ``frac``, ``from_numpy``, ``full_like``, ``get_default_dtype``,
``half``, ``hypot``, ``index_put``, ``int16``, ``int32``, ``int64``, ``int8``, ``is_tensor``,
``isclose``, ``isfinite``, ``isinf``, ``isnan``, ``kthvalue``, ``lerp``, ``linalg``,
``linspace``, ``log10``, ``log1p``, ``log2``, ``logaddexp``, ``logcumsumexp``, ``logical_and``,
``logical_not``, ``logical_or``, ``logical_xor``, ``logspace``, ``long``, ``masked_fill``,
``masked_scatter``, ``masked_select``, ``matmul``, ``max_pool1d_with_indices``, ``max_pool3d``,
``median``, ``meshgrid``, ``mm``, ``mode``, ``moveaxis``, ``movedim``, ``msort``,
``multinomial``, ``mv``, ``nanmean``, ``nansum``, ``narrow``, ``nonzero``, ``normal``,
``outer``, ``pairwise_distance``, ``pixel_shuffle``, ``pixel_unshuffle``, ``prelu``, ``prod``,
``rand_like``, ``randint``, ``randint_like``, ``randn_like``, ``randperm``, ``reciprocal``,
``remainder``, ``roll``, ``rot90``, ``round``, ``save``, ``scatter``, ``scatter_add``,
``scatter_reduce``, ``searchsorted``, ``set_default_dtype``, ``short``, ``sign``, ``sinh``,
``sort``, ``square``, ``std``, ``std_mean``, ``take``, ``take_along_dim``, ``tan``, ``tril``,
``triu``, ``trunc``, ``uint8``, ``unflatten``, ``var_mean``, ``vdot``.
Also as ``torch.<name>``: ``abs``, ``add``, ``amax``, ``amin``, ``argmax``, ``argmin``,
``avg_pool1d``, ``batch_norm``, ``binary_cross_entropy_with_logits``, ``celu``, ``chunk``,
``clone``, ``conv1d``, ``conv2d``, ``conv_transpose2d``, ``cos``, ``cosine_embedding_loss``,
``cumprod``, ``cumsum``, ``div``, ``dropout``, ``embedding``, ``eq``, ``erf``, ``exp``,
``flatten``, ``gather``, ``ge``, ``group_norm``, ``gru_cell``, ``gt``, ``hinge_embedding_loss``,
``index_add``, ``index_select``, ``kl_div``, ``layer_norm``, ``le``, ``log``, ``log_softmax``,
``logsumexp``, ``lstm_cell``, ``lt``, ``margin_ranking_loss``, ``max``, ``max_pool1d``,
``max_pool2d``, ``maximum``, ``mean``, ``min``, ``minimum``, ``mul``, ``ne``, ``neg``, ``norm``,
``permute``, ``pow``, ``relu``, ``repeat_interleave``, ``reshape``, ``rsqrt``, ``selu``,
``sigmoid``, ``sin``, ``softmax``, ``split``, ``sqrt``, ``squeeze``, ``sub``, ``sum``,
``swapaxes``, ``swapdims``, ``t``, ``tanh``, ``tile``, ``topk``, ``transpose``,
``triplet_margin_loss``, ``unsqueeze``, ``var``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY = {
    "Tensor": ("bpcli.engine.tensor", "Tensor"),
    "tensor": ("bpcli.engine.api", "tensor"),
    "no_grad": ("bpcli.engine.grad_mode", "no_grad"),
    "enable_grad": ("bpcli.engine.grad_mode", "enable_grad"),
    "is_grad_enabled": ("bpcli.engine.grad_mode", "is_grad_enabled"),
    "set_num_threads": ("bpcli.engine.threads", "set_num_threads"),
    "get_num_threads": ("bpcli.engine.threads", "get_num_threads"),
    "BpcliError": ("bpcli.errors", "BpcliError"),
    "OPS": ("bpcli.engine.api", "OPS"),
    "functional": ("bpcli.functional", None),
    "F": ("bpcli.functional", None),
    "gradcheck": ("bpcli.engine.gradcheck", "gradcheck"),
    "nn": ("bpcli.nn", None),
    "optim": ("bpcli.optim", None),
    "data": ("bpcli.data", None),
    "onnx": ("bpcli.onnx", None),
    "linalg": ("bpcli.linalg", None),
    "save": ("bpcli.serialization", "save"),
    "load": ("bpcli.serialization", "load"),
}
for _name in ("concat", "stack", "zeros", "ones", "zeros_like", "ones_like",
              "randn", "rand", "arange", "full", "manual_seed"):  # fmt: skip
    _LAZY[_name] = ("bpcli.engine.api", _name)
for _name in ("set_default_dtype", "get_default_dtype"):
    _LAZY[_name] = ("bpcli.engine.api", _name)
for _name in ("where", "std", "std_mean", "var_mean", "prod", "any", "all", "count_nonzero", "nansum",
              "nanmean", "cummax", "cummin", "logcumsumexp", "sort", "argsort", "msort",
              "kthvalue", "median", "mode", "nonzero", "masked_select", "take", "take_along_dim",
              "bucketize", "searchsorted", "masked_fill", "masked_scatter", "scatter",
              "scatter_add", "scatter_reduce", "index_put"):  # fmt: skip
    _LAZY[_name] = ("bpcli.functional", _name)
# torch.<name> of the maths, predicates and bitwise ops of issue 11 (bpcli.functional)
for _name in ("tan", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh",
              "asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "log2", "log10",
              "log1p", "expm1", "exp2", "reciprocal", "square", "sign", "floor", "ceil", "round",
              "trunc", "fix", "frac", "atan2", "arctan2", "copysign", "logaddexp", "hypot",
              "fmod", "remainder", "divide", "floor_divide", "lerp", "isnan", "isinf",
              "isfinite", "isclose", "allclose", "logical_and", "logical_or", "logical_xor",
              "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
              "bitwise_left_shift", "bitwise_right_shift", "cosine_similarity",
              "pairwise_distance", "prelu"):  # fmt: skip
    _LAZY[_name] = ("bpcli.functional", _name)
for _name in ("einsum", "matmul", "mm", "bmm", "mv", "dot", "vdot", "outer", "addmm", "addmv",
              "baddbmm", "cross", "embedding_bag", "bilinear"):  # fmt: skip
    _LAZY[_name] = ("bpcli.functional", _name)
# torch's dtype names, device, creation and shape functions (issue 11, part 4)
for _name in ("float16", "half", "float32", "float", "float64", "double", "complex64", "cfloat",
              "complex128", "cdouble", "uint8", "int8", "int16", "short", "int32", "int",
              "int64", "long", "bool", "device"):  # fmt: skip
    _LAZY[_name] = ("bpcli.engine.dtype_names", _name)
for _name in ("Generator", "as_tensor", "bernoulli", "cat", "empty", "empty_like", "eye",
              "from_numpy", "full_like", "is_tensor", "linspace", "logspace", "multinomial",
              "normal", "rand_like", "randint", "randint_like", "randn_like", "randperm"):  # fmt: skip
    _LAZY[_name] = ("bpcli.engine.creation", _name)
for _name in ("flip", "fliplr", "flipud", "roll", "rot90", "unflatten", "narrow", "movedim",
              "moveaxis", "diag", "diagonal", "diag_embed", "tril", "triu", "meshgrid",
              "broadcast_to", "broadcast_tensors", "clamp", "clip"):  # fmt: skip
    _LAZY[_name] = ("bpcli.functional", _name)
for _name in ("conv3d", "conv_transpose1d", "conv_transpose3d", "max_pool3d",
              "max_pool1d_with_indices", "pixel_shuffle", "pixel_unshuffle"):  # fmt: skip
    _LAZY[_name] = ("bpcli.functional", _name)

# torch.<name> for the remaining functions of bpcli.functional that torch has at top level
for _name in ("abs", "add", "amax", "amin", "argmax", "argmin", "avg_pool1d", "batch_norm",
"binary_cross_entropy_with_logits", "celu", "chunk", "clone", "conv1d", "conv2d",
"conv_transpose2d", "cos", "cosine_embedding_loss", "cumprod", "cumsum", "div", "dropout",
"embedding", "eq", "erf", "exp", "flatten", "gather", "ge", "group_norm", "gru_cell",
"gt", "hinge_embedding_loss", "index_add", "index_select", "kl_div", "layer_norm", "le",
"log", "log_softmax", "logsumexp", "lstm_cell", "lt", "margin_ranking_loss", "max",
"max_pool1d", "max_pool2d", "maximum", "mean", "min", "minimum", "mul", "ne", "neg",
"norm", "permute", "pow", "relu", "repeat_interleave", "reshape", "rsqrt", "selu",
"sigmoid", "sin", "softmax", "split", "sqrt", "squeeze", "sub", "sum", "swapaxes",
"swapdims", "t", "tanh", "tile", "topk", "transpose", "triplet_margin_loss", "unsqueeze",
"var"):  # fmt: skip
    _LAZY[_name] = ("bpcli.functional", _name)

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'bpcli' has no attribute {name!r}") from None
    # NOTE: the Tensor methods and operators are bound when bpcli.functional loads; any public
    # name loads it first, so ``bp.zeros(3) + 1`` works without importing bpcli.functional.
    importlib.import_module("bpcli.functional")
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
