"""``make demo`` until ``bpcli train`` exists: an MLP learns the bundled 8x8 digits.

Everything runs on bpcli: the engine's forward and backward, bp.nn layers, the Adam
optimizer, a cosine schedule, and the digits bundled in the package (no download).
"""

from __future__ import annotations

import time

import numpy as np


def main(epochs: int = 40, seed: int = 0) -> float:
    import bpcli as bp
    from bpcli import functional as F
    from bpcli import nn
    from bpcli.data import iter_batches, load_digits, split, standardize

    t0 = time.perf_counter()
    bp.manual_seed(seed)
    parts, _ = standardize(split(load_digits(flatten=True), val=0.0, test=0.2, seed=seed))
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    opt = bp.optim.Adam(model.parameters(), lr=2e-3)
    sched = bp.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    rng = np.random.default_rng(seed)
    x_test, y_test = bp.tensor(parts.test.x), parts.test.y
    print(f"digits: {len(parts.train.x)} training, {len(y_test)} test images; model {model}")
    for epoch in range(1, epochs + 1):
        losses = []
        for xb, yb in iter_batches(parts.train.x, parts.train.y, 32, rng=rng):
            loss = F.cross_entropy(model(bp.tensor(xb)), bp.tensor(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        if epoch % 5 == 0 or epoch == 1:
            model.eval()
            with bp.no_grad():
                acc = float((model(x_test).numpy().argmax(1) == y_test).mean())
            model.train()
            print(f"epoch {epoch:3d}  loss {np.mean(losses):.4f}  test accuracy {acc:.4f}")
    print(f"done in {time.perf_counter() - t0:.1f} s: test accuracy {acc:.2%}")
    return acc


if __name__ == "__main__":
    main()
