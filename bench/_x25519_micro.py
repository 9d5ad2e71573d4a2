"""CPU time per point of ECDH PSI's group step: each X25519 path against the old loop.

``python -m meshmpc_bench._x25519_micro [N] [ROUNDS]`` prints one JSON line
per round: thread CPU microseconds per point (hash to group + X25519, one
thread, N points) for OpenSSL through ``cryptography`` one Python call per
point (the implementation before csrc/ecdh_x25519.c), libsodium's kernel and,
where it can run, Intel's mb8-ifma kernel; all must give the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from meshmpc.psi import x25519
from meshmpc.psi.group import HASH_PERSON, hash_and_exponentiate


def _old_loop(scalar: bytes, digests: bytes) -> bytes:
    """The pre-kernel group step: hashlib then cryptography's X25519, per point."""
    key = X25519PrivateKey.from_private_bytes(scalar)
    out = []
    for i in range(0, len(digests), 16):
        u = hashlib.blake2b(digests[i:i + 16], digest_size=32, person=HASH_PERSON).digest()
        out.append(key.exchange(X25519PublicKey.from_public_bytes(u)))
    return b"".join(out)


def _kernel(scalar: bytes, digests: bytes, path: str) -> bytes:
    return hash_and_exponentiate(scalar, digests, path)


def _timed(fn: Callable[[bytes, bytes], bytes], scalar: bytes, digests: bytes,
           n: int) -> tuple[float, bytes]:
    start = time.thread_time()
    out = fn(scalar, digests)
    return round((time.thread_time() - start) / n * 1e6, 2), out


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 8192
    rounds = int(argv[1]) if len(argv) > 1 else 3
    paths = ["libsodium"] + ([] if x25519.mb_status() else ["mb8-ifma"])
    digests = np.random.default_rng(1).bytes(16 * n)
    for r in range(rounds):
        scalar = os.urandom(32)
        record: dict[str, object] = {"bench": "psi.x25519_micro", "points": n, "round": r,
                                     "loadavg": os.getloadavg()[0]}
        record["cryptography_us"], want = _timed(_old_loop, scalar, digests, n)
        for path in paths:
            us, got = _timed(functools.partial(_kernel, path=path), scalar, digests, n)
            if got != want:
                print(f"x25519 path {path} disagrees with OpenSSL", file=sys.stderr)
                return 1
            record[f"{path}_us"] = us
        record["mb_reason"] = x25519.mb_status()
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
