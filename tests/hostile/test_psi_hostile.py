"""Two-party PSI (KKRT, ECDH, RR22) as ``meshmpc psi run`` processes, under faults.

A cut link or a killed party stops the other within 30 s, naming the link and the
stage, and no output file is left; a corrupted byte fails authentication and no
output is written, or (never otherwise) the intersection is exactly right.
"""

from __future__ import annotations

import pytest
from faults import assert_detected_or_right, assert_stopped, fault_time, kill_when
from proxy import Fault
from psi_runs import output_keys, outputs, start_psi, write_inputs

PARTIES = ["bank", "gov"]  # bank dials gov through the proxy
THROTTLE = Fault(bytes_per_s=300_000)  # keeps the protocol running for a kill to land
FAST = ["kkrt"]  # the protocol whose faults run in the quick suite; the others are slow


def _protocols(fast: bool) -> list[object]:
    return [p if p in FAST and fast else pytest.param(p, marks=pytest.mark.slow)
            for p in ("kkrt", "ecdh", "rr22")]


@pytest.mark.parametrize("protocol", _protocols(fast=False))
def test_psi_cut_link_stops_both_and_writes_nothing(hostile_cluster, fault_proxy,
                                                    protocol: str) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    write_inputs(cluster)
    with fault_proxy(cluster.port("gov"), Fault(cut_at=40_000)) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_psi(cluster, protocol, "bank")
        outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, PARTIES, fault_time(cluster, proxy), outputs(cluster))


@pytest.mark.parametrize("protocol", _protocols(fast=False))
@pytest.mark.parametrize("victim", ["gov", "bank"])
def test_psi_killed_party_stops_the_other(hostile_cluster, fault_proxy, protocol: str,
                                          victim: str) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    write_inputs(cluster)
    with fault_proxy(cluster.port("gov"), THROTTLE) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_psi(cluster, protocol, "bank")
        killed_at = kill_when(cluster, proxy, victim, 60_000)
        outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, PARTIES, killed_at, outputs(cluster), killed=victim)


@pytest.mark.parametrize("protocol", _protocols(fast=True))
@pytest.mark.parametrize("fault", [Fault(corrupt_at=30_000),
                                   pytest.param(Fault(corrupt_at=20_000, direction="down"),
                                                marks=pytest.mark.slow)],
                         ids=["to-gov", "to-bank"])
def test_psi_corrupted_byte_is_detected(hostile_cluster, fault_proxy, protocol: str,
                                        fault: Fault) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    keys = write_inputs(cluster)
    expected = keys["bank"] & keys["gov"]
    with fault_proxy(cluster.port("gov"), fault) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_psi(cluster, protocol, "bank")
        outcomes = cluster.wait(timeout=90)
    assert proxy.stats.faults_applied, "the fault never fired"
    assert_detected_or_right(outcomes, PARTIES,
                             lambda p, o: output_keys(cluster, p) == expected, outputs(cluster))
    assert any(o.code != 0 for o in outcomes.values()), "a corrupted byte went unnoticed"
