"""``meshmpc bench he``: additively homomorphic encryption throughput (Paillier, OU).

Per scheme, one line ``{"bench": "he", "scheme", "bits", "enc_per_s", "dec_per_s",
"add_per_s", "mul_plain_per_s", ...}``: batches through the threaded GMP kernels
on every core (``--threads``). ``enc_per_s`` is the key holder's CRT encryption
(what SecureBoost's bank uses); ``enc_pk_per_s`` encryption with the public key
only. Plaintexts are random 128-bit values, ``mul_plain`` scalars 64-bit.
Every rate also comes per CPU second (``enc_per_cpu_s``, ...: one core's work,
robust to other load on a shared machine), with the 1-minute load average. With
``--peer-python`` (a venv holding python-paillier, see ../shared/peers) the same
operations of ``phe`` are measured in the same run, one line with scheme
``phe-paillier``; with ``--heu-python`` (a venv with ``sf-heu``) SecretFlow HEU's
ZPaillier and OU batch APIs, lines ``heu-zpaillier`` and ``heu-ou``. Each
figure is checked (decryptions equal the plaintexts).

``--key-shapes standard,subgroup`` measures Paillier with each key shape
(protocols/he.md; the subgroup shape is opt-in): the line's ``key_shape`` says
which. ``--dec-breakdown`` adds one line (scheme ``paillier-dec-breakdown``): the
milliseconds of one CRT half of a Paillier decryption (c^(p-1) mod p^2, one
thread, CPU time) through each available power, side by side in the same run:
OpenSSL's constant-time power (the one decryption uses), GMP's constant-time
``mpz_powm_sec`` and variable-time ``mpz_powm`` (through gmpy2; variable time
leaks p - 1 and is listed only as a yardstick), OpenSSL's constant-time power
with a 224-bit exponent (the subgroup shape's a_p), and the full decryption of
each key shape.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from meshmpc_bench._common import add_common, emit, fail, median

PHE_SCRIPT = r"""
import json, sys, time, phe
bits, n = int(sys.argv[1]), int(sys.argv[2])
pk, sk = phe.generate_paillier_keypair(n_length=bits)
t = time.perf_counter(); cs = [pk.encrypt(i) for i in range(n)]; te = time.perf_counter() - t
t = time.perf_counter(); s = cs[0]
for c in cs[1:]: s = s + c
ta = time.perf_counter() - t
t = time.perf_counter(); ms = [c * 12345678901 for c in cs]; tm = time.perf_counter() - t
t = time.perf_counter(); ds = [sk.decrypt(c) for c in cs]; td = time.perf_counter() - t
assert ds == list(range(n)) and sk.decrypt(s) == n * (n - 1) // 2
print(json.dumps({"enc_per_s": n / te, "dec_per_s": n / td, "add_per_s": (n - 1) / ta,
                  "mul_plain_per_s": n / tm}))
"""


HEU_SCRIPT = r"""
import json, sys, time
import numpy as np
from heu import phe, numpy as hnp
bits, n = int(sys.argv[1]), int(sys.argv[2])
for name, schema in (("heu-zpaillier", phe.SchemaType.ZPaillier), ("heu-ou", phe.SchemaType.OU)):
    kit = hnp.setup(schema, bits)
    enc, dec, ev = kit.encryptor(), kit.decryptor(), kit.evaluator()
    params = phe.IntegerEncoderParams(1)
    pt = kit.array(np.arange(n, dtype=np.int64), params)
    k = kit.array(np.full(n, 12345678901, dtype=np.int64), params)
    t = time.perf_counter(); ct = enc.encrypt(pt); te = time.perf_counter() - t
    t = time.perf_counter(); s = ev.add(ct, ct); ta = time.perf_counter() - t
    t = time.perf_counter(); m = ev.mul(ct, k); tm = time.perf_counter() - t
    t = time.perf_counter(); d = dec.decrypt(ct); td = time.perf_counter() - t
    assert [int(d[i].to_bytes(16, "little")[0]) for i in range(3)] == [0, 1, 2]
    print(json.dumps({"scheme": name, "enc_per_s": n / te, "dec_per_s": n / td,
                      "add_per_s": n / ta, "mul_plain_per_s": n / tm}))
