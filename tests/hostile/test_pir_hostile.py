"""Keyword PIR as ``meshmpc pir serve`` / ``meshmpc pir query`` processes, under faults.

The client must stop within 30 s naming the link and the stage, writing no hits
file, when its link is cut for good or the server is killed; a cut restored within
the grace period, or a corrupted byte (fetched again), still gives the right hits.
The server is a service: a client's failed session is logged naming the client and
the server carries on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cluster import HostileCluster
from faults import assert_detected_or_right, assert_stopped, fault_time, kill_when
from proxy import Fault

PARTIES = ["bank", "fin"]  # bank queries fin's risk list; bank dials fin through the proxy
RECORDS = 300


def _files(cluster: HostileCluster) -> set[str]:
    """The risk list and the keys asked; returns the keys that are on the list."""
    listed = [f"91330100MA{i:08d}" for i in range(RECORDS)]
    (cluster.directory / "risk.csv").write_text(
        "credit_code,level\n" + "".join(f"{k},L{i % 5}\n" for i, k in enumerate(listed)))
    asked = [f"91330100MA{i:08d}" for i in range(0, 2 * RECORDS, 29)]
    (cluster.directory / "ask.csv").write_text("credit_code\n" + "\n".join(asked) + "\n")
    return set(asked) & set(listed)


def _serve(cluster: HostileCluster, sessions: int) -> None:
    cluster.start_cli("fin", ["pir", "serve", "--db", "risk.csv", "--key", "credit_code",
                              "--client", "bank", "--sessions", str(sessions)])
    deadline = time.monotonic() + 90
    while "serving " not in (cluster.directory / "fin.stderr").read_text():
        assert time.monotonic() < deadline and cluster.procs["fin"].poll() is None, (
            (cluster.directory / "fin.stderr").read_text())
        time.sleep(0.05)


def _query(cluster: HostileCluster, output: str = "hits.csv") -> None:
    cluster.start_cli("bank", ["pir", "query", "--server", "fin", "--keys", "ask.csv",
                               "--output", output, "--connect-timeout", "20"])


def _found(path: Path) -> set[str]:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return {r[0].strip('"') for r in rows if "true" in (c.strip('"').lower() for c in r)}


@pytest.mark.slow
def test_pir_cut_link_stops_the_client_and_the_server_carries_on(hostile_cluster,
                                                                 fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    _files(cluster)
    with fault_proxy(cluster.port("fin"), Fault(cut_at=3_000)) as proxy:
        cluster.route("bank", "fin", proxy.port)
        _serve(cluster, sessions=1)
        _query(cluster)
        outcomes = cluster.wait(timeout=90)
    assert_stopped({"bank": outcomes["bank"]}, PARTIES, fault_time(cluster, proxy),
                   [cluster.directory / "hits.csv"])
    assert outcomes["fin"].code == 0, outcomes["fin"].stderr  # the service survived
    assert "session with bank ended: link to bank" in outcomes["fin"].stderr


@pytest.mark.slow
def test_pir_killed_server_stops_the_client(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    _files(cluster)
    with fault_proxy(cluster.port("fin"), Fault(bytes_per_s=200_000, direction="down")
                     ) as proxy:
        cluster.route("bank", "fin", proxy.port)
        _serve(cluster, sessions=1)
        _query(cluster)
        killed_at = kill_when(cluster, proxy, "fin", 100_000)
        outcomes = cluster.wait(timeout=90)
    assert_stopped(outcomes, PARTIES, killed_at, [cluster.directory / "hits.csv"],
                   killed="fin")


@pytest.mark.slow
def test_pir_killed_client_leaves_the_server_serving(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    expected = _files(cluster)
    with fault_proxy(cluster.port("fin"), Fault(bytes_per_s=200_000, direction="down")
                     ) as proxy:
        cluster.route("bank", "fin", proxy.port)
        _serve(cluster, sessions=2)
        _query(cluster, "lost.csv")
        kill_when(cluster, proxy, "bank", 100_000)
        cluster.procs["bank"].wait()
        _query(cluster)  # a new client session, through the same (slow) proxy
        outcomes = cluster.wait(timeout=120)
    assert not (cluster.directory / "lost.csv").exists()
    assert outcomes["fin"].code == 0 and outcomes["bank"].code == 0, outcomes["fin"].stderr
    assert "session with bank ended: link to bank" in outcomes["fin"].stderr
    assert _found(cluster.directory / "hits.csv") == expected


@pytest.mark.slow
@pytest.mark.parametrize("fault", [Fault(corrupt_at=100_000, direction="down")],
                         ids=["hint"])
def test_pir_corrupted_byte_is_detected(hostile_cluster, fault_proxy, fault: Fault) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    expected = _files(cluster)
    hits = cluster.directory / "hits.csv"
    with fault_proxy(cluster.port("fin"), fault) as proxy:
        cluster.route("bank", "fin", proxy.port)
        _serve(cluster, sessions=1)
        _query(cluster)
        outcomes = cluster.wait(timeout=90)
    assert proxy.stats.faults_applied, "the fault never fired"
    assert_detected_or_right({"bank": outcomes["bank"]}, PARTIES,
                             lambda p, o: _found(hits) == expected, [hits])
    assert proxy.stats.connections > 1, "a corrupted byte went unnoticed (never re-fetched)"


@pytest.mark.slow
@pytest.mark.parametrize("fault", [Fault(cut_at=400_000, direction="down", connections=1,
                                         restore_after_s=1.0),
                                   Fault(corrupt_at=30_000, direction="down", connections=1)],
                         ids=["cut-restored", "corrupt-once"])
def test_pir_batch_survives_a_link_fault_within_the_grace_period(
        hostile_cluster, fault_proxy, fault: Fault) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20, resume_grace_s=20.0)
    expected = _files(cluster)
    with fault_proxy(cluster.port("fin"), fault) as proxy:
        cluster.route("bank", "fin", proxy.port)
        _serve(cluster, sessions=1)
        _query(cluster)
        outcomes = cluster.wait(timeout=120)
    assert proxy.stats.faults_applied and proxy.stats.connections >= 2, proxy.stats
    assert outcomes["bank"].code == 0, outcomes["bank"].stderr[-800:]
    assert outcomes["fin"].code == 0, outcomes["fin"].stderr[-800:]
    assert _found(cluster.directory / "hits.csv") == expected
