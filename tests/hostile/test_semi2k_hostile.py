"""semi2k (OT triples) between real party processes, under faults: a cut link or a killed
party stops everyone within 30 s naming the link and the stage; a cut restored within the
grace period, or a corrupted byte (the record is fetched again), still opens the right
products; a corruption that never goes away fails authentication, never opens a wrong one."""

from __future__ import annotations

import mpc_faults
import pytest
from mpc_faults import Fault

PARTIES = ["a", "b", "c"]


def test_semi2k_cut_link_stops_every_party(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    with fault_proxy(cluster.port("b"), Fault(cut_at=3_000_000)) as proxy:
        mpc_faults.cut(cluster, proxy, PARTIES, "semi2k")


def test_semi2k_cut_link_restored_in_a_multiplication_gives_the_right_products(
        hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20, resume_grace_s=20.0)
    fault = Fault(cut_at=3_000_000, connections=1, restore_after_s=1.0)
    with fault_proxy(cluster.port("b"), fault) as proxy:
        mpc_faults.cut_restored(cluster, proxy, PARTIES, "semi2k")


@pytest.mark.slow
def test_semi2k_corrupted_record_is_fetched_again(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    with fault_proxy(cluster.port("b"), Fault(corrupt_at=2_000_000, connections=1)) as proxy:
        mpc_faults.cut_restored(cluster, proxy, PARTIES, "semi2k")


@pytest.mark.slow
def test_semi2k_killed_party_stops_the_others(hostile_cluster, fault_proxy) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    with fault_proxy(cluster.port("b")) as proxy:
        mpc_faults.kill(cluster, proxy, PARTIES, "semi2k", "c", 3_000_000)


@pytest.mark.slow
@pytest.mark.parametrize("fault", [Fault(corrupt_at=2_000_000), Fault(corrupt_at=900)],
                         ids=["triples", "setup"])
def test_semi2k_corrupted_byte_is_detected(hostile_cluster, fault_proxy, fault) -> None:
    cluster = hostile_cluster(PARTIES, connect_timeout_s=20)
    with fault_proxy(cluster.port("b"), fault) as proxy:
        mpc_faults.corrupt(cluster, proxy, PARTIES, "semi2k")
