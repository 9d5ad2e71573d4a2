"""``meshmpc bench ot``: base OT and OT extension, two processes over the real mesh.

* ``ot.base``: 128 Chou-Orlandi base OTs (``wall_s``; ``cpu_s`` of the busier party).
* ``ot.cot`` / ``ot.rot`` / ``ot.chosen``: IKNP correlated (global delta),
  random and chosen-message OT in one batch of ``--n`` (``ots_per_s``;
  ``bytes_per_ot`` sums the bytes both parties sent, AEAD framing included;
  ``ots_per_cpu_s`` divides by the busier party's CPU time, which stays
  meaningful when other jobs share the machine).
* ``ot.cot_online``: the same COTs drawn from a pre-computed stock
  (``prefill``), so only the 1-bit derandomisation travels online.
* ``ot.cot_softspoken_k{k}``: SoftSpokenOT correlated OTs (128/k bits per OT).
* ``ot.kkrt``: KKRT OPRF batch of ``--n-kkrt`` inputs (``oprfs_per_s``).
* ``ot.vole`` / ``ot.silent_rot``: silent VOLE over GF(2^128) and silent random
  OT (:mod:`meshmpc.ot.vole`), one batch of ``--n-vole`` (``per_s``,
  ``bytes_per`` both parties' bytes per output).

Both parties run as separate processes (``meshmpc.net.launch.run_local``,
pinned to separate CPUs) over the encrypted loopback mesh; a barrier precedes
each timed batch and a final acknowledgement closes it. Figures are medians of
``--repeats`` batches after one warm-up batch, all on one set of base OTs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

from meshmpc_bench._common import add_common, emit, median, wan_fields, wan_profile

from meshmpc.crypto.prg import Prg
from meshmpc.net.context import Context
from meshmpc.net.launch import run_local
from meshmpc.ot.iknp import CotReceiver, CotSender
from meshmpc.ot.kkrt import KkrtReceiver, KkrtSender
from meshmpc.ot.softspoken import SoftSpokenReceiver, SoftSpokenSender
from meshmpc.ot.vole import SilentVoleReceiver, SilentVoleSender

SENDER, RECEIVER = "a", "b"


async def _timed(
    ctx: Context, name: str, op: Callable[[], Awaitable[object]]
) -> tuple[float, int, float]:
    """Wall time, bytes sent and CPU time of this party in one batch.

    The batch is fenced by a barrier and an ack. CPU time (all threads of the
    process) shows the party's own cost when the machine is shared.

    Only sent bytes are counted: a peer may start sending before this party
    leaves the barrier, so received bytes could fall outside the window.
    """
    peer = ctx.peers[0]
    await ctx.barrier(name)
    before = ctx.traffic()
    start, cpu_start = time.perf_counter(), time.process_time()
    await op()
    await ctx.exchange(peer, f"{name}/done", None)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    after = ctx.traffic()
    return wall, after.bytes_sent - before.bytes_sent, cpu


async def _repeat(
    ctx: Context, name: str, repeats: int, op: Callable[[], Awaitable[object]]
) -> dict[str, float]:
    await _timed(ctx, f"{name}/warm", op)
    runs = [await _timed(ctx, f"{name}/{i}", op) for i in range(repeats)]
    return _summary(runs)


def _summary(runs: list[tuple[float, int, float]]) -> dict[str, float]:
    return {"wall_s": median([r[0] for r in runs]), "bytes": median([r[1] for r in runs]),
            "cpu_s": median([r[2] for r in runs])}


async def base_ops(ctx: Context, repeats: int) -> dict[str, float]:
    peer, counter = ctx.peers[0], iter(range(10**6))

    async def op() -> object:
        name = f"base{next(counter)}"
        if ctx.party == SENDER:
            return await CotSender.setup(ctx, peer, Prg(), name)
        return await CotReceiver.setup(ctx, peer, Prg(), name)

    return await _repeat(ctx, "base", repeats, op)


async def extension_ops(ctx: Context, n: int, repeats: int) -> dict[str, dict[str, float]]:
    peer = ctx.peers[0]
    results = {}
    if ctx.party == SENDER:
        s = await CotSender.setup(ctx, peer)
        m0 = Prg().blocks(n)
        ops: dict[str, Callable[[], Awaitable[object]]] = {
            "cot": lambda: s.cot(n), "rot": lambda: s.rot(n), "chosen": lambda: s.send(m0, m0)}
    else:
        r = await CotReceiver.setup(ctx, peer)
        choices = Prg().bits(n)
        ops = {"cot": lambda: r.cot(choices), "rot": lambda: r.rot(choices),
               "chosen": lambda: r.receive(choices)}
    for name, op in ops.items():
        results[name] = await _repeat(ctx, name, repeats, op)
    direction = s if ctx.party == SENDER else r
    runs = []
    for i in range(repeats + 1):
        await direction.prefill(n)  # untimed: the offline phase
        runs.append(await _timed(ctx, f"online/{i}", ops["cot"]))
    results["cot_online"] = _summary(runs[1:])
    return results


async def softspoken_ops(ctx: Context, n: int, k: int, repeats: int) -> dict[str, float]:
    """SoftSpoken correlated OTs (chosen choices) in batches of n."""
    peer = ctx.peers[0]
    if ctx.party == SENDER:
        s = await SoftSpokenSender.setup(ctx, peer, k=k)
        return await _repeat(ctx, f"ss{k}", repeats, lambda: s.cot(n))
    r = await SoftSpokenReceiver.setup(ctx, peer, k=k)
    choices = Prg().bits(n)
    return await _repeat(ctx, f"ss{k}", repeats, lambda: r.cot(choices))


async def kkrt_ops(ctx: Context, n: int, repeats: int) -> dict[str, float]:
    peer = ctx.peers[0]
    if ctx.party == SENDER:
        sender = await KkrtSender.setup(ctx, peer)
        return await _repeat(ctx, "kkrt", repeats, lambda: sender.extend(n))
    receiver = await KkrtReceiver.setup(ctx, peer)
    inputs = Prg().blocks(n)
    return await _repeat(ctx, "kkrt", repeats, lambda: receiver.encode(inputs))


async def vole_ops(ctx: Context, n: int, repeats: int) -> dict[str, dict[str, float]]:
    """Silent VOLE and silent random OT batches of n on one set-up."""
    peer = ctx.peers[0]
    if ctx.party == SENDER:
        s = await SilentVoleSender.setup(ctx, peer)
        ops: dict[str, Callable[[], Awaitable[object]]] = {
            "vole": lambda: s.extend(n), "silent_rot": lambda: s.rot(n)}
    else:
        r = await SilentVoleReceiver.setup(ctx, peer)
        ops = {"vole": lambda: r.extend(n), "silent_rot": lambda: r.rot(n)}
    return {name: await _repeat(ctx, name, repeats, op) for name, op in ops.items()}


async def job(
    ctx: Context, n: int, n_kkrt: int, repeats: int, ks: list[int], n_vole: int = 1 << 20
) -> dict[str, Any]:
    """Everything measured in one launch: base OT, extension, SoftSpoken, KKRT, VOLE."""
    ext = await extension_ops(ctx, n, repeats)
    for k in ks:
        ext[f"cot_softspoken_k{k}"] = await softspoken_ops(ctx, n, k, repeats)
    return {
        "base": await base_ops(ctx, repeats),
        "ext": ext,
        "kkrt": await kkrt_ops(ctx, n_kkrt, repeats),
        "vole": await vole_ops(ctx, n_vole, repeats),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench ot", description=__doc__)
    add_common(parser)
    parser.add_argument("--n", type=int, default=1 << 23, help="OTs per extension batch")
    parser.add_argument("--n-kkrt", type=int, default=1 << 20, help="inputs per KKRT batch")
    parser.add_argument("--n-vole", type=int, default=1 << 20, help="outputs per VOLE batch")
    parser.add_argument("--softspoken-k", type=int, nargs="*", default=[2, 4, 8],
                        help="SoftSpoken k values to measure (none to skip)")
    args = parser.parse_args(argv)
    kwargs = {"n": args.n, "n_kkrt": args.n_kkrt, "repeats": args.repeats,
              "ks": list(args.softspoken_k), "n_vole": args.n_vole}
    out = run_local([SENDER, RECEIVER], "meshmpc_bench.ot:job", kwargs,
                    wan=wan_profile(args), pin_cpus=True)
    common = {"encrypted": True, **wan_fields(args)}
    base_wall = max(out[p]["base"]["wall_s"] for p in out)
    base_cpu = max(out[p]["base"]["cpu_s"] for p in out)
    emit({"bench": "ot.base", "count": 128, **common, "wall_s": base_wall, "cpu_s": base_cpu},
         args.json)
    names = ["cot", "rot", "chosen", "cot_online"]
    names += [f"cot_softspoken_k{k}" for k in args.softspoken_k]
    for name in names:
        wall = max(out[p]["ext"][name]["wall_s"] for p in out)
        moved = sum(out[p]["ext"][name]["bytes"] for p in out)
        cpu = max(out[p]["ext"][name]["cpu_s"] for p in out)
        emit({"bench": f"ot.{name}", "n": args.n, **common, "ots_per_s": args.n / wall,
              "bytes_per_ot": moved / args.n, "ots_per_cpu_s": args.n / cpu}, args.json)
    emit({"bench": "ot.kkrt", "n": args.n_kkrt, **common,
          "oprfs_per_s": args.n_kkrt / max(out[p]["kkrt"]["wall_s"] for p in out),
          "bytes_per_oprf": sum(out[p]["kkrt"]["bytes"] for p in out) / args.n_kkrt}, args.json)
    for name in ("vole", "silent_rot"):
        emit({"bench": f"ot.{name}", "n": args.n_vole, **common,
              "per_s": args.n_vole / max(out[p]["vole"][name]["wall_s"] for p in out),
              "bytes_per": sum(out[p]["vole"][name]["bytes"] for p in out) / args.n_vole},
             args.json)
    return 0
