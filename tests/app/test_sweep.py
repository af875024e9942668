import csv
import json

import pytest

from bpcli.app.experiments.lr_find import lr_find
from bpcli.app.experiments.sweep import parse_lrs, sweep
from bpcli.app.spec.schema import load_spec
from bpcli.errors import BpcliError


def test_parse_lrs():
    assert parse_lrs("1e-4:1e0:5") == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert parse_lrs("0.1,0.01") == [0.01, 0.1]
    for bad in ("1:0.1:3", "x", "1e-3:1:1", "-1"):
        with pytest.raises(BpcliError):
            parse_lrs(bad)


def test_spirals_sweep_finds_a_stable_region(tmp_path):
    r = sweep(
        "models/spirals.toml",
        [1e-3, 1e-2, 1e-1, 10.0],
        ["he", "xavier"],
        epochs=3,
        seeds=1,
        jobs=2,
        out_dir=tmp_path / "sw",
    )
    assert len(r.runs) == 8 and r.metric == "accuracy"
    for init in ("he", "xavier"):
        assert r.cell(init, 10.0)[1], "lr 10 must diverge"
        lo, hi = r.stable_region(init)
        assert lo <= 1e-2 <= hi < 10.0  # a usual Adam lr is stable
    init, lr, acc = r.best()
    assert 1e-3 <= lr <= 1e-1 and acc > 0.9
    rows = list(csv.DictReader(open(tmp_path / "sw" / "runs.csv")))
    assert len(rows) == 8 and {row["status"] for row in rows} == {"ok", "diverged"}
    saved = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert saved["best"]["lr"] == lr


def test_unknown_init_is_refused_before_any_run(tmp_path):
    with pytest.raises(BpcliError, match="initiali"):
        sweep("models/spirals.toml", [1e-2], ["he", "nosuch"], out_dir=tmp_path / "sw")
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("spec", ["models/spirals.toml", "models/mlp-digits.toml"])
def test_lr_find_suggests_a_sensible_lr(spec):
    from bpcli.app.model.build import build

    s = load_spec(spec)
    built = build(s)
    before = {k: v.copy() for k, v in built.model.state_dict().items()}
    r = lr_find(s, built=built)
    assert 1e-4 <= r.suggested_lr <= 0.1
    assert r.stopped_early  # max lr 10 blows Adam up
    after = built.model.state_dict()
    assert all((before[k] == after[k]).all() for k in before)  # restored
