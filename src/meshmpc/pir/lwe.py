"""SimplePIR's LWE layer: public matrix, hint, queries, answers, decoding.

Henzinger, Hong, Corrigan-Gibbs, Meiklejohn, Vaikuntanathan, "One Server for
the Price of Two: Simple and Fast Single-Server Private Information
Retrieval", USENIX Security 2023. The database is a matrix D of Z_p digits
(here p = 2^8: one byte per digit) with m columns. With A in Z_q^{m x n}
public (expanded from a seed), the server publishes the hint H = D * A. To read
column c the client sends q = A s + e + Delta * u_c (s uniform in Z_q^n, e
discrete Gaussian, Delta = q / p, u_c the unit vector); the server returns
D * q; the client computes D * q - H * s = D * e + Delta * D[:, c] and rounds.
All arithmetic is mod q = 2^32 (uint32 wrap-around) in the C kernels.
"""

from __future__ import annotations

import functools
import os

import gmpy2
import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto.prg import Prg

LWE_N = 1024  # secret dimension
LOG_P = 8  # plaintext modulus p = 256: one database byte per digit
DELTA = 1 << (32 - LOG_P)
SIGMA = 6.4  # discrete Gaussian parameter (standard deviation)
TAIL = 80  # samples lie in [-TAIL, TAIL]; the mass beyond is < 2^-100

U32 = npt.NDArray[np.uint32]
U8 = npt.NDArray[np.uint8]


def threads() -> int:
    """Threads for the C kernels: every core of this machine."""
    return os.cpu_count() or 1


@functools.cache
def gaussian_cdf() -> npt.NDArray[np.uint64]:
    """The 256-entry CDF table (x 2^64) of the discrete Gaussian on [-TAIL, TAIL].

    Entry j is P(X <= j - TAIL) for j < 2 * TAIL, the rest UINT64_MAX, so the
    number of entries <= a uniform 64-bit word, minus TAIL, is a sample.
    Computed with 200-bit floats (gmpy2) so rounding stays below 2^-64.
    """
    ctx = gmpy2.get_context()
    ctx.precision = 200
    weights = [gmpy2.exp(-gmpy2.mpfr(x * x) / (2 * gmpy2.mpfr(SIGMA) ** 2))
               for x in range(-TAIL, TAIL + 1)]
    total = sum(weights)
    cdf = np.full(256, np.iinfo(np.uint64).max, dtype=np.uint64)
    running = gmpy2.mpfr(0)
    for j in range(2 * TAIL):
        running += weights[j]
        cdf[j] = min(int(gmpy2.floor(running / total * 2**64)), 2**64 - 1)
    return cdf


@functools.cache
def gaussian_lut() -> npt.NDArray[np.int8]:
    """Sample value for each top-16-bit prefix of the uniform word, where unique.

    Prefix h covers [h * 2^48, (h + 1) * 2^48); if no CDF boundary lies inside,
    every word with that prefix gives the same sample, else the entry is
    PIR_GAUSS_AMBIGUOUS and the C kernel falls back to the binary search.
    """
    cdf = gaussian_cdf()
    starts = np.arange(65536, dtype=np.uint64) << np.uint64(48)
    ends = starts | np.uint64((1 << 48) - 1)
    lo = np.searchsorted(cdf, starts, side="right")  # entries <= start
    hi = np.searchsorted(cdf, ends, side="right")
    lut = (lo.astype(np.int64) - TAIL).astype(np.int8)
    lut[lo != hi] = _core.PIR_GAUSS_AMBIGUOUS
    return lut


def add_gaussian(out: U32, prg: Prg) -> None:
    """out += discrete Gaussian noise (sigma = SIGMA), one sample per entry."""
    flat = out.reshape(-1)
    chunk = 1 << 22  # bounded scratch: 32 MiB of uniforms at a time
    uniforms = np.empty(min(chunk, flat.size), dtype=np.uint64)
    for lo in range(0, flat.size, chunk):
        part = flat[lo : lo + chunk]
        words = prg.fill(uniforms[: part.size])
        _core.pir_gauss_add_into(words, gaussian_cdf(), gaussian_lut(), TAIL, part)


def expand_matrix(seed: bytes, rows: int, cols: int) -> U32:
    """The public LWE matrix A (rows x cols, uint32) from a 16-byte seed."""
    out = np.empty((rows, cols), dtype=np.uint32)
    Prg(seed).fill(out)
    return out


def hint(db: U8, a_transposed: U32) -> U32:
    """H = D * A (rows(D) x n) from D (uint8 digits) and A^T (n x m)."""
    out = np.empty((db.shape[0], a_transposed.shape[0]), dtype=np.uint32)
    _core.pir_dot_u8_into(db, a_transposed, out, threads())
    return out


def make_queries(a: U32, columns: npt.NDArray[np.int64], prg: Prg) -> tuple[U32, U32]:
    """Query vectors for ``columns`` (-1: a dummy reading nothing).

    Returns (S, Q): Q holds one query per row (len(columns) x m), A s + e +
    Delta * u_c for a real row; S the matching secrets (len(columns) x n).
    A dummy row is a uniformly random vector (S row zero): under LWE the server
    cannot tell it from a real query, and it saves the client the A s product.
    """
    count, real = len(columns), np.flatnonzero(columns >= 0)
    queries = prg.fill(np.empty((count, a.shape[0]), dtype=np.uint32))
    secrets = np.zeros((count, a.shape[1]), dtype=np.uint32)
    if len(real):
        s_real = prg.fill(np.empty((len(real), a.shape[1]), dtype=np.uint32))
        q_real = np.empty((len(real), a.shape[0]), dtype=np.uint32)
        _core.pir_dot_u32_into(a, s_real, q_real.T, threads())
        add_gaussian(q_real, prg)
        q_real[np.arange(len(real)), columns[real]] += np.uint32(DELTA)
        queries[real], secrets[real] = q_real, s_real
    return secrets, queries


def answer(db_block: U8, queries: U32) -> U32:
    """Server: D_b * q for each query row; returns (len(queries) x rows(D_b))."""
    out = np.empty((queries.shape[0], db_block.shape[0]), dtype=np.uint32)
    _core.pir_dot_u8_into(db_block, queries, out.T, threads())
    return out


def decode(answers: U32, hint_block: U32, secrets: U32) -> U8:
    """Client: round (D_b q - H_b s) / Delta per query row to the column's digits."""
    hs = np.empty((secrets.shape[0], hint_block.shape[0]), dtype=np.uint32)
    _core.pir_dot_u32_into(hint_block, secrets, hs.T, threads())
    noisy = answers - hs
    return ((noisy + np.uint32(DELTA // 2)) >> np.uint32(32 - LOG_P)).astype(np.uint8)
