"""``make demo`` until the trainer exists: an MLP learns two interleaved spirals.

Everything runs on bpcli's engine: forward, cross-entropy, backward, an Adam update.
"""

from __future__ import annotations

import time

import numpy as np


def spirals(n: int, rng: np.random.Generator, noise: float = 0.2):
    """Two interleaved spirals, ``n`` points each; labels 0 and 1."""
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, noise / (3 * np.pi), (2 * n, 2))
    y = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    return x.astype(np.float32), y


def main(epochs: int = 300, seed: int = 0) -> float:
    import bpcli as bp
    from bpcli import functional as F

    rng = np.random.default_rng(seed)
    x, y = spirals(500, rng)
    sizes = [2, 64, 64, 2]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        std = np.sqrt(2 / fan_in)  # He initialisation for ReLU
        params.append(bp.tensor(rng.normal(0, std, (fan_out, fan_in)).astype(np.float32), True))
        params.append(bp.zeros(fan_out, requires_grad=True))
    m = [np.zeros(p.shape, np.float32) for p in params]
    v = [np.zeros(p.shape, np.float32) for p in params]
    xt, yt = bp.tensor(x), bp.tensor(y)

    def logits(inp):
        h = F.relu(F.linear(inp, params[0], params[1]))
        h = F.relu(F.linear(h, params[2], params[3]))
        return F.linear(h, params[4], params[5])

    t0 = time.perf_counter()
    lr, b1, b2 = 0.01, 0.9, 0.999
    for step in range(1, epochs + 1):
        loss = F.cross_entropy(logits(xt), yt)
        loss.backward()
        with bp.no_grad():
            for p, mi, vi in zip(params, m, v):
                mi[...] = b1 * mi + (1 - b1) * p.grad
                vi[...] = b2 * vi + (1 - b2) * p.grad**2
                mhat, vhat = mi / (1 - b1**step), vi / (1 - b2**step)
                p.data -= lr * mhat / (np.sqrt(vhat) + 1e-8)
                p.grad = None
        if step % 50 == 0 or step == 1:
            with bp.no_grad():
                acc = float((logits(xt).numpy().argmax(1) == y).mean())
            print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {acc:.3f}")
    print(f"trained a 2-64-64-2 MLP on {len(x)} spiral points in {time.perf_counter() - t0:.1f} s")
    return acc


if __name__ == "__main__":
    main()
