"""A party's recorded view reveals nothing beyond its documented output (PSI, all modes).

Structural and statistical checks on every message a party receives:
* KKRT: the sender's view is the same shape for any receiver set of a given
  size; result positions index the sender's items (never which cuckoo hash
  function matched); cardinality-only is refused.
* ECDH (receiver, all, cardinality): decoding every value with the ground
  truth, no party can test the membership of any row beyond its output.
* Unbalanced: the server sees only fresh, uniformly blinded group elements.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from psi_views import Decoder, Views, distinguishable_rows, recording_scalar, run_recorded

from meshmpc.psi import ecdh
from meshmpc.psi.ecdh import ecdh_receiver, ecdh_sender
from meshmpc.psi.errors import PsiError
from meshmpc.psi.group import GroupPool
from meshmpc.psi.kkrt import kkrt_receiver, kkrt_sender
from meshmpc.psi.unbalanced import unbalanced_client, unbalanced_server

PAIR = ["bank", "gov"]


def _digests(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * n), np.uint8).reshape(-1, 16)


def _shape(view: list) -> list[tuple[str, str, tuple]]:
    """Tags and array shapes (or scalar values) of a view, in order."""
    out = []
    for peer, tag, obj in view:
        arr = np.asarray(obj)
        out.append((peer, tag, arr.shape if arr.dtype.kind in "uib" and arr.ndim else ("v",)))
    return out


def _kkrt(bank: np.ndarray, gov: np.ndarray, reveal: str) -> tuple[dict, Views]:
    views = Views()

    async def party(ctx):  # noqa: ANN001, ANN202
        if ctx.party == "bank":
            return await kkrt_receiver(ctx, "gov", bank, len(gov), reveal)
        return await kkrt_sender(ctx, "bank", gov, len(bank), reveal)

    return run_recorded(PAIR, party, views), views


def test_kkrt_results_to_both_send_positions_modulo_n() -> None:
    gov = _digests(400)
    bank = np.concatenate([_digests(100), gov[::4]])
    res, views = _kkrt(bank, gov, "all")
    assert np.array_equal(bank[res["bank"].matched], gov[res["gov"].matched])
    assert len(res["gov"].matched) == 100
    (positions,) = [np.asarray(o) for _, t, o in views.received["gov"] if t == "kkrt/result"]
    assert positions.max() < len(gov), "the sender learns which cuckoo hash function matched"


def test_kkrt_sender_view_does_not_depend_on_receiver_items() -> None:
    gov = _digests(300)
    _, v1 = _kkrt(gov[:150].copy(), gov, "receiver")  # every item matches
    _, v2 = _kkrt(_digests(150), gov, "receiver")  # none does
    assert _shape(v1.received["gov"]) == _shape(v2.received["gov"])
    u1 = np.concatenate([np.asarray(o).ravel() for _, t, o in v1.received["gov"]
                         if t.startswith("kkrt/u/")])
    u2 = np.concatenate([np.asarray(o).ravel() for _, t, o in v2.received["gov"]
                         if t.startswith("kkrt/u/")])
    for u in (u1, u2):  # the extension matrix looks uniform either way
        bits = np.unpackbits(u).mean()
        assert abs(bits - 0.5) < 0.01


@pytest.mark.parametrize("side", ["receiver", "sender"])
def test_kkrt_refuses_cardinality(side: str) -> None:
    async def party(ctx):  # noqa: ANN001, ANN202
        if side == "receiver":
            return await kkrt_receiver(ctx, "gov", _digests(4), 4, "cardinality")
        return await kkrt_sender(ctx, "bank", _digests(4), 4, "cardinality")

    with pytest.raises(PsiError, match="cardinality"):
        run_recorded(["bank"], party, Views())


def _ecdh(monkeypatch: pytest.MonkeyPatch, bank: np.ndarray, gov: np.ndarray,
          reveal: str) -> tuple[dict, Views]:
    views = Views()
    monkeypatch.setattr(ecdh, "new_scalar", recording_scalar(views))

    async def party(ctx):  # noqa: ANN001, ANN202
        with GroupPool(0) as pool:
            if ctx.party == "bank":
                return await ecdh_receiver(ctx, "gov", bank, len(gov), reveal, pool)
            return await ecdh_sender(ctx, "bank", gov, len(bank), reveal, pool)

    return run_recorded(PAIR, party, views), views


@pytest.mark.parametrize("reveal", ["receiver", "all", "cardinality"])
def test_ecdh_views_reveal_only_the_output(monkeypatch: pytest.MonkeyPatch, reveal: str) -> None:
    gov = _digests(20)
    bank = np.concatenate([_digests(9), gov[3:8]])
    sets = {"bank": bank, "gov": gov}
    res, views = _ecdh(monkeypatch, bank, gov, reveal)
    assert res["bank"].cardinality == 5
    decoder = Decoder(sets, [[s[0] for s in views.scalars.values()]])
    for party in PAIR:
        out = res[party].matched
        allowed = set(out.tolist()) if out is not None else set()
        for owner, rows in distinguishable_rows(party, views, sets, decoder).items():
            assert owner == party and rows <= allowed, (reveal, party, owner, sorted(rows))
    if reveal == "cardinality":
        assert res["bank"].matched is None


def test_unbalanced_server_sees_fresh_uniform_blinding(tmp_path: Path) -> None:
    server = _digests(50)
    queries = {"hit": server[:8].copy(), "miss": _digests(8)}
    seen: dict[str, list[bytes]] = {}
    for name, client in [*queries.items(), ("hit-again", queries["hit"])]:
        views = Views()

        async def party(ctx, client=client):  # noqa: ANN001, ANN202
            if ctx.party == "bank":
                return await unbalanced_client(ctx, "gov", client, "receiver", tmp_path / "c")
            return await unbalanced_server(ctx, "bank", server, "receiver",
                                           tmp_path / "s", 1)

        res = run_recorded(PAIR, party, views)
        assert res["bank"].cardinality == (8 if name != "miss" else 0)
        (blob,) = [bytes(o) for _, t, o in views.received["gov"] if t == "ub/blinded"]
        seen[name] = [blob[i : i + 32] for i in range(0, len(blob), 32)]
        assert [t for _, t, _o in views.received["gov"]] == ["ub/have", "ub/blinded"]
    assert {len(v) for v in seen.values()} == {8}
    assert not set(seen["hit"]) & set(seen["hit-again"]), "blinding is not fresh"
    for points in seen.values():
        bits = np.unpackbits(np.frombuffer(b"".join(points), np.uint8)).mean()
        assert abs(bits - 0.5) < 0.06
