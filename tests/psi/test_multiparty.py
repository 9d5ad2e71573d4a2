"""Multi-party ECDH PSI: the receiver gets exactly the common items of all parties."""

from __future__ import annotations

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


def test_reveal_all_is_refused() -> None:
    with pytest.raises(PsiError, match="receiver only"):
        _run(_sets(), "all")


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
