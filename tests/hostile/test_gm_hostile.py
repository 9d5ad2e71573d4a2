"""The gm link suite (SM2/SM3/SM4) between real party processes, through the fault proxy.

What must hold, as for the default suite: an undisturbed session gives the
right answer, and a corrupted byte is detected (the link fails naming the
peer), never turned into a wrong result.
"""

from __future__ import annotations

from jobs import expected_checksum
from proxy import Fault

ROUNDS_JOB = "jobs:exchange_rounds"


def test_gm_session_through_the_proxy_gives_the_right_answer(
    hostile_cluster, fault_proxy
) -> None:
    parties = ["a", "b", "c"]
    cluster = hostile_cluster(parties, connect_timeout_s=10, suite="gm")
    rounds, size = 10, 20_000
    with fault_proxy(cluster.port("b"), Fault(delay_s=0.002)) as proxy:
        cluster.route("a", "b", proxy.port)
        cluster.start(ROUNDS_JOB, {"rounds": rounds, "size": size})
        outcomes = cluster.wait(timeout=60)
    for party, outcome in outcomes.items():
        assert outcome.code == 0, outcome.stderr
        assert outcome.result == {"checksum": expected_checksum(parties, party, rounds, size)}
    assert proxy.stats.bytes_up > rounds * size * 8  # the traffic did cross the proxy


def test_gm_corrupted_record_is_detected(hostile_cluster, fault_proxy) -> None:
    parties = ["a", "b"]
    cluster = hostile_cluster(parties, connect_timeout_s=10, suite="gm")
    with fault_proxy(cluster.port("b"), Fault(corrupt_at=5_000)) as proxy:
        cluster.route("a", "b", proxy.port)
        cluster.start(ROUNDS_JOB, {"rounds": 30, "size": 5000})
        outcomes = cluster.wait(timeout=60)
    assert proxy.stats.faults_applied, "the fault never fired"
    assert outcomes["b"].code != 0 and "failed authentication" in outcomes["b"].stderr, (
        outcomes["b"].stderr)
    for outcome in outcomes.values():
        assert outcome.result is None
        assert "link to a" in outcome.stderr or "link to b" in outcome.stderr, outcome.stderr
