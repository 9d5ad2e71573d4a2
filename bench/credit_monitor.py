"""``meshmpc bench credit_monitor --loans N --json``: one month of receiver-only monitoring.

Four parties as separate processes over the encrypted mesh on loopback. Each
partner holds 90 % of the bank's N loans plus as many other firms; synthetic
behaviour points and flags stand in for its monthly snapshot (the scoring of
a snapshot is a few numpy passes, :mod:`meshmpc_credit.inloan.signals`). The
code measured is the component's: the OPRF set-up over the padded book
(``setup_s``, once per book and partner) and one month (``wall_s``: masks,
sealing, sending the sealed tables, opening and summing at the bank).
Prints ``{"bench": "credit.monitor", "loans", "wall_s", "setup_s", "bytes_sent",
"peak_rss_mb", ...}``; the bank's sums are checked against the plaintext.

``--setup dealer`` (benchmark only, loudly named, never the component's
behaviour) replaces the OPRF set-up by a PRF key the partner hands the bank,
so both derive the same per-key rows without the 3 x pad_to group operations
per partner: the month measured is byte for byte the component's, and at
10^6 loans the set-up alone would take most of an hour on a loaded 2-core
machine. Measure the real set-up at a smaller ``--loans`` (it is linear in
``pad_to``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import numpy as np
import pyarrow as pa
from meshmpc_bench._common import add_common, emit, wan_fields, wan_profile
from meshmpc_credit.inloan import feed
from meshmpc_credit.inloan.component import records_of

from meshmpc.crypto.hashing import item_hash
from meshmpc.crypto.oprf import OprfKey
from meshmpc.ml.predict import FRAC_BITS, key_masks, pairwise_seeds
from meshmpc.mpc.ring import RING64
from meshmpc.net import Context

PARTNERS = ["gov", "fin", "telco"]
PARTIES = ["bank", *PARTNERS]


def _keys(ids: np.ndarray) -> pa.Array:
    """Credit-code-like keys as one contiguous arrow array (pa.array of a numpy string
    array of 10^6 items or more returns a ChunkedArray)."""
    keys = pa.array(np.char.add("91", np.char.zfill(ids.astype(str), 16)))
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


def partner_rows(party: str, loans: int) -> np.ndarray:
    """The partner's firm ids: 90 % of the bank's loans (0..loans-1) and others."""
    salt = PARTNERS.index(party) + 1
    held = np.arange(loans)[(np.arange(loans) * 7 + salt) % 10 != 0]
    return np.concatenate([held, loans * (salt + 1) + np.arange(loans - held.size)])


def points_of(ids: np.ndarray, party: str) -> np.ndarray:
    """Deterministic synthetic points so the bank can check its sums."""
    return -((ids * (PARTNERS.index(party) + 3)) % 61).astype(np.float64)


def dealer_rows(keys: pa.Array, secret: bytes) -> np.ndarray:
    """``--setup dealer``: (n, 32) per-key rows from a shared PRF key (benchmark only)."""
    items = feed.key_items(keys)
    return np.hstack([item_hash(items, key=secret + b"a"), item_hash(items, key=secret + b"b")])


async def partner(ctx: Context, loans: int, pad_to: int, mode: str) -> dict[str, Any]:
    ids = partner_rows(ctx.party, loans)
    keys, key = _keys(ids), OprfKey.generate()
    start = time.perf_counter()
    seeds = await pairwise_seeds(ctx.scope("seeds"), PARTNERS)
    own = ctx.scope(ctx.party)
    if mode == "dealer":
        await own.scope("setup").send("bank", "dealer-key", key.scalar)
        prf_rows = dealer_rows(keys, key.scalar)
    else:
        own_rows = asyncio.create_task(asyncio.to_thread(key.evaluate_rows,
                                                         feed.key_items(keys)))
        await feed.answer_book(own.scope("setup"), "bank", key, pad_to)  # meanwhile: own
        prf_rows = await own_rows
    setup = time.perf_counter() - start
    await ctx.barrier("month")
    start = time.perf_counter()
    masks = key_masks(keys, seeds, ctx.party, PARTNERS, "month-1")
    words = RING64.add(RING64.encode(points_of(ids, ctx.party), FRAC_BITS), masks)
    tags, sealed = feed.seal_month(prf_rows, records_of(words, (ids % 3 == 0).astype(np.uint8)), 1)
    await feed.send_month(own.scope("feed"), "bank", tags, sealed, 1)
    return {"setup": setup, "month": time.perf_counter() - start}


async def _dealer_book(ctx: Context, partner: str, keys: pa.Array) -> np.ndarray:
    return dealer_rows(keys, bytes(await ctx.recv(partner, "dealer-key")))


async def bank(ctx: Context, loans: int, pad_to: int, mode: str) -> dict[str, Any]:
    keys = _keys(np.arange(loans))
    start = time.perf_counter()
    if mode == "dealer":
        prf = await asyncio.gather(*[_dealer_book(ctx.scope(p).scope("setup"), p, keys)
                                     for p in PARTNERS])
    else:
        opened = await feed.open_books({p: ctx.scope(p).scope("setup") for p in PARTNERS},
                                       keys, pad_to)
        prf = [opened[p] for p in PARTNERS]
    setup = time.perf_counter() - start
    await ctx.barrier("month")
    start = time.perf_counter()
    tables = await asyncio.gather(*[feed.recv_month(ctx.scope(p).scope("feed"), p, 1)
                                    for p in PARTNERS])
    total, found = np.zeros(loans, np.uint64), np.ones(loans, bool)
    for rows, (tags, sealed) in zip(prf, tables, strict=True):
        hit, records = feed.open_month(rows, tags, sealed, 1)
        found &= hit
        total = RING64.add(total, np.ascontiguousarray(records[:, :8]).view("<u8").ravel())
    joint = RING64.decode(total, FRAC_BITS)
    month = time.perf_counter() - start
    ids = np.arange(loans)
    want = np.sum([points_of(ids, p) for p in PARTNERS], axis=0)
    held = np.ones(loans, bool)
    for p in PARTNERS:
        held &= np.isin(ids, partner_rows(p, loans))
    ok = bool(np.array_equal(found, held) and np.allclose(joint[found], want[found], atol=1e-3))
    return {"setup": setup, "month": month, "checked": ok, "scored": int(found.sum())}


async def party_job(ctx: Context, loans: int, pad_to: int, setup: str = "oprf"
                    ) -> dict[str, Any]:
    """One party of the benchmark."""
    await ctx.barrier("start")
    before = ctx.traffic().bytes_sent
    fn = bank if ctx.party == "bank" else partner
    out = await fn(ctx, loans, pad_to, setup)
    out["sent"] = ctx.traffic().bytes_sent - before
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run once and return the JSON record."""
    from meshmpc.net.launch import run_local

    pad_to = 1 << max(args.loans - 1, 1).bit_length()
    result = run_local(PARTIES, "meshmpc_bench.credit_monitor:party_job",
                       {"loans": args.loans, "pad_to": pad_to, "setup": args.setup},
                       wan=wan_profile(args),
                       timeout=args.timeout)
    if not result["bank"]["checked"]:
        raise SystemExit("credit.monitor: the bank's joint scores differ from the plaintext")
    return {"bench": "credit.monitor", "loans": args.loans,
            "wall_s": round(max(result[p]["month"] for p in PARTIES), 3),
            "setup_s": round(max(result[p]["setup"] for p in PARTIES), 3),
            "bytes_sent": int(sum(result[p]["sent"] for p in PARTIES)),
            "peak_rss_mb": round(max(result[p].get("peak_rss_mb", 0) for p in PARTIES), 1),
            "pad_to": pad_to, "scored": result["bank"]["scored"], "checked": True,
            "setup": args.setup,
            "parties": len(PARTIES), **wan_fields(args)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench credit_monitor", description=__doc__)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--setup", choices=["oprf", "dealer"], default="oprf",
                        help="oprf: the component's set-up; dealer: BENCHMARK ONLY, the "
                             "partner hands the bank a PRF key (the month is unchanged)")
    add_common(parser)
    args = parser.parse_args(argv)
    emit(run(args), args.json)
    return 0
