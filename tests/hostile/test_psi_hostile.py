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
    assert proxy.stats.connections > 1, "a corrupted byte went unnoticed (never re-fetched)"


def _restored_run(hostile_cluster, fault_proxy, rows: int, fault: Fault, timeout: float
                  ) -> None:
    """KKRT PSI whose link is cut (or damaged once) and restored within the grace period:
    both parties finish and write exactly the intersection, as an uninterrupted run."""
    cluster = hostile_cluster(PARTIES, connect_timeout_s=60, resume_grace_s=30.0)
    keys = write_inputs(cluster, rows)
    expected = keys["bank"] & keys["gov"]
    with fault_proxy(cluster.port("gov"), fault) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_psi(cluster, "kkrt", "bank")
        outcomes = cluster.wait(timeout=timeout)
    assert proxy.stats.faults_applied and proxy.stats.connections >= 2, proxy.stats
    for party, outcome in outcomes.items():
        assert outcome.code == 0, f"{party}: {outcome.stderr[-800:]}"
        assert output_keys(cluster, party) == expected


@pytest.mark.parametrize("fault", [Fault(cut_at=40_000, connections=1, restore_after_s=1.0),
                                   pytest.param(Fault(corrupt_at=30_000, connections=1),
                                                marks=pytest.mark.slow)],
                         ids=["cut-restored", "corrupt-once"])
def test_psi_link_fault_within_the_grace_period_gives_the_intersection(
        hostile_cluster, fault_proxy, fault: Fault) -> None:
    _restored_run(hostile_cluster, fault_proxy, 3000, fault, timeout=120)


@pytest.mark.slow
def test_psi_2_20_cut_in_the_middle_and_restored_gives_the_intersection(
        hostile_cluster, fault_proxy) -> None:
    fault = Fault(cut_at=20_000_000, connections=1, restore_after_s=2.0)
    _restored_run(hostile_cluster, fault_proxy, 1 << 20, fault, timeout=900)
