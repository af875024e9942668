"""The installed distribution is found through its entry point and its parts train together.

Needs ``pip install ./plugins/bpcli-extras`` (or ``-e``) in the environment running the tests.
"""

from importlib import metadata

import bpcli as bp
import numpy as np
import pytest
from bpcli.plugins import manager

PARTS = {"layer": ["mish", "swish"], "loss": ["focal"], "optimizer": ["lion"],
         "schedule": ["polynomial"], "dataset": ["checkerboard"]}  # fmt: skip


def test_entry_point_is_installed():
    eps = [ep for ep in metadata.entry_points(group="bpcli") if ep.name == "extras"]
    assert len(eps) == 1, "install the plugin: pip install -e ./plugins/bpcli-extras"
    assert eps[0].value == "bpcli_extras.plugin" and eps[0].dist.name == "bpcli-extras"


def test_reset_loads_it_with_bpcli_plugins_unset(plugins_on):
    from bpcli_extras.layers import Mish

    assert bp.nn.get_layer("mish") is Mish and bp.nn.get_layer("MISH") is Mish
    assert not manager.warnings
    for kind, names in PARTS.items():
        reg = manager.registry(kind)
        for name in names:
            assert name in reg and reg.plugin_of(name) == "extras", (kind, name)


@pytest.mark.parametrize("value", ["extras", "bpcli-extras"])
def test_bpcli_plugins_can_name_it(monkeypatch, plugins_on, value):
    monkeypatch.setenv("BPCLI_PLUGINS", value)
    manager.reset()
    assert "mish" in manager.registry("layer")


def test_bpcli_plugins_none_hides_it(monkeypatch, plugins_on):
    monkeypatch.setenv("BPCLI_PLUGINS", "none")
    manager.reset()
    for kind, names in PARTS.items():
        assert not set(names) & set(manager.registry(kind).names()), kind
    with pytest.raises(bp.BpcliError, match="unknown layer 'mish'"):
        bp.nn.get_layer("mish")


def test_its_parts_train_a_checkerboard(plugins_on):
    reg = manager.registry
    ds = reg("dataset").get("checkerboard")(n_samples=400, tiles=2, seed=0)
    bp.manual_seed(0)
    mish = reg("layer").get("mish")
    model = bp.nn.Sequential(bp.nn.Linear(2, 32), mish(), bp.nn.Linear(32, 32), mish(),
                             bp.nn.Linear(32, 2))  # fmt: skip
    loss_fn = reg("loss").get("focal")(gamma=2.0)
    opt = reg("optimizer").get("lion")(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = reg("schedule").get("polynomial")(opt, total_iters=300, power=1.0)
    x, y = bp.tensor(ds.x), bp.tensor(ds.y)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.data))
    assert opt.param_groups[0]["lr"] == 0.0
    with bp.no_grad():
        acc = float((model(x).data.argmax(axis=1) == ds.y).mean())
    assert np.mean(losses[-10:]) < 0.25 * np.mean(losses[:10]), losses[::30]
    assert acc > 0.9, acc
