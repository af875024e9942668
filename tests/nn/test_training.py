"""A PyTorch-style training loop in bpcli reaches the accuracies the issue asks for on digits."""

import numpy as np
import pytest

import bpcli as bp
from bpcli import functional as F
from bpcli import nn
from bpcli.data import iter_batches, load_digits, split, standardize


def accuracy(model, x, y) -> float:
    model.eval()
    with bp.no_grad():
        pred = model(bp.tensor(x)).numpy().argmax(1)
    model.train()
    return float((pred == y).mean())


def fit(model, parts, epochs, lr, batch_size=32, seed=0):
    opt = bp.optim.Adam(model.parameters(), lr=lr)
    sched = bp.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for xb, yb in iter_batches(parts.train.x, parts.train.y, batch_size, rng=rng):
            loss = F.cross_entropy(model(bp.tensor(xb)), bp.tensor(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return accuracy(model, parts.test.x, parts.test.y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_on_digits_reaches_97_percent(seed):
    bp.manual_seed(seed)
    parts = split(load_digits(flatten=True), val=0.0, test=0.2, seed=seed, stratify=True)
    parts, _ = standardize(parts)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    acc = fit(model, parts, epochs=40, lr=2e-3, seed=seed)
    assert acc >= 0.97, acc  # measured 0.978-0.997 over seeds 0-5


@pytest.mark.parametrize("seed", [0, 1])
def test_small_cnn_on_digits_reaches_98_percent(seed):
    bp.manual_seed(seed)
    parts = split(load_digits(), val=0.0, test=0.2, seed=seed, stratify=True)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 4 * 4, 10),
    )  # fmt: skip
    acc = fit(model, parts, epochs=15, lr=3e-3, seed=seed)
    assert acc >= 0.98, acc


def test_mlp_loss_falls_quickly():
    bp.manual_seed(0)
    parts = split(load_digits(flatten=True), val=0.0, test=0.2, seed=0, stratify=True)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    assert fit(model, parts, epochs=3, lr=3e-3) > 0.85
