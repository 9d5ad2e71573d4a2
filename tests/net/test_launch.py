"""Local multi-process runs over the real encrypted mesh."""

from __future__ import annotations

import pytest

from meshmpc.net import Context
from meshmpc.net.launch import LaunchError, run_local


def test_four_parties_report_every_link() -> None:
    parties = ["bank", "gov", "fin", "telco"]
    results = run_local(parties, "meshmpc.net.check:mesh_report", {"pings": 20, "bulk_mib": 1})
    for party in parties:
        links = results[party]["links"]
        assert sorted(links) == sorted(p for p in parties if p != party)
        assert all(link["rtt_us_median"] > 0 and link["gbytes_per_s"] > 0
                   for link in links.values())
        assert results[party]["peak_rss_mb"] > 0
    assert results["bank"]["links"]["gov"] == results["gov"]["links"]["bank"]


async def crash_in_gov(ctx: Context) -> dict:
    if ctx.party == "gov":
        raise RuntimeError("gov lost its database")
    await ctx.recv("gov", "never-sent")
    return {}


def test_a_crashing_party_fails_the_run_with_its_error() -> None:
    with pytest.raises(LaunchError) as info:
        run_local(["bank", "gov", "fin"], f"{__name__}:crash_in_gov", timeout=60)
    text = str(info.value)
    assert "gov lost its database" in text
    assert "bank" in text and "PeerDisconnectedError" in text
