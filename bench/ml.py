"""Vertical-learning benchmarks: ``meshmpc bench ml --op OP ... --json``.

``--op matvec``: one owner-matrix product X @ <v> (meshmpc.ml.product) with X
(rows x cols) generated inside the owner's process block by block (entries
k/8, k uniform in [-32, 32), from a fixed seed: synthetic data) and v
secret-shared by the last party. Parties are separate processes over the
encrypted mesh on loopback. ``--security dishonest-majority`` runs the HE
product over semi2k (``--parties``, default 2); ``honest-majority`` the rep3
product among three parties. One-time set-up is outside the clock and reported
beside it: HE key generation and OT base OTs (a small warm-up product), and for
rep3 the split of X (``split_s``, ``split_bytes``). The line is
``{"bench": "ml.matvec", "security", "rows", "cols", "wall_s", "bytes_sent", ...}``:
the median over ``--repeats`` runs (default 1) of the slowest party's wall time
and of the busiest party's bytes sent during the product (``cpu_s``: CPU
seconds of all parties and their workers, a figure less sensitive to other load
on the machine); the owner checks the revealed result against numpy.
``--integer``: X holds the integer codes k themselves (an exact integer product,
no truncation: semi2k with OT triples cannot truncate among more than two
parties yet).

Other ops (``binning``, ``logistic``, ``mlp``; ``predict`` and ``binning_ray`` on a
local Ray cluster) come from bench/ml_binning.py, bench/ml_logistic.py,
bench/_ml_mlp.py and bench/_ml_ray.py when present: each exposes ``add_arguments(parser)`` and
``run(args) -> list[dict]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from meshmpc_bench._common import add_common, emit, median, wan_fields, wan_profile

from meshmpc.linalg import SecureBackend
from meshmpc.ml.product import make_product
from meshmpc.mpc.factory import make_suite
from meshmpc.net import Context

PARTY_NAMES = ["bank", "gov", "fin", "telco", "p4", "p5"]
SEED = 20260


class SyntheticMatrix:
    """A rows x cols matrix generated on demand, rows in fixed blocks (never all in memory)."""

    BLOCK = 4096

    def __init__(self, rows: int, cols: int, integer: bool = False) -> None:
        self.shape = (rows, cols)
        self.divisor = 1.0 if integer else 8.0
        self._cached: tuple[int, np.ndarray] | None = None
        self._codes: np.ndarray | None = None

    def materialize(self) -> SyntheticMatrix:
        """Generate all entries now (as int8 codes: rows x cols bytes), before a clock starts."""
        self._codes = np.concatenate([self._code_block(b) for b in
                                      range(-(-self.shape[0] // self.BLOCK))])
        return self

    def _code_block(self, b: int) -> np.ndarray:
        rows = min(self.BLOCK, self.shape[0] - b * self.BLOCK)
        rng = np.random.default_rng((SEED, b))  # synthetic data only
        return rng.integers(-32, 32, size=(rows, self.shape[1]), dtype=np.int8)

    def _block(self, b: int) -> np.ndarray:
        if self._cached is not None and self._cached[0] == b:
            return self._cached[1]
        codes = self._code_block(b) if self._codes is None else \
            self._codes[b * self.BLOCK:(b + 1) * self.BLOCK]
        block = codes / self.divisor
        self._cached = (b, block)
        return block

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("SyntheticMatrix supports row slices only")
        lo, hi, _ = key.indices(self.shape[0])
        first, last = lo // self.BLOCK, max(lo, hi - 1) // self.BLOCK
        if first == last:  # the usual case: a view into one cached block, no copy
            return self._block(first)[lo - first * self.BLOCK: hi - first * self.BLOCK]
        parts = [self._block(b)[max(lo - b * self.BLOCK, 0): hi - b * self.BLOCK]
                 for b in range(first, last + 1)]
        return np.concatenate(parts)

    def matvec(self, v: np.ndarray) -> np.ndarray:
        return np.concatenate([self[lo:lo + self.BLOCK] @ v
                               for lo in range(0, self.shape[0], self.BLOCK)])


def _vector(cols: int) -> np.ndarray:
    return np.random.default_rng(SEED + 1).uniform(-2.0, 2.0, size=cols)  # synthetic


async def matvec_job(ctx: Context, security: str, rows: int, cols: int,
                     repeats: int = 1, integer: bool = False) -> dict[str, Any]:
    """One party's side: set up, warm up, time one product, check it at the owner."""
    suite = "rep3" if security == "honest-majority" else "semi2k"
    backend = SecureBackend(await make_suite(ctx, suite))
    product = make_product(backend, security)
    owner, holder = ctx.parties[0], ctx.parties[-1]
    mine = ctx.party == owner
    v = _vector(cols)
    sv = await backend.input(holder, v if ctx.party == holder else None, shape=(cols,))
    small = await backend.input(holder, v[:4] if ctx.party == holder else None, shape=(4,))
    await product.matvec(owner, np.ones((8, 4)) if mine else None, small, (8, 4), integer=integer)
    x = SyntheticMatrix(rows, cols, integer).materialize() if mine else None
    out: dict[str, Any] = {}
    if security == "honest-majority":  # the one-time split of X, then the timed product
        await ctx.barrier("ml-split")
        before, start = ctx.traffic().bytes_sent, time.perf_counter()
        await product.matvec(owner, x, sv, (rows, cols), integer=integer)
        out.update(split_s=time.perf_counter() - start,
                   split_bytes=ctx.traffic().bytes_sent - before)
    walls, sent, cpus = [], [], []
    for run in range(repeats):
        await ctx.barrier(f"ml-matvec-{run}")
        before, start, cpu = ctx.traffic().bytes_sent, time.perf_counter(), _cpu_seconds()
        result = await product.matvec(owner, x, sv, (rows, cols), integer=integer)
        walls.append(time.perf_counter() - start)
        sent.append(ctx.traffic().bytes_sent - before)
        cpus.append(_cpu_seconds() - cpu)
    out.update(walls=walls, sent=sent, cpu=cpus)
    opened = await result.reveal(owner)
    if mine:  # against numpy on v as the backend encodes it (2^-f grid)
        assert x is not None and opened is not None
        grid = np.rint(v * 2.0 ** backend.f) / 2.0 ** backend.f
        out["max_error"] = float(np.max(np.abs(opened - x.matvec(grid))))
    return out


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the HE owner's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _median_over_runs(results: dict[str, Any], key: str,
                      combine: Callable[[list[float]], float]) -> float:
    """Median over runs of the parties' figures combined per run (max or sum)."""
    runs = len(next(iter(results.values()))[key])
    return median([combine([r[key][i] for r in results.values()]) for i in range(runs)])


