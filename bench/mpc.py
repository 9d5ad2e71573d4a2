"""Secure computation engine benchmark: one operator on secret-shared data.

``meshmpc bench mpc --suite semi2k|rep3 --triples dealer|ot|none --op
mul|less|sigmoid|matmul|lr_step|trunc|trunc_exact --n N --transport memory|tcp
--parties P --json`` prints ``{"bench": "mpc", "suite", "triples", "op", "n",
"transport", "wall_s", "cpu_s", "load", "bytes_sent", ...}``: the median over
``--repeats`` runs of the slowest party's wall time for the operator (inputs are
shared before the clock starts; triple generation, dealer or OT, is inside the
clock; semi2k's cache of opened matrices is cleared before each run, so lr_step
opens X once per run), and the bytes the busiest party sent during it
(``bytes_sent_all``: summed over all parties).
``cpu_s`` is the CPU time of the whole run (memory: this process, every party;
tcp: summed over the party processes); ``load`` the 1-minute load average
before it.

``--compare-spu PYTHON`` then runs the same operator at the same size in
SecretFlow SPU's simulator with that interpreter (a separate venv holding
``spu``, never our dependency; script ``_spu_peer.py`` beside this one) and adds
``spu_wall_s``, ``spu_cpu_s``, ``spu_protocol`` and ``ratio`` = spu_wall_s /
wall_s (above 1: meshmpc is faster). The SPU protocol is CHEETAH for two-party
semi2k with OT triples (both dealer-free), SEMI2K (a trusted third party makes
its triples) for the dealer or more than two parties, ABY3 for rep3;
``--spu-protocol`` overrides it.

Operators (fixed point, Z_2^64, f = 16): ``mul`` and ``less`` on two secret
vectors of n; ``sigmoid`` (poly8, error <= 5e-4 on [-10, 10]) on n;
``matmul``: secret n x 100 matrix by secret 100 x 1 vector; ``lr_step``: one
full-batch logistic-regression gradient step w - lr X^T (0.5 + 0.25 X w - y)/n
on a secret n x 100 matrix, secret w and y; ``trunc`` and ``trunc_exact``:
the suite's truncation by 16 bits of a secret vector of n (semi2k
with N > 2 parties or exact: one truncation pair per element). ``memory`` runs every party in
this process over in-memory channels; ``tcp`` runs one process per party over
the real encrypted mesh on loopback (meshmpc.net.launch.run_local).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from meshmpc_bench._common import add_common, emit, median, run_spu_peer

from meshmpc.linalg import SecretTensor, SecureBackend
from meshmpc.mpc.factory import make_suite
from meshmpc.mpc.semi2k import Semi2k
from meshmpc.net import Context

FEATURES = 100
LEARNING_RATE = 0.1

def _shapes(op: str, n: int) -> dict[str, tuple[int, ...]]:
    if op in ("matmul", "lr_step"):
        return {"x": (n, FEATURES), "w": (FEATURES, 1), "y": (n, 1)}
    return {"x": (n,), "y": (n,)}


async def _inputs(backend: SecureBackend, op: str, n: int) -> dict[str, SecretTensor]:
    """Synthetic inputs: x from the first party, w and y from the last."""
    parties = backend.suite.ctx.parties
    owners = {"x": parties[0], "w": parties[-1], "y": parties[-1]}
    rng = np.random.default_rng(7)  # synthetic data only
    out = {}
    for name, shape in _shapes(op, n).items():
        owner = owners[name]
        if op == "lr_step" and name == "y":
            value = rng.integers(0, 2, size=shape).astype(np.float64)
        else:
            value = rng.uniform(-4.0, 4.0, size=shape)
        mine = backend.suite.ctx.party == owner
        out[name] = await backend.input(owner, value if mine else None, shape)
    return out


async def run_op(op: str, t: dict[str, SecretTensor]) -> SecretTensor:
    """The timed operator."""
    if op == "mul":
        return await (t["x"] * t["y"])
    if op == "less":
        return await (t["x"] < t["y"])
    if op == "sigmoid":
        return await t["x"].sigmoid()
    if op in ("trunc", "trunc_exact"):
        x = t["x"]
        trunc = x.suite.trunc_exact if op == "trunc_exact" else x.suite.trunc
        return SecretTensor(x.backend, await trunc(x.share, 16), x.scale - 16)
    if op == "matmul":
        return await (t["x"] @ t["w"])
    if op == "lr_step":
        n = t["x"].shape[0]
        z = await (t["x"] @ t["w"])
        residual = (await (z * 0.25)) + 0.5 - t["y"]
        gradient = await (t["x"].T @ residual)
        return t["w"] - await (gradient * (LEARNING_RATE / n))
    raise ValueError(f"unknown op {op!r}")


async def bench_job(ctx: Context, suite: str, triples: str, op: str, n: int,
                    repeats: int, comparison: str | None = None,
                    ot_k: int | None = None) -> dict[str, Any]:
    """One party's side: set up, share inputs, time ``repeats`` runs of the operator."""
    engine = await make_suite(ctx, suite, triples=triples, comparison=comparison, ot_k=ot_k)
    backend = SecureBackend(engine)
    tensors = await _inputs(backend, op, n)
    walls: list[float] = []
    cpus: list[float] = []
    sent: list[int] = []
    for _ in range(repeats):
        if isinstance(engine, Semi2k):
            engine.clear_mask_cache()  # every run opens X afresh, as a single step would
        await ctx.barrier(f"mpc-bench-{len(walls)}")
        before = ctx.traffic().bytes_sent
        start, cpu = time.perf_counter(), time.process_time()
        await run_op(op, tensors)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        sent.append(ctx.traffic().bytes_sent - before)
    return {"walls": walls, "cpus": cpus, "sent": sent,
            "comparison": getattr(engine, "comparison", "circuit")}


