"""Multi-party ECDH PSI: the receiver gets exactly the common items of all parties."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from meshmpc.net import run_parties
from meshmpc.psi.errors import PsiError
from meshmpc.psi.group import GroupPool
from meshmpc.psi.multiparty import multiparty_psi

PARTIES = ["bank", "gov", "fin", "telco"]


def _digests(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * n), np.uint8).reshape(-1, 16)


def _sets() -> dict[str, np.ndarray]:
    everyone = _digests(7)
    pair = _digests(5)  # bank and gov only: must not show up anywhere
    return {
        "bank": np.concatenate([_digests(3), everyone, pair]),
        "gov": np.concatenate([pair, everyone[::-1], _digests(4)]),
        "fin": np.concatenate([everyone, _digests(6)]),
        "telco": np.concatenate([_digests(2), everyone]),
    }


def _run(sets: dict[str, np.ndarray], reveal: str, receiver: str = "bank") -> dict:
    sizes = {p: len(v) for p, v in sets.items()}

    async def party(ctx):  # noqa: ANN001, ANN202
        with GroupPool(0) as pool:
            return await multiparty_psi(ctx, PARTIES, receiver, sets[ctx.party], sizes, reveal,
                                        pool)

    return run_parties(PARTIES, party)


def test_receiver_learns_common_items_only() -> None:
    sets = _sets()
    res = _run(sets, "receiver")
    got = res["bank"].matched
    assert sorted(got.tolist()) == list(range(3, 10))
    assert all(res[p].matched is None and res[p].cardinality is None for p in PARTIES[1:])


def test_receiver_in_the_middle_and_cardinality() -> None:
    sets = _sets()
    res = _run(sets, "cardinality", receiver="fin")
    assert res["fin"].cardinality == 7 and res["fin"].matched is None


def test_receiver_must_take_part() -> None:
    with pytest.raises(PsiError, match="needs the receiver"):
        _run(_sets(), "receiver", receiver="nobody")


def test_job_with_three_parties(tmp_path) -> None:  # noqa: ANN001
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from meshmpc.psi import KeyOptions, PsiJob, run_job

    keys = {"bank": ["a", "b", "c", "d"], "gov": ["d", "c", "x"], "fin": ["c", "y", "d", "b"]}
    for p, k in keys.items():
        pacsv.write_csv(pa.table({"id": k, "v": list(range(len(k)))}), tmp_path / f"{p}.csv")
    parties = list(keys)

    async def party(ctx):  # noqa: ANN001, ANN202
        job = PsiJob(input=tmp_path / f"{ctx.party}.csv", keys=KeyOptions(("id",)),
                     peers=[p for p in parties if p != ctx.party], receiver="gov",
                     output=tmp_path / f"{ctx.party}-out.csv", protocol="ecdh-mp",
                     reveal="receiver", workers=0)
        return await run_job(ctx, job)

    res = run_parties(parties, party)
    assert res["gov"].intersection == 2
    got = pacsv.read_csv(tmp_path / "gov-out.csv").column("id").to_pylist()
    assert sorted(got) == ["c", "d"]
    assert not (tmp_path / "bank-out.csv").exists() and not (tmp_path / "fin-out.csv").exists()


# ---- view-level: no party can compute any pairwise intersection -------------

def _recorded(monkeypatch, sets: dict, reveal: str, receiver: str):  # noqa: ANN001, ANN202
    from psi_views import Views, recording_scalar, run_recorded

    from meshmpc.psi import ecdh, multiparty

    views = Views()
    monkeypatch.setattr(multiparty, "new_scalar", recording_scalar(views))
    monkeypatch.setattr(ecdh, "new_scalar", recording_scalar(views))
    sizes = {p: len(v) for p, v in sets.items()}

    async def party(ctx):  # noqa: ANN001, ANN202
        with GroupPool(0) as pool:
            return await multiparty_psi(ctx, PARTIES, receiver, sets[ctx.party], sizes, reveal,
                                        pool)

    return run_recorded(PARTIES, party, views), views


def _decoder(sets: dict, views):  # noqa: ANN001, ANN202
    from psi_views import Decoder

    main = [s[0] for s in views.scalars.values()]
    extra = [x for s in views.scalars.values() for x in s[1:]]
    pools = [main] + [list(pair) for pair in itertools.combinations(extra, 2)]
    return Decoder(sets, pools)


@pytest.mark.parametrize("receiver", ["bank", "gov", "telco"])
def test_no_party_can_test_membership_beyond_its_output(monkeypatch, receiver: str) -> None:  # noqa: ANN001
    from psi_views import distinguishable_rows

    sets = _sets()
    res, views = _recorded(monkeypatch, sets, "receiver", receiver)
    decoder = _decoder(sets, views)
    output = set(res[receiver].matched.tolist())
    assert len(output) == 7
    for party in PARTIES:
        found = distinguishable_rows(party, views, sets, decoder)
        allowed = {receiver: output} if party == receiver else {}
        for owner, rows in found.items():
            assert rows <= allowed.get(owner, set()), (
                f"{party} can test membership of {owner}'s rows {sorted(rows)} "
                f"(its output: {sorted(allowed.get(owner, set()))})")
    # the receiver's view holds exactly one comparable pair: its own values and
    # the common set; the bank-and-gov-only items never match anywhere
    pair_only = {bytes(d) for d in sets["bank"][10:]}
    for party in PARTIES:
        found = distinguishable_rows(party, views, sets, decoder)
        for owner, rows in found.items():
            assert not {bytes(sets[owner][r]) for r in rows} & pair_only


def test_results_to_every_party_aligned_and_view_level(monkeypatch) -> None:  # noqa: ANN001
    from psi_views import distinguishable_rows

    sets = _sets()
    res, views = _recorded(monkeypatch, sets, "all", "bank")
    everyone = {bytes(d) for d in sets["fin"][:7]}
    order = None
    for party in PARTIES:
        got = [bytes(sets[party][i]) for i in res[party].matched]
        assert set(got) == everyone and len(got) == 7
        order = order or got
        assert got == order, f"{party}'s rows are not in the shared order"
    decoder = _decoder(sets, views)
    for party in PARTIES:
        output = set(res[party].matched.tolist())
        for owner, rows in distinguishable_rows(party, views, sets, decoder).items():
            assert owner == party and rows <= output, (party, owner, sorted(rows))


def test_two_parties_degenerate_to_ecdh() -> None:
    sets = {"bank": _digests(6), "gov": _digests(4)}
    sets["gov"] = np.concatenate([sets["gov"], sets["bank"][:3]])
    sizes = {p: len(v) for p, v in sets.items()}

    async def party(ctx):  # noqa: ANN001, ANN202
        with GroupPool(0) as pool:
            return await multiparty_psi(ctx, ["bank", "gov"], "bank", sets[ctx.party], sizes,
                                        "all", pool)

    res = run_parties(["bank", "gov"], party)
    assert sorted(res["bank"].matched.tolist()) == [0, 1, 2]
    assert [bytes(sets["gov"][i]) for i in res["gov"].matched] == \
        [bytes(sets["bank"][i]) for i in res["bank"].matched]


def test_job_aligns_rows_for_every_party(tmp_path) -> None:  # noqa: ANN001
    """The credit job's four-party alignment: every party gets the common rows, aligned."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from meshmpc.psi import KeyOptions, PsiJob, run_job

    keys = {"bank": ["a", "b", "c", "d", "e"], "gov": ["e", "d", "c", "x", "a"],
            "fin": ["c", "y", "d", "a", "e"], "telco": ["d", "a", "z", "e"]}
    for p, k in keys.items():
        pacsv.write_csv(pa.table({"id": k, "v": [f"{p}{i}" for i in range(len(k))]}),
                        tmp_path / f"{p}.csv")

    async def party(ctx):  # noqa: ANN001, ANN202
        job = PsiJob(input=tmp_path / f"{ctx.party}.csv", keys=KeyOptions(("id",)),
                     peers=[p for p in PARTIES if p != ctx.party], receiver="bank",
                     output=tmp_path / f"{ctx.party}-out.csv", protocol="ecdh-mp",
                     reveal="all", workers=0)
        return await run_job(ctx, job)

    run_parties(PARTIES, party)
    got = {p: pacsv.read_csv(tmp_path / f"{p}-out.csv").column("id").to_pylist()
           for p in PARTIES}
    assert sorted(got["bank"]) == ["a", "d", "e"]
    assert all(got[p] == got["bank"] for p in PARTIES)
