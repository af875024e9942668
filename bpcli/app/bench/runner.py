"""Training-step benchmarks: bpcli and PyTorch timed side by side in one process.

Workloads: ``mlp`` and ``cnn`` are one full training step (forward, loss, backward,
SGD-with-momentum update) on random data; ``mlp-digits-epoch`` (one epoch), ``lstm`` and
``transformer`` (one truncated-BPTT step) are built from the shipped specs through the library,
with their optimizer, clipping and schedule (see ``models``). Timings alternate between
the two engines block by block so that machine noise hits both alike; the result is the median
per engine and the ratio bpcli / PyTorch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from bpcli.errors import BpcliError


@dataclass
class BenchResult:
    workload: str
    bpcli_ms: float  # median of one training step (one epoch for *-epoch workloads)
    torch_ms: float | None
    ratio: float | None  # bpcli / torch; below 1 means bpcli is faster
    bpcli_forward_ms: float  # median of forward + loss alone
    backward_over_forward: float  # (step - forward) / forward: backward + update cost
    gflops: float  # model FLOPs of one step (3x forward) per second, bpcli

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StartupResult:
    cold_s: float  # import + first MLP step, empty Numba cache
    warm_s: float  # the same with the cache filled by the cold run
    import_s: float  # ``import bpcli`` alone (warm)


def _median_ms(times: list[float]) -> float:
    return float(np.median(times) * 1e3)


def _sgd_momentum(params, bufs, lr: float = 0.01, momentum: float = 0.9) -> None:
    # torch.optim.SGD's update: buf = momentum * buf + g; p -= lr * buf
    for p, buf in zip(params, bufs):
        buf *= momentum
        buf += p.grad
        p.data -= lr * buf
        p.grad = None


def _params(shapes, rng) -> list:
    """Weights and biases drawn as PyTorch's default init does: U(+-1/sqrt(fan_in))."""
    import bpcli as bp

    params = []
    for wshape, bshape in shapes:
        bound = 1 / np.sqrt(int(np.prod(wshape[1:])))
        for shape in (wshape, bshape):
            params.append(bp.tensor(rng.uniform(-bound, bound, shape).astype(np.float32), True))
    return params


def _bpcli_step(params, forward):
    """One training step: forward + loss, backward, SGD with momentum (as torch.optim.SGD)."""
    import bpcli as bp

    bufs = [np.zeros(p.shape, np.float32) for p in params]

    def step():
        forward().backward()
        with bp.no_grad():
            _sgd_momentum(params, bufs)

    return step


def _torch_step(model, x_shape, rng):
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.tensor(rng.standard_normal(x_shape).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, x_shape[0]))

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


_MLP_SIZES = [784, 256, 256, 10]


def _mlp_bpcli(batch: int, rng):
    import bpcli as bp
    from bpcli import functional as F

    sizes = _MLP_SIZES
    p = _params([((o, i), (o,)) for i, o in zip(sizes[:-1], sizes[1:])], rng)
    x = bp.tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    y = bp.tensor(rng.integers(0, 10, batch))

    def forward():
        h = F.relu(F.linear(x, p[0], p[1]))
        h = F.relu(F.linear(h, p[2], p[3]))
        return F.cross_entropy(F.linear(h, p[4], p[5]), y)

    flops = 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return _bpcli_step(p, forward), forward, flops


def _mlp_torch(batch: int, rng):
    from torch import nn

    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    return _torch_step(model, (batch, 784), rng)


# LeNet-5 on 1x28x28, weights in PyTorch's layout.
_LENET = [((6, 1, 5, 5), (6,)), ((16, 6, 5, 5), (16,)), ((120, 256), (120,)),
          ((84, 120), (84,)), ((10, 84), (10,))]  # fmt: skip


def _cnn_bpcli(batch: int, rng):
    import bpcli as bp
    from bpcli import functional as F

    p = _params(_LENET, rng)
    x = bp.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = bp.tensor(rng.integers(0, 10, batch))

    def forward():
        h = F.max_pool2d(F.relu(F.conv2d(x, p[0], p[1])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p[2], p[3])), 2)
        h = h.reshape(batch, -1)
        h = F.relu(F.linear(h, p[4], p[5]))
        h = F.relu(F.linear(h, p[6], p[7]))
        return F.cross_entropy(F.linear(h, p[8], p[9]), y)

    conv_flops = 2 * batch * (6 * 24 * 24 * 25 + 16 * 8 * 8 * 6 * 25)
    fc_flops = 2 * batch * (256 * 120 + 120 * 84 + 84 * 10)
    return _bpcli_step(p, forward), forward, conv_flops + fc_flops


def _cnn_torch(batch: int, rng):
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84),
        nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip
    return _torch_step(model, (batch, 1, 28, 28), rng)