def _run(args: argparse.Namespace, parties: list[str]) -> dict[str, Any]:
    kwargs = {"suite": args.suite, "triples": args.triples, "op": args.op, "n": args.n,
              "repeats": args.repeats, "comparison": args.comparison, "ot_k": args.ot_k}
    if args.transport == "memory":
        from meshmpc.net import run_parties

        return run_parties(parties, bench_job, **kwargs)
    from meshmpc.net.launch import run_local

    return run_local(parties, "meshmpc_bench.mpc:bench_job", kwargs, pin_cpus=True)


def record(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    """The JSON line: medians over runs of the slowest party / busiest sender."""
    runs = len(next(iter(results.values()))["walls"])
    walls = [max(r["walls"][i] for r in results.values()) for i in range(runs)]
    # memory: one process, so every party's process_time already counts all of them
    combine = max if args.transport == "memory" else sum
    cpus = [combine(r["cpus"][i] for r in results.values()) for i in range(runs)]
    sent = [max(r["sent"][i] for r in results.values()) for i in range(runs)]
    sent_all = [sum(r["sent"][i] for r in results.values()) for i in range(runs)]
    out: dict[str, Any] = {
        "bench": "mpc", "suite": args.suite, "triples": args.triples, "op": args.op,
        "n": args.n, "transport": args.transport, "wall_s": round(median(walls), 4),
        "cpu_s": round(median(cpus), 4), "load": getattr(args, "load", None),
        "bytes_sent": int(median(sent)), "bytes_sent_all": int(median(sent_all)),
        "parties": len(results), "runs": runs, "walls": [round(w, 4) for w in walls],
    }
    out["comparison"] = next(iter(results.values()))["comparison"]
    if args.triples == "ot":
        out["ot_k"] = args.ot_k or 4
    return out


def spu_protocol(args: argparse.Namespace, parties: int) -> str:
    """The SPU protocol to compare with (see the module docstring)."""
    if args.spu_protocol:
        return str(args.spu_protocol)
    if args.suite == "rep3":
        return "ABY3"
    return "CHEETAH" if args.triples == "ot" and parties == 2 else "SEMI2K"


def compare_spu(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    """Run the same op in SPU's simulator with ``args.compare_spu``; add its figures.

    Raises SystemExit with what to do when the interpreter cannot run the peer."""
    protocol = spu_protocol(args, out["parties"])
    script = Path(__file__).with_name("_spu_peer.py")
    spu = run_spu_peer(args.compare_spu, str(script),
                       [args.op, str(args.n), protocol, str(out["parties"]), str(args.repeats)],
                       f"the SPU run of {args.op}")
    out.update(spu)
    out["ratio"] = round(spu["spu_wall_s"] / out["wall_s"], 3)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench mpc", description=__doc__)
    parser.add_argument("--suite", choices=["semi2k", "rep3"], default="semi2k")
    parser.add_argument("--triples", choices=["dealer", "ot", "none"], default=None,
                        help="semi2k: ot (default) or dealer (insecure, benchmarks only); "
                             "rep3: none")
    parser.add_argument("--op", default="mul", choices=["mul", "less", "sigmoid", "matmul",
                                                         "lr_step", "trunc", "trunc_exact"])
    parser.add_argument("--n", type=int, default=1 << 20)
    parser.add_argument("--transport", choices=["memory", "tcp"], default="memory")
    parser.add_argument("--comparison", choices=["circuit", "gc", "millionaire"],
                        default=None,
                        help="semi2k comparison: bit-sliced circuit, garbled circuit or "
                             "CrypTFlow2's millionaires' protocol (2 parties); default: "
                             "millionaire for 2 parties with OT triples, else circuit")
    parser.add_argument("--ot-k", type=int, choices=[1, 2, 4, 8], default=None,
                        help="semi2k with OT triples: SoftSpokenOT's k (128/k bits per OT; "
                             "default 4; 2 halves the extension's CPU for twice its bytes)")
    parser.add_argument("--parties", type=int, default=None,
                        help="party count (semi2k: 2..N, default 2; rep3: 3)")
    parser.add_argument("--compare-spu", metavar="PYTHON", default=None,
                        help="then run the same op in SecretFlow SPU's simulator with this "
                             "interpreter (a venv holding spu) and print both and the ratio")
    parser.add_argument("--spu-protocol", choices=["CHEETAH", "SEMI2K", "ABY3"], default=None,
                        help="SPU protocol for --compare-spu (default: see above)")
    add_common(parser)
    args = parser.parse_args(argv)
    if args.triples is None:
        args.triples = "none" if args.suite == "rep3" else "ot"  # the dealer only by name
    if (args.suite == "rep3") != (args.triples == "none"):
        parser.error("rep3 takes --triples none; semi2k takes --triples dealer or ot")
    count = args.parties or (3 if args.suite == "rep3" else 2)
    parties = ["bank", "gov", "telco", "fin", "p4", "p5"][:count]
    args.load = round(os.getloadavg()[0], 2)
    out = record(args, _run(args, parties))
    if args.compare_spu:
        sys.stdout.flush()
        try:
            out = compare_spu(args, out)
        except SystemExit as exc:  # keep our own figure; say why SPU's is missing
            out["spu_error"] = str(exc)
            emit(out, args.json)
            print(exc, file=sys.stderr)
            return 1
    emit(out, args.json)
    return 0
