"""RR22 PSI and its OKVS: decode(encode(k, v), k) == v for every key, RR22
against a plaintext intersection across sizes, overlaps and duplicate keys,
both reveal modes, the table and bucketed file-to-file paths, transcript size."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from meshmpc.crypto.hashing import item_hash
from meshmpc.net import run_parties
from meshmpc.net.context import Context
from meshmpc.psi import KeyOptions, PsiJob, okvs, run_job
from meshmpc.psi.errors import PsiError
from meshmpc.psi.protocols import PROTOCOLS, run_protocol
from meshmpc.psi.rr22 import rr22_receiver, rr22_sender


def blocks(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * n), np.uint8).reshape(n, 16).copy()


@pytest.mark.parametrize("n", [0, 1, 2, 127, 1000, 100_000])
def test_okvs_decodes_every_key_to_its_value(n: int) -> None:
    keys, values = blocks(n), blocks(n)
    hashing, table = okvs.encode(keys, values)
    assert table.shape == (okvs.table_size(n), 16)
    assert np.array_equal(hashing.decode(table, keys), values)
    other = hashing.decode(table, blocks(50))  # non-members: unrelated values
    assert len({row.tobytes() for row in other}) == 50 if n > 200 else True


def test_okvs_rejects_duplicate_keys_with_different_values() -> None:
    keys = blocks(100)
    keys[7] = keys[3]
    with pytest.raises(okvs.OkvsError, match="duplicate"):
        okvs.encode(keys, blocks(100))


def test_okvs_checks_table_shape() -> None:
    hashing, table = okvs.encode(blocks(10), blocks(10))
    with pytest.raises(ValueError, match="shape"):
        hashing.decode(table[:-1], blocks(3))


def digests(items: list[str]) -> np.ndarray:
    return item_hash(items) if items else np.empty((0, 16), np.uint8)


async def psi_job(ctx: Context, sets: dict[str, list[str]], reveal: str) -> object:
    mine = digests(sets[ctx.party])
    peer = "s" if ctx.party == "r" else "r"
    before = ctx.traffic().bytes_sent
    if ctx.party == "r":
        out = await rr22_receiver(ctx, peer, mine, len(sets[peer]), reveal)  # type: ignore[arg-type]
    else:
        out = await rr22_sender(ctx, peer, mine, len(sets[peer]), reveal)  # type: ignore[arg-type]
    return out, ctx.traffic().bytes_sent - before


SHAPES = [(0, 10, 0), (1, 1, 1), (50, 3000, 20), (3000, 40, 40), (2000, 2000, 0),
          (2000, 2000, 2000), (20_000, 15_000, 7000)]


@pytest.mark.parametrize(("nr", "ns", "common"), SHAPES)
def test_rr22_matches_plaintext_intersection(nr: int, ns: int, common: int) -> None:
    rng = random.Random(nr * 7 + ns)
    shared = [f"c{rng.getrandbits(64)}" for _ in range(common)]
    r_items = shared + [f"r{rng.getrandbits(64)}" for _ in range(nr - common)]
    s_items = [f"s{rng.getrandbits(64)}" for _ in range(ns - common)] + shared[::-1]
    rng.shuffle(r_items)
    out = run_parties(["r", "s"], psi_job, {"r": r_items, "s": s_items}, "all")
    (r_out, _), (s_out, _) = out["r"], out["s"]
    want = set(r_items) & set(s_items)
    got_r = [r_items[i] for i in r_out.matched]
    got_s = [s_items[i] for i in s_out.matched]
    assert set(got_r) == want and len(got_r) == len(want)
    assert got_r == got_s  # same canonical order on both sides
    assert r_out.peer_size == ns and s_out.peer_size == nr


def test_rr22_duplicate_receiver_keys_all_match() -> None:
    r_items = ["a", "b", "a", "c", "d", "d"]
    s_items = ["a", "d", "x"]
    out = run_parties(["r", "s"], psi_job, {"r": r_items, "s": s_items}, "receiver")
    r_out, _ = out["r"]
    assert sorted(r_items[i] for i in r_out.matched) == ["a", "a", "d", "d"]
    assert out["s"][0].matched is None


def test_rr22_transcript_size() -> None:
    n = 1 << 16
    rng = random.Random(5)
    items = [f"k{rng.getrandbits(64)}" for _ in range(n)]
    out = run_parties(["r", "s"], psi_job, {"r": items, "s": items[::-1]}, "receiver")
    (r_out, r_sent), (_, s_sent) = out["r"], out["s"]
    assert r_out.cardinality == n
    m = okvs.table_size(n)
    width = 8  # 40 + 16 + 16 bits
    vole_bytes = 700_000  # base OTs + GGM OTs + base VOLE, independent of n at this size
    assert 16 * m < r_sent < 16 * m * 1.03 + vole_bytes
    assert width * n < s_sent < width * n * 1.03 + vole_bytes


def test_rr22_refuses_cardinality_only() -> None:
    async def job(ctx: Context) -> object:
        return await run_protocol(ctx, "rr22", ["r", "s"], "r", digests(["a"]),
                                  {"r": 1, "s": 1}, "cardinality", None)

    assert "rr22" in PROTOCOLS
    with pytest.raises(PsiError, match="cardinality"):
        run_parties(["r", "s"], job)


def _files(tmp: Path, a_keys: list[str], b_keys: list[str]) -> tuple[Path, Path]:
    a, b = tmp / "bank.csv", tmp / "gov.csv"
    pacsv.write_csv(pa.table({"credit_code": a_keys, "income": [len(k) for k in a_keys]}), a)
    pacsv.write_csv(pa.table({"credit_code": b_keys, "tax": [k[::-1] for k in b_keys]}), b)
    return a, b


def _run(tmp: Path, a: Path, b: Path, **over: object) -> dict:
    def job(party: str, path: Path) -> PsiJob:
        return PsiJob(input=path, keys=KeyOptions(("credit_code",)),
                      peers=["gov" if party == "bank" else "bank"], receiver="bank",
                      output=tmp / f"out-{party}.csv", workers=0, protocol="rr22",
                      **over)  # type: ignore[arg-type]

    jobs = {"bank": job("bank", a), "gov": job("gov", b)}

    async def party(ctx: Context) -> object:
        return await run_job(ctx, jobs[ctx.party])

    return run_parties(["bank", "gov"], party)


@pytest.mark.parametrize("bucket_rows", [None, 64])
def test_file_to_file_inner_join_with_payload(tmp_path: Path, bucket_rows: int | None) -> None:
    rng = random.Random(11)
    common = [f"{rng.getrandbits(64):016x}" for _ in range(300)]
    a_keys = common + [f"a{rng.getrandbits(64):016x}" for _ in range(200)] + [common[5]]
    b_keys = [f"b{rng.getrandbits(64):016x}" for _ in range(250)] + common[::-1]
    a, b = _files(tmp_path, a_keys, b_keys)
    over = {"bucket_rows": bucket_rows} if bucket_rows else {}
    res = _run(tmp_path, a, b, **over)
    assert res["bank"].intersection == 300
    read = pacsv.ConvertOptions(column_types={"credit_code": "string"})
    out_a = pacsv.read_csv(tmp_path / "out-bank.csv", convert_options=read).to_pylist()
    out_b = pacsv.read_csv(tmp_path / "out-gov.csv", convert_options=read).to_pylist()
    assert [r["credit_code"] for r in out_a] == [r["credit_code"] for r in out_b]
    assert set(r["credit_code"] for r in out_a) == set(common)
    assert all(r["tax"] == r["credit_code"][::-1] for r in out_b)
    if bucket_rows:  # per-step times summed over the buckets
        bank, gov = res["bank"].phases, res["gov"].phases
        assert bank["protocol.decode"] > 0 and "protocol.decode.cpu" in bank
        assert gov["protocol.oprf_values"] > 0 and "protocol.match" not in gov


def test_output_hash_is_fixed_key_aes_ccr_of_the_value() -> None:
    """Known answer: H_out(u) = AES_k(sigma(u)) ^ sigma(u) truncated, k = OUT_DOMAIN,
    sigma(lo || hi) = (hi || lo ^ hi) on 8-byte halves (pyca/cryptography's AES,
    independent of our kernels); a different key gives unrelated outputs."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from meshmpc.psi.rr22 import OUT_DOMAIN, out_hash

    values = blocks(3000)
    got = out_hash(values, 11)
    aes = Cipher(algorithms.AES(OUT_DOMAIN), modes.ECB()).encryptor()
    for i in (0, 1, 7, 8, 1234, 2999):
        lo, hi = values[i, :8].tobytes(), values[i, 8:].tobytes()
        s = hi + bytes(a ^ b for a, b in zip(lo, hi, strict=True))
        ref = bytes(a ^ b for a, b in zip(aes.update(s), s, strict=True))[:11]
        assert got[i].tobytes() == ref
    assert got.shape == (3000, 11)
    assert len({row.tobytes() for row in got}) == 3000
