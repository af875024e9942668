"""``mpiexec -n N bpcli train`` against one process: parameters, metrics, files, resume.

Tolerance: float32 gradients summed in another order (per shard, then across ranks) differ
by a few ulps per step; after 2-3 epochs of mlp-digits (Adam, dropout) the parameters agree to
~4e-7 of each tensor's largest value (measured), so 1e-5 is asserted; metrics to 1e-6.
"""

from __future__ import annotations

import pytest

from tests.dist.mpi_helpers import (
    MODELS,
    RANK_MAIN,
    assert_same_metrics,
    bpcli,
    epochs,
    max_rel_diff,
    mpi,
    needs_mpi,
    params,
)

pytestmark = needs_mpi
SPEC = str(MODELS / "mlp-digits.toml")
PARAM_TOL, METRIC_TOL = 1e-5, 1e-6
FLAGS = ("--no-diagnose", "-q")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    d = tmp_path_factory.mktemp("one")
    r = bpcli("train", SPEC, "--epochs", "3", "--out", str(d / "run"), *FLAGS)
    assert r.returncode == 0, r.stderr
    return d / "run"


def test_two_ranks_equal_one_process_and_only_rank0_writes(one_process, tmp_path):
    r = mpi(2, "train", SPEC, "--epochs", "3", "--out", "run", *FLAGS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("test accuracy") == 1  # one rank printed
    assert max_rel_diff(params(one_process), params(tmp_path / "run")) < PARAM_TOL
    assert_same_metrics(epochs(one_process), epochs(tmp_path / "run"), METRIC_TOL)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        p.name for p in one_process.iterdir()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_error_on_one_rank_is_one_line_and_aborts_keeping_the_checkpoint(one_process, tmp_path):
    # mlp-digits has 40 steps an epoch: rank 1 fails in epoch 2, after last.npz of epoch 1.
    r = mpi(2, "--fail", "1:45:raise", "--", "train", SPEC, "--epochs", "3", "--out", "run",
            *FLAGS, cwd=tmp_path, prog=(str(RANK_MAIN),), timeout=120)  # fmt: skip
    assert r.returncode != 0
    ours = [ln for ln in r.stderr.splitlines() if ln.startswith("bpcli:")]
    assert ours == ["bpcli: digits.npz: sample 17 has 63 features, expected 64 (rank 1 of 2)"]
    assert "Traceback" not in r.stderr
    assert [e["epoch"] for e in epochs(tmp_path / "run")] == [1]
    resumed = bpcli("train", SPEC, "--epochs", "3", "--resume", str(tmp_path / "run"), *FLAGS)
    assert resumed.returncode == 0, resumed.stderr
    assert max_rel_diff(params(one_process), params(tmp_path / "run")) < PARAM_TOL


def test_ranks_that_disagree_on_the_spec_stop_with_one_error(tmp_path):
    other = tmp_path / "other.toml"
    other.write_text((MODELS / "mlp-digits.toml").read_text().replace("lr = 2e-3", "lr = 3e-3"))
    r = mpi(1, "train", SPEC, "--out", "run", *FLAGS, ":", "-n", "1", *_python_bpcli(),
            "train", str(other), "--out", "run", *FLAGS, cwd=tmp_path, timeout=120)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "bpcli: mpiexec: the ranks differ in spec (ranks [1] vs rank 0): every rank must run "
        "the same bpcli on the same spec and data"
    )
    assert not (tmp_path / "run").exists()


def _python_bpcli() -> list[str]:
    import sys

    return [sys.executable, "-m", "bpcli"]


