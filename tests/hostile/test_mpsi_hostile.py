"""Multi-party ECDH PSI (``meshmpc psi run --protocol ecdh-mp``) among three real
processes, under faults: a cut link or a killed party stops every other party within
30 s naming the link and the stage, with no output file; a corrupted byte fails
authentication and writes nothing, or (never otherwise) the result is exactly right."""

from __future__ import annotations

import pytest
from faults import assert_detected_or_right, assert_stopped, fault_time, kill_when
from proxy import Fault
from psi_runs import output_keys, outputs, start_psi, write_inputs

PARTIES = ["bank", "gov", "fin"]  # bank dials gov through the proxy; receiver: bank


@pytest.mark.slow
def test_mpsi_cut_link_stops_every_party(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    write_inputs(cluster)
    with fault_proxy(cluster.port("gov"), Fault(cut_at=30_000)) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_psi(cluster, "ecdh-mp", "bank")
        outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, PARTIES, fault_time(cluster, proxy), outputs(cluster))


@pytest.mark.parametrize("victim", ["fin", pytest.param("bank", marks=pytest.mark.slow)])
def test_mpsi_killed_party_stops_the_others(hostile_cluster, fault_proxy, victim: str) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    write_inputs(cluster)
    with fault_proxy(cluster.port("gov"), Fault(bytes_per_s=200_000)) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_psi(cluster, "ecdh-mp", "bank")
        killed_at = kill_when(cluster, proxy, victim, 20_000)
        outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, PARTIES, killed_at, outputs(cluster), killed=victim)


@pytest.mark.slow
@pytest.mark.parametrize("fault", [Fault(corrupt_at=25_000), Fault(corrupt_at=15_000,
                                                                   direction="down")],
                         ids=["to-gov", "to-bank"])
def test_mpsi_corrupted_byte_is_detected(hostile_cluster, fault_proxy, fault: Fault) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    keys = write_inputs(cluster)
    expected = keys["bank"] & keys["gov"] & keys["fin"]
    with fault_proxy(cluster.port("gov"), fault) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_psi(cluster, "ecdh-mp", "bank")
        outcomes = cluster.wait(timeout=90)
    assert proxy.stats.faults_applied, "the fault never fired"
    assert_detected_or_right(outcomes, PARTIES,
                             lambda p, o: output_keys(cluster, p) == expected, outputs(cluster))
    assert any(o.code != 0 for o in outcomes.values()), "a corrupted byte went unnoticed"