"""


def _rate(fn: Callable[[], Any], count: int, repeats: int,
          cpu: dict[str, float] | None = None, name: str = "") -> float:
    """Operations per wall second (median of ``repeats``); per CPU second into ``cpu``.

    The CPU rate (all threads' CPU time of this process) is what one core does:
    on a machine shared with other load it moves far less than the wall rate.
    """
    times, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    if cpu is not None:
        cpu[f"{name}_per_cpu_s"] = count / median(cpus)
    return count / median(times)


def measure(scheme: str, bits: int, batch: int, repeats: int, threads: int,
            key_shape: str = "standard") -> dict[str, Any]:
    from meshmpc.crypto.he import generate
    from meshmpc.crypto.he._limbs import int_to_limbs, limbs_to_ints, random_limbs

    t0 = time.perf_counter()
    sk = generate(scheme, bits, key_shape=key_shape, threads=threads)
    pk = sk.public
    plain = random_limbs(batch, 128)
    sk.encrypt(plain[:8])
    pk.encrypt(plain[:8])  # build the fixed-base tables outside the timing
    setup = time.perf_counter() - t0
    ct = sk.encrypt(plain)
    ct2 = sk.encrypt(plain)
    scalar = int_to_limbs(12345678901, 1)
    cpu: dict[str, float] = {}
    rec: dict[str, Any] = {
        "bench": "he", "scheme": scheme, "bits": bits, "key_shape": key_shape,
        "enc_per_s": _rate(lambda: sk.encrypt(plain), batch, repeats, cpu, "enc"),
        "dec_per_s": _rate(lambda: sk.decrypt(ct), batch, repeats, cpu, "dec"),
        "add_per_s": _rate(lambda: pk.add(ct, ct2), batch, repeats, cpu, "add"),
        "mul_plain_per_s": _rate(lambda: pk.mul_plain(ct, scalar), batch, repeats, cpu,
                                 "mul_plain"),
        "enc_pk_per_s": _rate(lambda: pk.encrypt(plain[: batch // 4]), batch // 4, repeats,
                              cpu, "enc_pk"),
        **cpu, "threads": threads, "batch": batch, "setup_s": round(setup, 3),
        "randomizer_bits": pk.randomizer_bits, "loadavg": os.getloadavg()[0],
    }
    want = limbs_to_ints(plain)
    if limbs_to_ints(sk.decrypt(ct)) != want:
        raise AssertionError(f"he bench: {scheme} decryption differs from the plaintexts")
    if limbs_to_ints(sk.decrypt(pk.add(ct, ct2))) != [2 * v for v in want]:
        raise AssertionError(f"he bench: {scheme} addition is wrong")
    return {k: (round(v) if k.endswith(("_per_s", "_per_cpu_s")) else v) for k, v in rec.items()}


def _cpu_ms(fn: Callable[[], Any], count: int, repeats: int) -> float:
    """CPU milliseconds per call of ``fn`` (median of ``repeats`` runs of ``count`` calls)."""
    times = []
    for _ in range(repeats):
        c = time.process_time()
        for _ in range(count):
            fn()
        times.append((time.process_time() - c) / count)
    return round(1000 * median(times), 4)


def dec_breakdown(bits: int, count: int, repeats: int) -> dict[str, Any]:
    """One CRT half of Paillier decryption through each power, one thread, CPU time."""
    import gmpy2

    from meshmpc import _core
    from meshmpc.crypto.he import generate_paillier
    from meshmpc.crypto.he._limbs import int_to_limbs, random_limbs

    sk = generate_paillier(bits, threads=1)
    sub = generate_paillier(bits, threads=1, key_shape="subgroup")
    p, p2 = sk.p, sk.p * sk.p
    ct = sk.encrypt(random_limbs(count, 128))
    sub_ct = sub.encrypt(random_limbs(count, 128))
    rows = _core.he_mod(ct.data, sk._p2, sk._p2.shape[0], 1)
    ints = [gmpy2.mpz(int.from_bytes(r.tobytes(), "little")) for r in rows]
    short = int_to_limbs(int.from_bytes(os.urandom(28), "little") | (1 << 223))
    width = sk._p2.shape[0]

    def batch_ms(exp: np.ndarray) -> float:
        return _cpu_ms(lambda: _core.he_powmod_secret(rows, exp, sk._p2, width, 1), 1,
                       repeats) / count

    def each_ms(fn: Callable[[gmpy2.mpz], Any]) -> float:
        it = iter(ints * (repeats + 1))
        return _cpu_ms(lambda: fn(next(it)), count, repeats)

    dec = _cpu_ms(lambda: sk.decrypt(ct), 1, repeats) / count
    sub_dec = _cpu_ms(lambda: sub.decrypt(sub_ct), 1, repeats) / count
    return {"bench": "he", "scheme": "paillier-dec-breakdown", "bits": bits,
            "half_ms_openssl_consttime": round(batch_ms(sk._ep), 4),
            "half_ms_gmp_powm_sec": each_ms(lambda c: gmpy2.powmod_sec(c, p - 1, p2)),
            "half_ms_gmp_powm_variable_time": each_ms(lambda c: gmpy2.powmod(c, p - 1, p2)),
            "half_ms_openssl_consttime_224bit_exp": round(batch_ms(short), 4),
            "decrypt_ms": round(dec, 4), "dec_per_cpu_s": round(1000 / dec),
            "subgroup_decrypt_ms": round(sub_dec, 4),
            "subgroup_dec_per_cpu_s": round(1000 / sub_dec),
            "count": count, "loadavg": os.getloadavg()[0]}


def measure_phe(python: str, bits: int, batch: int) -> dict[str, Any]:
    out = subprocess.run([python, "-c", PHE_SCRIPT, str(bits), str(batch)], check=True,
                         capture_output=True, text=True, timeout=3600)
    rates = json.loads(out.stdout.strip().splitlines()[-1])
    return {"bench": "he", "scheme": "phe-paillier", "bits": bits,
            **{k: round(v) for k, v in rates.items()}, "threads": 1, "batch": batch}


def measure_heu(python: str, bits: int, batch: int) -> list[dict[str, Any]]:
    out = subprocess.run([python, "-c", HEU_SCRIPT, str(bits), str(batch)], check=True,
                         capture_output=True, text=True, timeout=3600)
    lines = [json.loads(ln) for ln in out.stdout.splitlines() if ln.startswith("{")]
    return [{"bench": "he", "scheme": r.pop("scheme"), "bits": bits,
             **{k: round(v) for k, v in r.items()}, "batch": batch} for r in lines]


def _measure_with(constant_time: bool, *args: Any) -> dict[str, Any]:
    """:func:`measure` with the constant-time fixed-base powers switched on or off."""
    from meshmpc.crypto.he.base import CONSTANT_TIME_ENV

    before = os.environ.get(CONSTANT_TIME_ENV)
    os.environ[CONSTANT_TIME_ENV] = "1" if constant_time else "0"
    try:
        return {**measure(*args), "constant_time": constant_time}
    finally:
        if before is None:
            os.environ.pop(CONSTANT_TIME_ENV, None)
        else:
            os.environ[CONSTANT_TIME_ENV] = before


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench he", description=__doc__)
    add_common(parser)
    parser.add_argument("--bits", type=int, default=2048, help="modulus bits (2048, 3072)")
    parser.add_argument("--schemes", default="paillier,ou")
    parser.add_argument("--batch", type=int, default=4000, help="ciphertexts per timed batch")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--key-shapes", default="standard",
                        help="Paillier key shapes to measure: standard,subgroup")
    parser.add_argument("--peer-python", default=None,
                        help="python of a venv with python-paillier: measure phe in this run")
    parser.add_argument("--peer-batch", type=int, default=200)
    parser.add_argument("--heu-python", default=None,
                        help="python of a venv with sf-heu: measure HEU in this run")
    parser.add_argument("--constant-time", choices=["off", "on", "both"], default="off",
                        help="fixed-base powers in constant time (MESHMPC_HE_CONSTANT_TIME)")
    parser.add_argument("--dec-breakdown", action="store_true",
                        help="also time one CRT half of Paillier decryption per power")
    args = parser.parse_args(argv)
    for scheme in args.schemes.split(","):
        if scheme not in ("paillier", "ou"):
            return fail(f"meshmpc bench he: unknown scheme {scheme!r}")
        shapes = args.key_shapes.split(",") if scheme == "paillier" else ["standard"]
        for shape in shapes:
            if shape not in ("standard", "subgroup"):
                return fail(f"meshmpc bench he: unknown key shape {shape!r}")
            for constant in {"off": [False], "on": [True], "both": [False, True]}[
                    args.constant_time]:
                emit(_measure_with(constant, scheme, args.bits, args.batch, args.repeats,
                                   args.threads, shape), args.json)
    if args.dec_breakdown:
        emit(dec_breakdown(args.bits, max(1, min(args.batch, 200)), args.repeats), args.json)
    if args.peer_python:
        emit(measure_phe(args.peer_python, args.bits, args.peer_batch), args.json)
    if args.heu_python:
        for rec in measure_heu(args.heu_python, args.bits, args.batch):
            emit(rec, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
