"""Unbalanced PSI: exact results, and the server's preprocessing is cached and reused."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from meshmpc.net import run_parties
from meshmpc.psi.unbalanced import unbalanced_client, unbalanced_server


def _digests(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * n), np.uint8).reshape(-1, 16)


def _run(server_set: np.ndarray, client_set: np.ndarray, tmp: Path, reveal: str = "all") -> dict:
    async def party(ctx):  # noqa: ANN001, ANN202
        if ctx.party == "bank":
            return await unbalanced_client(ctx, "gov", client_set, reveal, tmp / "client")
        return await unbalanced_server(ctx, "bank", server_set, reveal, tmp / "server", 1)

    return run_parties(["bank", "gov"], party)


def test_matches_and_cache_reuse(tmp_path: Path) -> None:
    server = _digests(300)
    client = np.concatenate([_digests(5), server[[7, 250, 3]]])
    res = _run(server, client, tmp_path)
    assert sorted(res["bank"].matched.tolist()) == [5, 6, 7]
    assert np.array_equal(client[res["bank"].matched], server[res["gov"].matched])
    cached = list((tmp_path / "server").glob("unbalanced-*.npz"))
    assert len(cached) == 1 and oct(cached[0].stat().st_mode & 0o777) == "0o600"
    before = cached[0].stat().st_mtime_ns
    res2 = _run(server, client[:6], tmp_path, reveal="receiver")
    assert res2["bank"].matched.tolist() == [5] and res2["gov"].matched is None
    assert cached[0].stat().st_mtime_ns == before  # reused, not recomputed


def test_empty_client(tmp_path: Path) -> None:
    res = _run(_digests(10), _digests(0), tmp_path)
    assert res["bank"].cardinality == 0 and res["gov"].cardinality == 0


def test_stale_caches_are_rejected_not_misread(tmp_path: Path) -> None:
    """Caches written before the table format existed (or of another format) are never used:
    the server rebuilds its table, the client fetches it again; results stay exact."""
    from meshmpc.psi.unbalanced import CACHE_FORMAT, _set_fingerprint

    server = _digests(40)
    client = np.concatenate([_digests(3), server[[1, 30]]])
    server_dir, client_dir = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client_dir.mkdir()
    junk = np.frombuffer(os.urandom(40 * 16), np.uint8).reshape(40, 16)
    old_id = np.frombuffer(os.urandom(16), np.uint8)
    np.savez(server_dir / f"unbalanced-{_set_fingerprint(server)}.npz",
             key=np.frombuffer(os.urandom(32), np.uint8), perm=np.arange(40), table=junk,
             set_id=old_id)
    np.savez(client_dir / "unbalanced-table-gov.npz", set_id=old_id, table=junk)
    res = _run(server, client, tmp_path)
    assert sorted(res["bank"].matched.tolist()) == [3, 4]
    with np.load(server_dir / f"unbalanced-{_set_fingerprint(server)}.npz") as c:
        assert bytes(c["format"]).decode() == CACHE_FORMAT
    with np.load(client_dir / "unbalanced-table-gov.npz") as c:
        assert bytes(c["format"]).decode() == CACHE_FORMAT
        assert not np.array_equal(c["table"], junk)
