"""``meshmpc bench boost --data reference``: the four-party reference data feeds the bench."""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from meshmpc_bench.boost import main, party_data, peak_rss_of_this_program, reference_data
from meshmpc_bench.ml_logistic import PARTY_ORDER, reference_tables

ROWS = 500


@pytest.fixture(scope="module")
def files() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-boost-test-") as tmp:
        yield {p: str(f) for p, f in reference_tables(ROWS, 3, Path(tmp)).items()}


def test_reference_data_aligns_the_four_parties(files: dict[str, str]) -> None:
    parts, y = reference_data(files)
    assert list(parts) == list(PARTY_ORDER)
    joined = y.shape[0]
    assert 0 < joined < ROWS  # an inner join of partial overlaps
    assert all(x.shape[0] == joined and x.shape[1] > 0 for x in parts.values())
    assert set(np.unique(y)) == {0.0, 1.0}
    for party in PARTY_ORDER:  # what each party process loads is its own block
        x, labels = party_data(party, 0, {}, 0, files)
        np.testing.assert_array_equal(x, parts[party])
        if party == "bank":
            np.testing.assert_array_equal(labels, y)


def test_reference_data_without_the_label_holder_is_an_error(files: dict[str, str]) -> None:
    partners = {p: f for p, f in files.items() if p != "bank"}
    with pytest.raises(ValueError, match="default_12m"):
        reference_data(partners)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_peak_rss_is_this_programs_own() -> None:
    before = peak_rss_of_this_program()
    block = bytearray(64 << 20)  # touch 64 MiB: the high-water mark must grow past it
    block[:: 4096] = b"x" * len(block[:: 4096])
    after = peak_rss_of_this_program()
    assert before is not None and after is not None
    assert after >= 64 and after >= before
    assert after <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + 1
    del block


@pytest.mark.slow
def test_bench_boost_reference_reports_every_party(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", "reference", "--rows", "1500", "--trees", "1", "--depth", "2",
                 "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["data"] == "reference" and rec["rows_per_party"] == 1500
    assert 0 < rec["rows"] < 1500
    assert set(rec["bytes_sent_by_party"]) == set(PARTY_ORDER)
    assert rec["bytes_sent"] == sum(rec["bytes_sent_by_party"].values())
    assert all(v > 0 for v in rec["bytes_sent_by_party"].values())
    assert rec["peak_rss_mb"] == max(rec["peak_rss_mb_by_party"].values())
    assert abs(rec["auc"] - rec["auc_xgboost"]) < 0.1


def test_message_clock_counts_concurrent_waits_once(tmp_path: Path) -> None:
    """Blocked time is wall time with any send/recv pending: the bank's waits on three
    partners at once count once (they had added up to more than the wall time)."""
    import asyncio

    from meshmpc_bench._msgclock import MessageClock, link_estimate

    class FakeContext:
        party = "bank"

        async def send(self, peer: str, tag: str, obj: object) -> None:
            return None

        async def recv(self, peer: str, tag: str) -> object:
            await asyncio.sleep(0.2)
            return np.zeros(4)

    async def run() -> dict[str, float | int]:
        ctx = FakeContext()
        clock = MessageClock(ctx, tmp_path)
        await asyncio.gather(*(ctx.recv(p, "x") for p in ("gov", "fin", "telco")))
        await ctx.send("gov", "y", {"op": "tree"})
        return clock.summary()

    got = asyncio.run(run())
    assert 0.19 <= got["blocked_s"] <= got["wall_s"] < 0.5
    assert got["received"] == 3 and got["sent"] == 1 and got["payload_bytes_in"] == 96
    assert len((tmp_path / "bank.log").read_text().splitlines()) == 4
    assert link_estimate({"bank": {"blocked_s": 5.0}, "gov": {"busy_s": 3.5}}, "bank") == 1.5
    assert link_estimate({"a": got, "b": got, "c": got}, "a") is None
