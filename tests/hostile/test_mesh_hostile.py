"""The mesh under a hostile network: real party processes, a fault proxy, an attacker.

What must hold: a running session finishes with the right answer while an
attacker without keys hammers every port; a cut link or a killed party makes
every other party exit within 30 s with an error naming a party (after the
resume grace period); a cut restored within the grace period, or a damaged
record fetched again from the sender, still gives the right answer; a record
damaged on every connection fails after three re-fetches, never a wrong result.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from jobs import expected_checksum
from proxy import Fault

ROUNDS_JOB = "jobs:exchange_rounds"


def _names_a_party(stderr: str, parties: list[str]) -> bool:
    return any(f"link to {p}" in stderr for p in parties)


def test_four_party_session_survives_hammering(hostile_cluster, attacker) -> None:
    parties = ["bank", "gov", "fin", "telco"]
    cluster = hostile_cluster(parties, connect_timeout_s=30)
    cluster.configure(handshake_timeout_s=1.0)
    ports = [cluster.port(p) for p in parties]
    hammer = attacker(ports, count=800, concurrency=60, claim="bank,gov,fin,telco", hold_s=3)
    rounds, size = 40, 20_000  # 160 KB arrays: raw chunked messages
    cluster.start(ROUNDS_JOB, {"rounds": rounds, "size": size, "pause_s": 0.05})
    outcomes = cluster.wait(timeout=120)
    counts = json.loads(hammer.communicate(timeout=120)[0])
    for party, outcome in outcomes.items():
        assert outcome.code == 0, outcome.stderr
        assert outcome.result == {"checksum": expected_checksum(parties, party, rounds, size)}
    landed = sum(n for key, n in counts.items() if key != "total" and "refused" not in key)
    assert landed >= 200, counts  # hundreds of attempts hit the parties while they ran


def _rss_under_attack(hostile_cluster, attacker, tmp_path: Path, count: int) -> dict:
    cluster = hostile_cluster(["a", "b"], connect_timeout_s=30)
    cluster.configure(handshake_timeout_s=1.0)
    stop, ready = tmp_path / "stop", tmp_path / "ready"
    cluster.start("jobs:ping_until", {"stop_file": str(stop), "ready_file": str(ready)})
    deadline = time.monotonic() + 60
    while not Path(f"{ready}.b").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    hammer = attacker([cluster.port("b")], count=count, concurrency=100, claim="a,b,x",
                      hold_s=2)
    counts = json.loads(hammer.communicate(timeout=900)[0])
    stop.touch()
    outcomes = cluster.wait(timeout=60)
    assert outcomes["b"].code == 0 and outcomes["a"].code == 0, outcomes["b"].stderr
    result = outcomes["b"].result
    assert result["wrong"] == 0 and result["rounds"] > 10
    return {**result, "attempts": counts}


def test_hostile_connections_do_not_grow_memory(hostile_cluster, attacker, tmp_path) -> None:
    result = _rss_under_attack(hostile_cluster, attacker, tmp_path, 1000)
    assert result["peak_rss"] - result["start_rss"] < 20 << 20, result


@pytest.mark.slow
def test_ten_thousand_hostile_connections(hostile_cluster, attacker, tmp_path) -> None:
    result = _rss_under_attack(hostile_cluster, attacker, tmp_path, 10_000)
    growth_mb = (result["peak_rss"] - result["start_rss"]) / 2**20
    print(json.dumps({"attempts": 10_000, "rss_growth_mb": round(growth_mb, 2),
                      "session_rounds": result["rounds"], **result["attempts"]}))
    assert growth_mb < 20, result


def test_killed_party_stops_the_others_naming_it(hostile_cluster) -> None:
    parties = ["bank", "gov", "fin"]
    cluster = hostile_cluster(parties, connect_timeout_s=30)
    cluster.start(ROUNDS_JOB, {"rounds": 400, "size": 1000, "pause_s": 0.05})
    time.sleep(3.0)
    killed = time.monotonic()
    cluster.kill("fin")
    outcomes = cluster.wait(timeout=60)
    for party in ["bank", "gov"]:
        outcome = outcomes[party]
        assert outcome.code == 1 and "link to fin" in outcome.stderr, outcome.stderr
        assert outcome.result is None
    assert time.monotonic() - killed < 30


def test_cut_link_stops_every_party(hostile_cluster, fault_proxy) -> None:
    parties = ["bank", "gov", "fin"]
    cluster = hostile_cluster(parties, connect_timeout_s=30)
    with fault_proxy(cluster.port("gov"), Fault(cut_at=300_000)) as proxy:
        cluster.route("bank", "gov", proxy.port)
        cluster.start(ROUNDS_JOB, {"rounds": 400, "size": 5000, "pause_s": 0.01})
        outcomes = cluster.wait(timeout=60)
    assert "cut@300000" in proxy.stats.faults_applied
    for outcome in outcomes.values():
        assert outcome.code == 1 and outcome.result is None, outcome.stderr
        assert _names_a_party(outcome.stderr, parties), outcome.stderr
    exits = [o.seconds for o in outcomes.values()]
    assert max(exits) - min(exits) < 30  # the first exit is at the cut
    assert "peer stopped with an error" in outcomes["fin"].stderr  # told why by the others


@pytest.mark.parametrize(
    "fault",
    [
        Fault(corrupt_at=5_000),  # inside a record body
        Fault(corrupt_at=400, direction="down"),  # near the end of the handshake
        Fault(corrupt_at=70_013),  # likely a header byte
        Fault(drop=(20_000, 10)),
        Fault(duplicate=(30_000, 100)),
    ],
    ids=["corrupt-body", "corrupt-handshake", "corrupt-later", "drop", "duplicate"],
)
def test_damaged_stream_is_detected_never_a_wrong_result(
    hostile_cluster, fault_proxy, fault: Fault
) -> None:
    """The same damage on every connection: the record is fetched again (on a fresh
    connection, where the offset may hit another record) or, hit again three times,
    the link is declared broken; never a wrong answer."""
    parties = ["a", "b"]
    cluster = hostile_cluster(parties, connect_timeout_s=10)
    rounds, size = 30, 5000
    with fault_proxy(cluster.port("b"), fault) as proxy:
        cluster.route("a", "b", proxy.port)
        cluster.start(ROUNDS_JOB, {"rounds": rounds, "size": size})
        outcomes = cluster.wait(timeout=60)
    assert proxy.stats.faults_applied, "the fault never fired"
    assert proxy.stats.connections > 1, "the damage was not noticed (no fresh connection)"
    for party, outcome in outcomes.items():
        if outcome.code == 0:
            assert outcome.result == {"checksum": expected_checksum(parties, party, rounds, size)}
        else:
            assert outcome.result is None and _names_a_party(outcome.stderr, parties)
            assert "fetched 3 times" in outcome.stderr or "handshake" in outcome.stderr, (
                outcome.stderr[-800:])


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault",
    [Fault(corrupt_at=5_000, connections=1), Fault(drop=(20_000, 10), connections=1),
     Fault(cut_at=60_000, connections=1, restore_after_s=1.0)],
    ids=["corrupt-once", "drop-once", "cut-restored"],
)
def test_link_fault_within_the_grace_period_gives_the_right_answer(
    hostile_cluster, fault_proxy, fault: Fault
) -> None:
    parties = ["a", "b"]
    cluster = hostile_cluster(parties, connect_timeout_s=10, resume_grace_s=20.0)
    rounds, size = 30, 5000
    with fault_proxy(cluster.port("b"), fault) as proxy:
        cluster.route("a", "b", proxy.port)
        cluster.start(ROUNDS_JOB, {"rounds": rounds, "size": size, "pause_s": 0.02})
        outcomes = cluster.wait(timeout=90)
    assert proxy.stats.faults_applied and proxy.stats.connections >= 2
    for party, outcome in outcomes.items():
        assert outcome.code == 0, outcome.stderr[-800:]
        assert outcome.result == {"checksum": expected_checksum(parties, party, rounds, size)}


def test_slow_link_gives_the_right_answer(hostile_cluster, fault_proxy) -> None:
    parties = ["a", "b"]
    cluster = hostile_cluster(parties, connect_timeout_s=10)
    rounds, size = 5, 20_000
    with fault_proxy(cluster.port("b"), Fault(delay_s=0.01, bytes_per_s=20e6)) as proxy:
        cluster.route("a", "b", proxy.port)
        cluster.start(ROUNDS_JOB, {"rounds": rounds, "size": size})
        outcomes = cluster.wait(timeout=60)
    for party, outcome in outcomes.items():
        assert outcome.code == 0, outcome.stderr
        assert outcome.result == {"checksum": expected_checksum(parties, party, rounds, size)}
    assert proxy.stats.bytes_up > rounds * size * 8


def test_half_open_link_is_noticed_by_keepalive_and_resumed(hostile_cluster, fault_proxy) -> None:
    """The proxy black-holes the link (bytes vanish both ways, neither end is closed), and
    refuses new connections for 2 s: both parties notice by keepalive, resume, and finish."""
    parties = ["a", "b"]
    cluster = hostile_cluster(parties, connect_timeout_s=10, resume_grace_s=20.0,
                              keepalive_s=0.2, keepalive_timeout_s=1.0)
    rounds, size = 30, 5000
    fault = Fault(blackhole_at=60_000, connections=1, restore_after_s=2.0)
    with fault_proxy(cluster.port("b"), fault) as proxy:
        cluster.route("a", "b", proxy.port)
        cluster.start(ROUNDS_JOB, {"rounds": rounds, "size": size, "pause_s": 0.02})
        outcomes = cluster.wait(timeout=90)
    assert proxy.stats.faults_applied == ["blackhole@60000"] and proxy.stats.connections >= 2
    for party, outcome in outcomes.items():
        assert outcome.code == 0, outcome.stderr[-800:]
        assert outcome.result == {"checksum": expected_checksum(parties, party, rounds, size)}
        assert "half-open" in outcome.stderr, f"{party} did not notice by keepalive"