@pytest.mark.slow
def test_four_ranks_and_resume_with_another_number_of_ranks(one_process, tmp_path):
    r = mpi(4, "train", SPEC, "--epochs", "3", "--out", "four", *FLAGS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert max_rel_diff(params(one_process), params(tmp_path / "four")) < PARAM_TOL
    assert_same_metrics(epochs(one_process), epochs(tmp_path / "four"), METRIC_TOL)
    # 2 ranks for epoch 1, one process for epoch 2, 4 ranks for epoch 3, against the same
    # three calls in one process (--epochs changes the cosine schedule's length).
    for n, run in ((2, "run"), (1, "ref")):
        r = (mpi(n, "train", SPEC, "--epochs", "1", "--out", run, *FLAGS, cwd=tmp_path)
             if n > 1 else bpcli("train", SPEC, "--epochs", "1", "--out", run, *FLAGS,
                                 cwd=tmp_path))  # fmt: skip
        assert r.returncode == 0, r.stderr
    for run in ("run", "ref"):
        r = bpcli("train", SPEC, "--epochs", "2", "--resume", run, *FLAGS, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    r = mpi(4, "train", SPEC, "--epochs", "3", "--resume", "run", *FLAGS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = bpcli("train", SPEC, "--epochs", "3", "--resume", "ref", *FLAGS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert max_rel_diff(params(tmp_path / "ref"), params(tmp_path / "run")) < PARAM_TOL
    assert_same_metrics(epochs(tmp_path / "ref"), epochs(tmp_path / "run"), METRIC_TOL)


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_and_the_run_resumes_on_fewer_ranks(one_process, tmp_path):
    import time

    t0 = time.monotonic()
    r = mpi(2, "--fail", "1:45:kill", "--", "train", SPEC, "--epochs", "3", "--out", "run",
            *FLAGS, cwd=tmp_path, prog=(str(RANK_MAIN),), timeout=120)  # fmt: skip
    assert r.returncode != 0
    assert time.monotonic() - t0 < 60  # start-up included; the end itself takes < 1 s
    assert [e["epoch"] for e in epochs(tmp_path / "run")] == [1]
    resumed = bpcli("train", SPEC, "--epochs", "3", "--resume", "run", *FLAGS, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert max_rel_diff(params(one_process), params(tmp_path / "run")) < PARAM_TOL


@pytest.mark.slow
def test_tcp_between_ranks_gives_the_same_result(one_process, tmp_path):
    tcp = {"MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp", "MPIR_CVAR_NOLOCAL": "1",
           "FI_TCP_IFACE": "lo"}  # fmt: skip
    r = mpi(2, "train", SPEC, "--epochs", "3", "--out", "run", *FLAGS, cwd=tmp_path,
            extra_env=tcp)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert max_rel_diff(params(one_process), params(tmp_path / "run")) < PARAM_TOL


@pytest.mark.slow
def test_workers_option_starts_mpiexec_itself(one_process, tmp_path):
    r = bpcli("train", SPEC, "--epochs", "3", "--out", "run", "--workers", "2", *FLAGS,
              cwd=tmp_path, timeout=180)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("test accuracy") == 1
    assert max_rel_diff(params(one_process), params(tmp_path / "run")) < PARAM_TOL


@pytest.mark.slow
def test_sync_batchnorm_cnn_equals_one_process(tmp_path):
    """cnn-digits (BatchNorm2d after each conv, dropout, AdamW), 2 epochs.

    The conv biases that feed a BatchNorm have a true gradient of 0 (the norm subtracts the
    mean), so their gradients are rounding noise that Adam scales to full-size steps, in one
    process as across ranks: they, and the running means that include them, are left out.
    The other parameters agree to ~6e-5 (measured; 1e-4 asserted), metrics to 1e-3.
    """
    spec = str(MODELS / "cnn-digits.toml")
    args = ("train", spec, "--epochs", "2", "--set", "train.sync_batchnorm=true", *FLAGS)
    assert bpcli(*args, "--out", "one", cwd=tmp_path, timeout=300).returncode == 0
    r = mpi(2, *args, "--out", "two", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    noise = ("0.bias", "4.bias", "1.running_mean", "5.running_mean")
    one, two = ({k: v for k, v in params(tmp_path / d).items() if k not in noise}
                for d in ("one", "two"))  # fmt: skip
    assert max_rel_diff(one, two) < 1e-4
    assert_same_metrics(epochs(tmp_path / "one"), epochs(tmp_path / "two"), 1e-3)
    # Local statistics (the default, as torch DDP) are another computation.
    r = mpi(2, "train", spec, "--epochs", "2", "--out", "local", *FLAGS, cwd=tmp_path,
            timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    local = {k: v for k, v in params(tmp_path / "local").items() if k not in noise}
    assert max_rel_diff(one, local) > 1e-3
