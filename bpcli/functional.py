"""The functional API (``import bpcli.functional as F``): every op as a function.

Neural-net functions follow PyTorch's names, argument order and defaults; array functions
follow numpy's (``axis=``, ``keepdims=``; PyTorch's ``dim=``/``keepdim=`` are accepted too).
"""

from bpcli.engine.ops.activation import *  # noqa: F403
from bpcli.engine.ops.activation_more import *  # noqa: F403
from bpcli.engine.ops.conv import *  # noqa: F403
from bpcli.engine.ops.einsum import *  # noqa: F403
from bpcli.engine.ops.elementwise import *  # noqa: F403
from bpcli.engine.ops.embedding_bag import *  # noqa: F403
from bpcli.engine.ops.conv3d import *  # noqa: F403
from bpcli.engine.ops.elementwise import *  # noqa: F403
from bpcli.engine.ops.fold import *  # noqa: F403
from bpcli.engine.ops.grid import *  # noqa: F403
from bpcli.engine.ops.index import *  # noqa: F403
from bpcli.engine.ops.linalg import *  # noqa: F403
from bpcli.engine.ops.logic import *  # noqa: F403
from bpcli.engine.ops.linalg_more import *  # noqa: F403
from bpcli.engine.ops.linalg_norm import *  # noqa: F403
from bpcli.engine.ops.loss import *  # noqa: F403
from bpcli.engine.ops.loss_more import *  # noqa: F403
from bpcli.engine.ops.math import *  # noqa: F403
from bpcli.engine.ops.math_binary import *  # noqa: F403
from bpcli.engine.ops.nn import *  # noqa: F403
from bpcli.engine.ops.norm import *  # noqa: F403
from bpcli.engine.ops.order import *  # noqa: F403
from bpcli.engine.ops.pool import *  # noqa: F403
from bpcli.engine.ops.pool3d import *  # noqa: F403
from bpcli.engine.ops.quant import *  # noqa: F403
from bpcli.engine.ops.reduce import *  # noqa: F403
from bpcli.engine.ops.reduce_more import *  # noqa: F403
from bpcli.engine.ops.resample import *  # noqa: F403
from bpcli.engine.ops.rnn import *  # noqa: F403
from bpcli.engine.ops.rnn_seq import *  # noqa: F403
from bpcli.engine.ops.scan import *  # noqa: F403
from bpcli.engine.ops.scan_more import *  # noqa: F403
from bpcli.engine.ops.scatter import *  # noqa: F403
from bpcli.engine.ops.scatter_more import *  # noqa: F403
from bpcli.engine.ops.select import *  # noqa: F403
from bpcli.engine.ops.shape import *  # noqa: F403
from bpcli.engine.ops.sort import *  # noqa: F403
from bpcli.engine.ops.shape_more import *  # noqa: F403
from bpcli.engine.ops.clamp import *  # noqa: F403

# isort: off
# Binds the functions above as Tensor methods; needs them all defined first.
import sys as _sys

from bpcli.engine import methods as _methods

_MISSING = _methods.bind(_sys.modules[__name__])  # method names no function above defines
import bpcli.engine.methods  # noqa: F401
import bpcli.engine.tensor_more  # noqa: F401
import bpcli.engine.inplace as _inplace  # noqa: E402

_inplace.bind(_sys.modules[__name__])
# isort: on
