"""The credit job runner (``meshmpc job run --party``: PSI alignment, then secure binning)
among three real node processes, under faults.

A cut link or a killed node stops every other node within 30 s with an error naming
a party and the step it stopped in, and leaves no artefact of that step (steps that
had finished keep theirs, for --resume); a corrupted byte fails authentication.
"""

from __future__ import annotations

import re

import pytest
from cluster import HostileCluster, Outcome
from credit_runs import artefacts, start_job, write_job
from faults import EXIT_WITHIN_S, fault_time, kill_when
from proxy import Fault

PARTIES = ["bank", "gov", "fin"]  # bank dials gov through the proxy
STEP = re.compile(r"party (bank|gov|fin): job stopped in step '(\w+)': party (bank|gov|fin) ")


def _stopped(cluster: HostileCluster, outcomes: dict[str, Outcome], fault_at: float,
             killed: str | None = None) -> None:
    steps = set()
    for party, outcome in outcomes.items():
        if party == killed:
            continue
        assert outcome.code not in (0, None), outcome.stderr[-800:]
        assert outcome.seconds - fault_at < EXIT_WITHIN_S, f"{party}: {outcome.seconds}s"
        found = STEP.search(outcome.stderr) or re.search(
            r"link to (bank|gov|fin).*\[stage: ", outcome.stderr)
        assert found, outcome.stderr[-800:]
        steps |= {found.group(2)} if found.re is STEP else set()
    for step in steps:  # nothing of the step that was stopped
        left = [str(p) for p in artefacts(cluster) if f"/{step}/" in str(p)]
        assert not left, f"artefacts of the stopped step {step}: {left}"


@pytest.mark.slow
def test_credit_job_cut_link_stops_every_node(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=30)
    job = write_job(cluster)
    with fault_proxy(cluster.port("gov"), Fault(cut_at=800_000)) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_job(cluster, job)
        outcomes = cluster.wait(timeout=150)
    _stopped(cluster, outcomes, fault_time(cluster, proxy))
    final = [line for line in outcomes["gov"].stderr.splitlines() if "meshmpc job: error" in line]
    assert final and "party gov failed or stopped there" not in final[-1], final  # no self-blame


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["fin", "gov"])
def test_credit_job_killed_node_stops_the_others(hostile_cluster, fault_proxy,
                                                 victim: str) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=30)
    job = write_job(cluster)
    with fault_proxy(cluster.port("gov"), Fault(bytes_per_s=2_000_000)) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_job(cluster, job)
        killed_at = kill_when(cluster, proxy, victim, 500_000, timeout=120)
        outcomes = cluster.wait(timeout=150)
    _stopped(cluster, outcomes, killed_at, killed=victim)


@pytest.mark.slow
@pytest.mark.parametrize("fault", [Fault(corrupt_at=40_000), Fault(corrupt_at=700_000)],
                         ids=["align", "bins"])
def test_credit_job_corrupted_byte_is_detected(hostile_cluster, fault_proxy,
                                               fault: Fault) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=30)
    job = write_job(cluster)
    with fault_proxy(cluster.port("gov"), fault) as proxy:
        cluster.route("bank", "gov", proxy.port)
        start_job(cluster, job)
        outcomes = cluster.wait(timeout=150)
    assert proxy.stats.faults_applied, "the fault never fired"
    assert all(o.code != 0 for o in outcomes.values()), "a corrupted byte went unnoticed"
    gov = outcomes["gov"].stderr
    assert "failed authentication" in gov or "TamperedFrameError" in gov, gov[-800:]
    _stopped(cluster, outcomes, fault_time(cluster, proxy))
