"""``meshmpc bench kernels``: single-core speed of the C kernels.

* ``kernels.aes``: fixed-key AES-128 on 2^20 blocks in place, per available path
  (``blocks_per_s``).
* ``kernels.prg``: AES-CTR PRG filling a 64 MiB numpy buffer (``gbytes_per_s``).
* ``kernels.transpose``: 128 x 2^20 bit matrix into a reused output (``wall_s``).
* ``kernels.ccr_hash`` / ``kernels.tccr_hash``: blocks per second.
* ``kernels.gf128``: GF(2^128) products per second; ``kernels.item_hash``:
  BLAKE2b-128 of 18-byte keys (arrow input) per second.

Every figure is the median of ``--repeats`` timed runs in this process.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pyarrow as pa
from meshmpc_bench._common import emit, median

from meshmpc import _core
from meshmpc.crypto import FIXED_KEY_AES, Prg, ccr_hash, item_hash, tccr_hash
from meshmpc.crypto.aes import available_paths
from meshmpc.crypto.bits import gf128_mul

PATH_NAMES = {0: "portable", 1: "aesni", 2: "vaes"}


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs (after one warm-up run)."""
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return median(runs)


def _encrypt_in_place(blocks: np.ndarray, path: int) -> None:
    FIXED_KEY_AES.encrypt_into(blocks, blocks, path)


def bench_aes(repeats: int, as_json: bool) -> None:
    blocks = Prg().blocks(1 << 20)
    for path in available_paths():
        n = blocks.shape[0] if path else 1 << 14  # the portable path is slow
        wall = timed(partial(_encrypt_in_place, blocks[:n], path), repeats)
        emit({"bench": "kernels.aes", "path": PATH_NAMES[path], "blocks": n,
              "blocks_per_s": n / wall}, as_json)


def bench_prg(repeats: int, as_json: bool) -> None:
    prg = Prg()
    buf = np.empty(64 << 20, dtype=np.uint8)
    wall = timed(lambda: prg.fill(buf), repeats)
    emit({"bench": "kernels.prg", "bytes": buf.nbytes, "gbytes_per_s": buf.nbytes / wall / 1e9},
         as_json)


def bench_transpose(repeats: int, as_json: bool) -> None:
    rows, cols = 128, 1 << 20
    matrix = Prg().fill(np.empty((rows, cols // 8), dtype=np.uint8))
    out = np.empty((cols, rows // 8), dtype=np.uint8)  # reused: time the kernel, not page faults
    wall = timed(lambda: _core.transpose_into(matrix, out, rows, cols), repeats)
    emit({"bench": "kernels.transpose", "rows": rows, "cols": cols, "wall_s": wall}, as_json)


def bench_hashes(repeats: int, as_json: bool) -> None:
    x = Prg().blocks(1 << 20)
    out = np.empty_like(x)
    n = x.shape[0]
    wall = timed(lambda: ccr_hash(x, out=out), repeats)
    emit({"bench": "kernels.ccr_hash", "blocks_per_s": n / wall}, as_json)
    wall = timed(lambda: tccr_hash(x, 0, out=out), repeats)
    emit({"bench": "kernels.tccr_hash", "blocks_per_s": n / wall}, as_json)
    wall = timed(lambda: gf128_mul(x, out), repeats)
    emit({"bench": "kernels.gf128", "mul_per_s": n / wall}, as_json)
    keys = pa.array([f"91350100M{i:09d}" for i in range(n)])
    wall = timed(lambda: item_hash(keys), repeats)
    emit({"bench": "kernels.item_hash", "key_bytes": 18, "items_per_s": n / wall}, as_json)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench kernels", description=__doc__)
    parser.add_argument("--json", action="store_true", help="one JSON object per result line")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (median)")
    args = parser.parse_args(argv)
    emit({"bench": "kernels.cpu", "features": _core.cpu_features(),
          "best_path": PATH_NAMES[_core.best_path()]}, args.json)
    bench_aes(args.repeats, args.json)
    bench_prg(args.repeats, args.json)
    bench_transpose(args.repeats, args.json)
    bench_hashes(args.repeats, args.json)
    return 0
