"""The public surface of ``import bpcli``: exactly the documented ``__all__``, each name
resolving; everything else is private by name (``_x``) or by module."""

import bpcli

PUBLIC = {
    "__version__", "Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
    "set_num_threads", "get_num_threads", "BpcliError", "OPS", "functional", "F", "gradcheck",
    "nn", "optim", "data", "onnx", "concat", "stack", "where", "zeros", "ones", "zeros_like",
    "ones_like", "randn", "rand", "arange", "full", "manual_seed",
}  # fmt: skip


def test_all_is_the_documented_surface():
    # A name added to bpcli/__init__.py's _LAZY must be added here and to the package docstring.
    assert set(bpcli.__all__) >= PUBLIC
    extra = set(bpcli.__all__) - PUBLIC
    assert not extra or all(n in (bpcli.__doc__ or "") for n in extra), extra


def test_every_public_name_resolves():
    for name in bpcli.__all__:
        assert getattr(bpcli, name) is not None, name
    assert dir(bpcli) == sorted(bpcli.__all__)


def test_every_tensor_method_name_has_its_function():
    import bpcli.functional as F

    assert F._MISSING == [], f"METHOD_NAMES without a function in bpcli.functional: {F._MISSING}"


def test_operators_work_without_importing_functional():
    """``import bpcli as bp`` alone: tensors from bp.* have their operators and methods."""
    import subprocess
    import sys

    code = "import bpcli as bp; x = bp.zeros(2, 3); x[0, 1] = 5; print((x + 1).sum().item())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "11.0"
