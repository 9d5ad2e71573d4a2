"""Wall and CPU time of each RR22 kernel on one bucket-sized input (1.25 M keys by
default, the bucket size of a 10^7-row run): ``python -m meshmpc_bench._rr22_kernels N``.
Synthetic random digests; CPU is every thread of this process."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from meshmpc import _core
from meshmpc.crypto.hashing import ccr_hash
from meshmpc.ot import vole
from meshmpc.psi import okvs, rr22
from meshmpc.psi.common import random_permutation


def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run fn(*args) once and print its wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    print(f"{name:18s} wall {time.perf_counter() - wall:7.3f} s  "
          f"cpu {time.process_time() - cpu:7.3f} s", flush=True)
    return out


def main(n: int) -> None:
    """Every kernel of one RR22 run on n keys (synthetic data: np.random)."""
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    m = okvs.table_size(n)
    timed("first_index", _core.psi_first_index, keys)
    values = timed("H (ccr_hash)", ccr_hash, keys)
    hashing = okvs.OkvsHash(os.urandom(16), m)
    start, band = timed("okvs rows", hashing.rows, keys)
    table = np.empty((m, 16), np.uint8)
    timed("okvs encode", _core.okvs_encode_into, start, band, values, m, table)
    decoded = timed("okvs decode", hashing.decode, table, keys)
    timed("gf_scale table", rr22.gf_scale, table, values[0])
    out = timed("H_out", rr22.out_hash, decoded, 10)
    timed("psi_match", _core.psi_match, out, out[::-1].copy())
    timed("match_order", rr22.match_order, out[: n // 2])
    timed("permutation", random_permutation, n)
    t, depth = vole.parameters(m)
    timed("vole compress", vole.compress, rng.integers(0, 256, (t << depth, 16), np.uint8), m)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_250_000)
