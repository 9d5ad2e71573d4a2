"""Fixtures of the hostile-network suite; protocol tests of other families belong here too.

Usage from a test file in this folder (e.g. ``test_psi_hostile.py``)::

    def test_my_protocol_survives_a_cut(hostile_cluster, fault_proxy):
        cluster = hostile_cluster(["bank", "gov"])
        with fault_proxy(cluster.port("gov"), Fault(cut_at=50_000)) as proxy:
            cluster.route("bank", "gov", proxy.port)   # bank dials gov via the proxy
            cluster.start("mypkg.jobs:my_job", {"rows": 1000})
            outcomes = cluster.wait(timeout=60)
        assert all(o.code != 0 and "link to" in o.stderr for o in outcomes.values())

* ``hostile_cluster(parties, **cluster_fields)`` -> :class:`cluster.HostileCluster`
  (processes are killed at the end of the test);
* ``fault_proxy(target_port, Fault(...))`` -> a context manager :class:`proxy.FaultProxy`;
* ``attacker(targets, count=..., modes=...)`` -> a started attacker process
  (:mod:`attacker`); ``.communicate()`` returns its JSON counts.

Only the party listed first dials (parties dial those listed after them), so
route the earlier party's view of the later one through the proxy.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from cluster import HostileCluster  # noqa: E402
from proxy import Fault, FaultProxy  # noqa: E402


@pytest.fixture
def hostile_cluster(tmp_path: Path) -> Iterator[Callable[..., HostileCluster]]:
    made: list[HostileCluster] = []

    def make(parties: list[str], **cluster: Any) -> HostileCluster:
        folder = tmp_path / f"cluster{len(made)}"
        folder.mkdir()
        made.append(HostileCluster(folder, parties, **cluster))
        return made[-1]

    yield make
    for cluster in made:
        cluster.stop()


@pytest.fixture
def fault_proxy() -> Callable[[int, Fault | None], FaultProxy]:
    return lambda target_port, fault=None: FaultProxy(target_port, fault)


@pytest.fixture
def attacker() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(targets: list[int], count: int = 500, concurrency: int = 50,
              modes: str | None = None, claim: str = "bank", hold_s: float = 10.0
              ) -> subprocess.Popen[str]:
        command = [sys.executable, str(HERE / "attacker.py"), "--count", str(count),
                   "--concurrency", str(concurrency), "--claim", claim, "--hold-s", str(hold_s)]
        command += [arg for port in targets for arg in ("--target", f"127.0.0.1:{port}")]
        if modes:
            command += ["--modes", modes]
        started.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


__all__ = ["Fault", "FaultProxy", "HostileCluster"]
