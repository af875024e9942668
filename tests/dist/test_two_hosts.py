"""Two hosts simulated on one machine: two network namespaces joined by a veth pair, ranks
started in them through an ssh stand-in (``mpiexec -launcher ssh -launcher-exec fakessh``),
TCP between them. Root only (skipped otherwise); only loopback and the namespaces' own
addresses (10.231.0.1 and .2, invisible outside them) are used, and the namespaces are
deleted afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.dist.mpi_helpers import (
    MODELS,
    MPIEXEC,
    assert_same_metrics,
    bpcli,
    epochs,
    max_rel_diff,
    needs_mpi,
    params,
    run,
)

pytestmark = [
    needs_mpi,
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("ip") is None,
        reason="network namespaces need root and iproute2",
    ),
]
SPEC = str(MODELS / "mlp-digits.toml")
FAKESSH = """#!/bin/sh
# ssh stand-in: "fakessh [-opts] HOST CMD..." runs CMD in the namespace that owns HOST.
while [ "${{1#-}}" != "$1" ]; do shift; done
host=$1; shift
exec ip netns exec "{prefix}${{host##*.}}" sh -c "$*"
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def two_hosts(tmp_path):
    prefix = f"bpt{os.getpid()}h"
    ns = [f"{prefix}1", f"{prefix}2"]
    try:
        for n in ns:
            _ip("netns", "add", n)
        _ip("link", "add", f"{prefix}a", "type", "veth", "peer", "name", f"{prefix}b")
        for i, (n, end) in enumerate(zip(ns, "ab")):
            _ip("link", "set", f"{prefix}{end}", "netns", n)
            _ip("-n", n, "link", "set", f"{prefix}{end}", "name", "bpnet")
            _ip("-n", n, "addr", "add", f"10.231.0.{i + 1}/24", "dev", "bpnet")
            _ip("-n", n, "link", "set", "lo", "up")
            _ip("-n", n, "link", "set", "bpnet", "up")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        for n in ns:
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {e}")
    fake = tmp_path / "fakessh"
    fake.write_text(FAKESSH.format(prefix=prefix))
    fake.chmod(0o755)
    yield ns, fake
    for n in ns:
        subprocess.run(["ip", "netns", "del", n], capture_output=True)


def test_two_namespaces_over_tcp_equal_one_process(two_hosts, tmp_path):
    (ns1, _ns2), fake = two_hosts
    one = bpcli("train", SPEC, "--epochs", "3", "--out", "one", "--no-diagnose", "-q",
                cwd=tmp_path)  # fmt: skip
    assert one.returncode == 0, one.stderr
    cmd = ["ip", "netns", "exec", ns1, "env", "MPIR_CVAR_CH4_NETMOD=ofi", "FI_PROVIDER=tcp",
           "MPIR_CVAR_NOLOCAL=1", "FI_TCP_IFACE=bpnet", str(MPIEXEC), "-launcher", "ssh",
           "-launcher-exec", str(fake), "-hosts", "10.231.0.1,10.231.0.2", "-iface", "bpnet",
           "-n", "2", "-ppn", "1", sys.executable, "-m", "bpcli", "train", SPEC, "--epochs", "3",
           "--out", "two", "--no-diagnose", "-q"]  # fmt: skip
    r = run(cmd, 240, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert max_rel_diff(params(tmp_path / "one"), params(tmp_path / "two")) < 1e-5
    assert_same_metrics(epochs(tmp_path / "one"), epochs(tmp_path / "two"), 1e-6)
