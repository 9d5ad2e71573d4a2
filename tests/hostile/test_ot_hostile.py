"""IKNP OT extension (with its base OTs) between real party processes, under faults.

A cut link or a killed party stops the other within 30 s, naming the link and the
stage; a corrupted byte fails authentication, never delivers a wrong OT message.
"""

from __future__ import annotations

import pytest
from faults import assert_detected_or_right, assert_stopped, fault_time, kill_when
from proxy import Fault

JOB = "protocol_jobs:ot_rounds"
PARTIES = ["s", "r"]  # s sends (and dials r through the proxy), r chooses
SLOW = pytest.mark.slow
LONG = {"rounds": 40, "n": 2000, "pause_s": 0.1}


@pytest.mark.slow
def test_ot_cut_link_stops_both(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    with fault_proxy(cluster.port("r"), Fault(cut_at=200_000)) as proxy:
        cluster.route("s", "r", proxy.port)
        cluster.start(JOB, LONG)
        outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, PARTIES, fault_time(cluster, proxy))


@pytest.mark.slow
def test_ot_killed_receiver_stops_the_sender(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    with fault_proxy(cluster.port("r")) as proxy:
        cluster.route("s", "r", proxy.port)
        cluster.start(JOB, LONG)
        killed_at = kill_when(cluster, proxy, "r", 150_000)
        outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, PARTIES, killed_at, killed="r")


@pytest.mark.parametrize("fault", [Fault(corrupt_at=60_000),
                                   pytest.param(Fault(corrupt_at=3_000), marks=SLOW),
                                   pytest.param(Fault(corrupt_at=2_000, direction="down"),
                                                marks=SLOW)],
                         ids=["extension", "base-ot", "base-ot-reply"])
def test_ot_corrupted_byte_is_detected(hostile_cluster, fault_proxy, fault) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    with fault_proxy(cluster.port("r"), fault) as proxy:
        cluster.route("s", "r", proxy.port)
        cluster.start(JOB, {"rounds": 4, "n": 2000})
        outcomes = cluster.wait(timeout=90)
    assert proxy.stats.faults_applied, "the fault never fired"
    assert_detected_or_right(outcomes, PARTIES, lambda p, o: o.result["wrong"] == 0)
    assert any(o.code != 0 for o in outcomes.values()), "a corrupted byte went unnoticed"
