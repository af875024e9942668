"""Numba's on-disk cache: a second process loads the kernels instead of compiling them."""

import os
import subprocess
import sys

import pytest

SNIPPET = """
import numpy as np
import bpcli as bp
from bpcli import functional as F
from bpcli.kernels import softmax
x = bp.tensor(np.random.randn(8, 5).astype(np.float32), requires_grad=True)
F.cross_entropy(x, bp.tensor(np.arange(8) % 5)).backward()
d = softmax.softmax_xent_fwd_bwd
print(len(d.stats.cache_hits), len(d.stats.cache_misses))
"""


@pytest.mark.slow
def test_second_process_hits_the_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        runs.append(tuple(int(v) for v in out.stdout.split()))
    (hits1, misses1), (hits2, misses2) = runs
    assert misses1 >= 1 and hits1 == 0  # the first process compiled and wrote the cache
    assert hits2 >= 1 and misses2 == 0  # the second loaded it
