"""Unbalanced PSI: exact results; the server's preprocessing is cached (sealed) and reused."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import numpy as np

from meshmpc.data.vault import Vault, is_sealed
from meshmpc.net import run_parties
from meshmpc.psi.unbalanced import load_cache, unbalanced_client, unbalanced_server


def _digests(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * n), np.uint8).reshape(-1, 16)


def _run(server_set: np.ndarray, client_set: np.ndarray, tmp: Path, reveal: str = "all",
         vaults: dict[str, Vault] | None = None) -> dict:
    vaults = vaults or {}

    async def party(ctx):  # noqa: ANN001, ANN202
        if ctx.party == "bank":
            return await unbalanced_client(ctx, "gov", client_set, reveal, tmp / "client",
                                           vaults.get("bank"))
        return await unbalanced_server(ctx, "bank", server_set, reveal, tmp / "server", 1,
                                       vault=vaults.get("gov"))

    return run_parties(["bank", "gov"], party)


def test_matches_and_cache_reuse(tmp_path: Path) -> None:
    server = _digests(300)
    client = np.concatenate([_digests(5), server[[7, 250, 3]]])
    res = _run(server, client, tmp_path)
    assert sorted(res["bank"].matched.tolist()) == [5, 6, 7]
    assert np.array_equal(client[res["bank"].matched], server[res["gov"].matched])
    cached = list((tmp_path / "server").glob("unbalanced-*"))
    assert len(cached) == 1 and oct(cached[0].stat().st_mode & 0o777) == "0o600"
    before = cached[0].stat().st_mtime_ns
    res2 = _run(server, client[:6], tmp_path, reveal="receiver")
    assert res2["bank"].matched.tolist() == [5] and res2["gov"].matched is None
    assert cached[0].stat().st_mtime_ns == before  # reused, not recomputed


def test_caches_are_sealed_at_both_parties(tmp_path: Path) -> None:
    """The server's OPRF key and table and the client's copy of the table are on disk only
    as ciphertext under each party's vault; another key does not open them."""
    vaults = {"bank": Vault.ephemeral(), "gov": Vault.ephemeral("gm")}
    server = _digests(200)
    _run(server, server[:4], tmp_path, vaults=vaults)
    [server_file] = (tmp_path / "server").glob("unbalanced-*")
    [client_file] = (tmp_path / "client").glob("unbalanced-table-*")
    state = load_cache(server_file, vaults["gov"])
    client_state = load_cache(client_file, vaults["bank"])
    assert state is not None and client_state is not None
    assert np.array_equal(state["table"], client_state["table"])
    for path in (server_file, client_file):
        raw = path.read_bytes()
        assert is_sealed(path)
        assert state["table"][:8].tobytes() not in raw and state["table"][0].tobytes() not in raw
    assert state["key"].tobytes() not in server_file.read_bytes()
    assert server_file.read_bytes()[:4] == b"MSC1"  # the gm suite seals with SM4-GCM
    assert load_cache(server_file, Vault.ephemeral("gm")) is None  # another key: unusable


def test_empty_client(tmp_path: Path) -> None:
    res = _run(_digests(10), _digests(0), tmp_path)
    assert res["bank"].cardinality == 0 and res["gov"].cardinality == 0


def test_stale_caches_are_rejected_not_misread(tmp_path: Path) -> None:
    """Caches in clear from an older version are deleted; sealed ones of another format or
    under another key are never used: the server rebuilds its table, the client fetches it
    again; results stay exact."""
    from meshmpc.psi.unbalanced import CACHE_FORMAT, _set_fingerprint, save_cache

    vaults = {"bank": Vault.ephemeral(), "gov": Vault.ephemeral()}
    server = _digests(40)
    client = np.concatenate([_digests(3), server[[1, 30]]])
    server_dir, client_dir = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client_dir.mkdir()
    junk = np.frombuffer(os.urandom(40 * 16), np.uint8).reshape(40, 16)
    old_id = np.frombuffer(os.urandom(16), np.uint8)
    plain = server_dir / f"unbalanced-{_set_fingerprint(server)}.npz"
    np.savez(plain, key=np.frombuffer(os.urandom(32), np.uint8), perm=np.arange(40),
             table=junk, set_id=old_id)
    sealed = plain.with_suffix(".sealed")
    save_cache(sealed, Vault.ephemeral(), {"key": junk[0], "perm": np.arange(40),
                                           "table": junk, "set_id": old_id})  # other key
    client_cache = client_dir / "unbalanced-table-gov.sealed"
    save_cache(client_cache, vaults["bank"], {"set_id": old_id, "table": junk})
    with mock.patch("meshmpc.psi.unbalanced.CACHE_FORMAT", "unbalanced-0"):  # other format
        save_cache(client_cache, vaults["bank"], {"set_id": old_id, "table": junk})
    res = _run(server, client, tmp_path, vaults=vaults)
    assert sorted(res["bank"].matched.tolist()) == [3, 4]
    assert not plain.exists()
    state = load_cache(sealed, vaults["gov"])
    assert state is not None and not np.array_equal(state["table"], junk)
    mine = load_cache(client_cache, vaults["bank"])
    assert mine is not None and np.array_equal(mine["table"], state["table"])
    assert CACHE_FORMAT.startswith("unbalanced-2")
