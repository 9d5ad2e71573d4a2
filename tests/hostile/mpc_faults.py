"""The fault scenarios shared by the semi2k and rep3 modules (same job, other suite)."""

from __future__ import annotations

from typing import Any

from cluster import HostileCluster
from faults import assert_detected_or_right, assert_stopped, fault_time, kill_when
from proxy import Fault, FaultProxy

JOB = "protocol_jobs:mpc_rounds"


def long_run(suite: str) -> dict[str, Any]:
    return {"suite": suite, "rounds": 60, "n": 2000, "pause_s": 0.1}


def cut(cluster: HostileCluster, proxy: FaultProxy, parties: list[str], suite: str) -> None:
    """Run the long job through the (cutting) proxy; every party must stop, named."""
    cluster.route(parties[0], parties[1], proxy.port)
    cluster.start(JOB, long_run(suite))
    outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, parties, fault_time(cluster, proxy))


def kill(cluster: HostileCluster, proxy: FaultProxy, parties: list[str], suite: str,
         victim: str, after_bytes: int) -> None:
    cluster.route(parties[0], parties[1], proxy.port)
    cluster.start(JOB, long_run(suite))
    killed_at = kill_when(cluster, proxy, victim, after_bytes)
    outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, parties, killed_at, killed=victim)


def corrupt(cluster: HostileCluster, proxy: FaultProxy, parties: list[str], suite: str) -> None:
    cluster.route(parties[0], parties[1], proxy.port)
    cluster.start(JOB, {"suite": suite, "rounds": 3, "n": 2000})
    outcomes = cluster.wait(timeout=90)
    assert proxy.stats.faults_applied, "the fault never fired"
    assert_detected_or_right(outcomes, parties, lambda p, o: o.result["wrong"] == 0)
    assert proxy.stats.connections > 1, "a corrupted byte went unnoticed (never re-fetched)"


def cut_restored(cluster: HostileCluster, proxy: FaultProxy, parties: list[str], suite: str
                 ) -> None:
    """A cut restored within the grace period: every party gets the right products."""
    cluster.route(parties[0], parties[1], proxy.port)
    cluster.start(JOB, {"suite": suite, "rounds": 6, "n": 2000, "pause_s": 0.05})
    outcomes = cluster.wait(timeout=120)
    assert proxy.stats.faults_applied and proxy.stats.connections >= 2, proxy.stats
    for party, outcome in outcomes.items():
        assert outcome.code == 0, f"{party}: {outcome.stderr[-800:]}"
        assert outcome.result == {"rounds": 6, "wrong": 0}


__all__ = ["Fault", "corrupt", "cut", "cut_restored", "kill"]