@dataclass(frozen=True)
class Workload:
    """``make(has_torch) -> (step, forward, flops, torch_step or None)``; ``weight`` scales the
    timed and warm-up steps of slow workloads so the whole bench stays short."""

    make: Callable[[bool], tuple]
    weight: float = 1.0
    needs_specs: bool = False


def _pair(batch: int, make_bp: Callable, make_torch: Callable) -> Callable[[bool], tuple]:
    def make(has_torch: bool):
        step, forward, flops = make_bp(batch, np.random.default_rng(0))
        t_step = make_torch(batch, np.random.default_rng(0)) if has_torch else None
        return step, forward, flops, t_step

    return make


def _workloads() -> dict[str, Workload]:
    from bpcli.app.bench import models as bm

    return {
        "mlp": Workload(_pair(128, _mlp_bpcli, _mlp_torch)),  # MLP 784-256-256-10, batch 128
        "cnn": Workload(_pair(64, _cnn_bpcli, _cnn_torch)),  # LeNet-5, batch 64
        # one epoch of models/mlp-digits.toml (40 batches of 32, Adam, cosine)
        "mlp-digits-epoch": Workload(bm.make_mlp_digits_epoch, 0.4, True),
        # models/char-lstm.toml: embedding 32 -> LSTM 256 -> linear, batch 32 x 64 steps
        "lstm": Workload(bm.make_lstm, 0.2, True),
        # models/tiny-transformer.toml: 2 pre-norm layers, d 64, 4 heads, batch 32 x 64
        "transformer": Workload(bm.make_transformer, 0.2, True),
    }


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _timed(fn, n: int, out: list[float]) -> None:
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)


def run(repeat: int = 50, threads: int | None = None, only=None, warmup: int = 5,
        blocks: int = 5) -> list[BenchResult]:  # fmt: skip
    """Time every workload (or those in ``only``) in bpcli and, when installed, PyTorch.

    The ``repeat`` timed steps per engine (times the workload's weight) run in ``blocks``
    alternating blocks: alternating step by step would time each engine while the other's idle
    threads still spin. Without the models/ directory (an installed package) the spec-built
    workloads are skipped unless named in ``only``.
    """
    import bpcli as bp
    from bpcli.app.bench.models import specs_available

    workloads = _workloads()
    unknown = sorted(set(only or ()) - set(workloads))
    if unknown:
        raise BpcliError(
            f"unknown workload {', '.join(unknown)}; known: {', '.join(workloads)}", "--only"
        )
    if threads is None:
        threads = os.cpu_count() or 1
    has_torch = _torch_available()
    if has_torch:
        import torch

        torch.set_num_threads(threads)
    # NOTE: after torch: Numba's OpenMP layer started first loads a second libgomp next to
    # torch's, and the two pools' spinning made torch's small steps ~20x slower.
    bp.set_num_threads(threads)
    results = []
    for name, w in workloads.items():
        if (only and name not in only) or (not only and w.needs_specs and not specs_available()):
            continue
        step, forward, flops, t_step = w.make(has_torch)
        per_block = max(1, round(repeat * w.weight) // blocks)
        n_warm = max(1, round(warmup * w.weight))
        bp_times, t_times, f_times = [], [], []
        for _ in range(blocks):
            _timed(step, n_warm, [])
            _timed(step, per_block, bp_times)
            with bp.no_grad():
                _timed(forward, per_block, f_times)
            if t_step:
                _timed(t_step, n_warm, [])
                _timed(t_step, per_block, t_times)
        bp_ms, fwd_ms = _median_ms(bp_times), _median_ms(f_times)
        torch_ms = _median_ms(t_times) if t_times else None
        results.append(
            BenchResult(
                workload=name,
                bpcli_ms=bp_ms,
                torch_ms=torch_ms,
                ratio=bp_ms / torch_ms if torch_ms else None,
                bpcli_forward_ms=fwd_ms,
                backward_over_forward=(bp_ms - fwd_ms) / fwd_ms,
                gflops=3 * flops / (bp_ms * 1e-3) / 1e9,
            )
        )
    return results


_STARTUP_SNIPPET = """
import time
t0 = time.perf_counter()
import bpcli
from bpcli.app.bench.runner import _mlp_bpcli
import numpy as np
t1 = time.perf_counter()
step, _, _ = _mlp_bpcli(128, np.random.default_rng(0))
step()
print(t1 - t0, time.perf_counter() - t0)
"""


def startup() -> StartupResult:
    """Cold and warm start of ``import bpcli`` + one MLP step, each in a fresh process."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", _STARTUP_SNIPPET], env=env, capture_output=True, text=True,
                check=True,
            )  # fmt: skip
            runs.append([float(v) for v in out.stdout.split()])
    return StartupResult(cold_s=runs[0][1], warm_s=runs[1][1], import_s=runs[1][0])