def _run_matvec(args: argparse.Namespace) -> list[dict[str, Any]]:
    from meshmpc.net.launch import run_local

    count = 3 if args.security == "honest-majority" else args.parties
    parties = PARTY_NAMES[:count]
    kwargs = {"security": args.security, "rows": args.rows, "cols": args.cols,
              "repeats": args.repeats, "integer": args.integer}
    results = run_local(parties, "meshmpc_bench.ml:matvec_job", kwargs, wan=wan_profile(args),
                        pin_cpus=False, timeout=3600.0)
    error = results[parties[0]]["max_error"]
    record: dict[str, Any] = {
        "bench": "ml.matvec", "security": args.security, "rows": args.rows, "cols": args.cols,
        "wall_s": round(_median_over_runs(results, "walls", max), 3),
        "bytes_sent": int(_median_over_runs(results, "sent", max)),
        "bytes_sent_all": int(_median_over_runs(results, "sent", sum)),
        "parties": count, "integer": args.integer, "max_error": error,
        "cpu_s": round(_median_over_runs(results, "cpu", sum), 3), "runs": args.repeats,
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results.values()), 1),
        **wan_fields(args),
    }
    # exact for integer X; fixed point: X's rounding and one truncation, ~cols * 2^-16
    record["result_ok"] = error <= (1e-9 if args.integer else args.cols * 2.0 ** -14)
    if args.security == "honest-majority":
        record["split_s"] = round(max(r["split_s"] for r in results.values()), 3)
        record["split_bytes"] = int(max(r["split_bytes"] for r in results.values()))
    return [record]


def _external(module: str) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        mod = importlib.import_module(f"meshmpc_bench.{module}")
    except ModuleNotFoundError:
        return None
    return mod.add_arguments, mod.run


OPS: dict[str, Callable[[argparse.Namespace], list[dict[str, Any]]]] = {"matvec": _run_matvec}
EXTERNAL = {"binning": "ml_binning", "logistic": "ml_logistic", "mlp": "_ml_mlp",
            "predict": "_ml_ray", "binning_ray": "_ml_ray"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench ml", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    ops = dict(OPS)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=1000)
    parser.add_argument("--parties", type=int, default=2, help="dishonest majority: 2..6")
    parser.add_argument("--integer", action="store_true",
                        help="integer matrix (exact product, no fixed-point truncation)")
    parser.add_argument("--security", choices=["dishonest-majority", "honest-majority"],
                        default="dishonest-majority")
    add_common(parser)
    # The external benchmarks skip the options defined above (they share --rows, --security).
    for op, module in EXTERNAL.items():
        found = _external(module)
        if found is not None:
            found[0](parser)
            ops[op] = found[1]
    parser.add_argument("--op", choices=sorted(ops), default="matvec")
    parser.set_defaults(repeats=1)  # one 10^6 x 1000 HE product takes minutes
    args = parser.parse_args(argv)
    status = 0
    for record in ops[args.op](args):
        emit(record, args.json)
        if record.get("result_ok") is False:
            print(f"meshmpc bench ml: {record['bench']} differs from numpy by "
                  f"{record.get('max_error')}", file=sys.stderr)
            status = 1
    return status
