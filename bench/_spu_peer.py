"""The same operator in SecretFlow SPU's in-process simulator, for ``--compare-spu``.

Run by the interpreter the user names (a separate venv holding ``spu``; never a
dependency of meshmpc, and never imported by it): ``PYTHON spu_peer.py OP N
PROTOCOL PARTIES REPEATS`` prints one JSON object ``{"spu_wall_s", "spu_cpu_s",
"spu_walls", "spu_protocol", "spu_parties"}``. Each run is timed after a
warm-up run that compiles the program (as the peers' own scripts do); FM64,
SPU's default fixed point (f = 18). Inputs are synthetic: uniform in [-4, 4].

Operators match ``meshmpc bench mpc``: mul, less, sigmoid (SPU's own exp
based sigmoid), matmul (n x 100 by 100 x 1), lr_step, and trunc / trunc_exact,
for which SPU has no user-level operator: ``x * 0.5`` on a secret x, one product
by a public fixed-point constant and one truncation (SPU's own, probabilistic).
"""

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

FEATURES = 100
RECV_TIMEOUT_MS = 30 * 60 * 1000
"""The simulator's in-memory links wait this long for a message (yacl's default gave
'Get data timeout' in Cheetah's mul on a machine at load 30)."""


def _program(op: str, n: int,
             rng: np.random.Generator) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The jax function for ``op`` and its inputs."""
    import jax.numpy as jnp  # type: ignore[import-not-found, unused-ignore]

    x = rng.uniform(-4.0, 4.0, n).astype(np.float32)
    y = rng.uniform(-4.0, 4.0, n).astype(np.float32)
    if op == "mul":
        return (lambda a, b: a * b), (x, y)
    if op == "less":
        return (lambda a, b: a < b), (x, y)
    if op == "sigmoid":
        return (lambda a: 1 / (1 + jnp.exp(-a))), (x,)
    if op in ("trunc", "trunc_exact"):
        return (lambda a: a * 0.5), (x,)
    big = rng.uniform(-4.0, 4.0, (n, FEATURES)).astype(np.float32)
    w = rng.uniform(-4.0, 4.0, (FEATURES, 1)).astype(np.float32)
    if op == "matmul":
        return (lambda a, b: a @ b), (big, w)
    if op == "lr_step":
        labels = rng.integers(0, 2, (n, 1)).astype(np.float32)

        def lr_step(a: Any, b: Any, c: Any) -> Any:
            residual = 0.5 + 0.25 * (a @ b) - c
            return b - 0.1 * (a.T @ residual) / a.shape[0]

        return lr_step, (big, w, labels)
    raise SystemExit(f"spu_peer: unknown op {op!r}")


def main(argv: list[str]) -> None:
    """Time ``repeats`` runs of one operator after a warm-up run."""
    op, n, protocol, parties, repeats = argv[0], int(argv[1]), argv[2], int(argv[3]), int(argv[4])
    import spu.libspu as libspu  # type: ignore[import-not-found, unused-ignore]
    import spu.utils.simulation as pps  # type: ignore[import-not-found, unused-ignore]

    plain_desc = libspu.link.Desc

    def patient_desc() -> Any:
        desc = plain_desc()
        desc.recv_timeout_ms = RECV_TIMEOUT_MS
        return desc

    libspu.link.Desc = patient_desc  # the simulator builds its links from this name

    sim = pps.Simulator.simple(parties, getattr(libspu.ProtocolKind, protocol),
                               libspu.FieldType.FM64)
    fn, args = _program(op, n, np.random.default_rng(7))
    compiled = pps.sim_jax(sim, fn)
    compiled(*args)  # compile and warm up
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        compiled(*args)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    print(json.dumps({"spu_wall_s": round(statistics.median(walls), 4),
                      "spu_cpu_s": round(statistics.median(cpus), 4),
                      "spu_walls": [round(w, 4) for w in walls],
                      "spu_protocol": protocol, "spu_parties": parties}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
