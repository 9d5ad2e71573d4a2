# Bindings for the fused BFV products of the HE grouped sum (csrc/bfv_sparse.c);
# see _core.pyx. Thin layer: shape and type checks only; the C calls release the GIL.

from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as _bfv_np

cdef extern from "meshmpc/bfv_sparse.h":
    int mm_bfv_tables(uint64_t p, uint64_t psi, size_t n, uint64_t *tab) nogil
    int mm_bfv_ntt(uint64_t *a, size_t count, size_t n, size_t L, const uint64_t *primes,
                   const uint64_t *tabs, int inverse) nogil
    int mm_bfv_grouped(const uint64_t *ct, size_t blocks, const uint8_t *bins, size_t rows,
                       size_t nfeat, const int64_t *feat, const int64_t *gstart,
                       size_t ngroups, const int64_t *offset, const int64_t *slots, size_t k,
                       size_t n, size_t L, const uint64_t *primes, const uint64_t *tabs,
                       uint64_t *out, int nthreads) nogil

_BFV_ERRORS = {
    -1: "a size, prime or group layout is out of range",
    -2: "psi is not a primitive 2n-th root of unity modulo the prime",
    -3: "a coefficient is not reduced modulo its prime",
    -4: "out of memory",
}


cdef int _bfv_check(int rc, str what) except -1:
    if rc != 0:
        raise ValueError(f"bfv {what}: {_BFV_ERRORS.get(rc, rc)}")
    return 0


def bfv_tables(primes, roots, size_t n):
    """NTT tables (L, 4n + 2) for primes[l] with primitive 2n-th roots roots[l]."""
    P = _bfv_np.ascontiguousarray(primes, dtype=_bfv_np.uint64)
    R = _bfv_np.ascontiguousarray(roots, dtype=_bfv_np.uint64)
    if P.ndim != 1 or R.shape != P.shape:
        raise ValueError("bfv tables: primes and roots must be 1-D of one length")
    out = _bfv_np.empty((P.shape[0], 4 * n + 2), dtype=_bfv_np.uint64)
    cdef uint64_t[:, ::1] o = out
    cdef size_t l
    for l in range(P.shape[0]):
        _bfv_check(mm_bfv_tables(int(P[l]), int(R[l]), n, &o[l, 0]), "tables")
    return out


def bfv_ntt(a, primes, tabs, bint inverse=False):
    """NTT (or inverse) in place of a C-contiguous uint64 array (..., L, n)."""
    cdef uint64_t[::1] flat = a.reshape(-1)
    cdef const uint64_t[::1] P = primes
    cdef const uint64_t[:, ::1] T = tabs
    cdef size_t L = P.shape[0], n = a.shape[a.ndim - 1]
    if a.ndim < 2 or a.shape[a.ndim - 2] != L or T.shape[0] != L or T.shape[1] != 4 * n + 2:
        raise ValueError("bfv ntt: the array must be (..., L, n) with L tables of 4n + 2")
    cdef size_t count = flat.shape[0] // (L * n)
    cdef int rc
    if count == 0:
        return a
    with nogil:
        rc = mm_bfv_ntt(&flat[0], count, n, L, &P[0], &T[0, 0], inverse)
    _bfv_check(rc, "ntt")
    return a


def bfv_grouped(ct, bins, feat, gstart, offset, slots, size_t k, primes, tabs,
                int nthreads=1):
    """sum_b ct[b] * P_{b,g} for every group g, coefficient form (groups, 2, L, n).

    ct: (blocks, 2, L, n) NTT form (bfv_ntt); bins: uint8 (features, rows); feat: the
    features of every group, concatenated, gstart its (groups + 1) starts; offset and
    slots: per feature, its first slot and its slot count (bins minus one).
    """
    cdef const uint64_t[:, :, :, ::1] C = ct
    cdef const uint8_t[:, ::1] B = bins
    cdef const int64_t[::1] F = feat, G = gstart, O = offset, S = slots
    cdef const uint64_t[::1] P = primes
    cdef const uint64_t[:, ::1] T = tabs
    cdef size_t L = P.shape[0], n = C.shape[3], ngroups = G.shape[0] - 1
    if C.shape[1] != 2 or C.shape[2] != L or T.shape[0] != L or T.shape[1] != 4 * n + 2:
        raise ValueError("bfv grouped: ct must be (blocks, 2, L, n) with L tables")
    if O.shape[0] != B.shape[0] or S.shape[0] != B.shape[0] or G.shape[0] < 1 \
            or G[0] != 0 or G[G.shape[0] - 1] != F.shape[0]:
        raise ValueError("bfv grouped: offsets, slots or group starts do not match")
    out = _bfv_np.zeros((ngroups, 2, L, n), dtype=_bfv_np.uint64)
    if ngroups == 0:
        return out
    cdef uint64_t[:, :, :, ::1] o = out
    cdef int64_t dummy = 0
    cdef const int64_t *fp = &F[0] if F.shape[0] else &dummy
    cdef const uint8_t *bp = &B[0, 0] if B.shape[0] and B.shape[1] else NULL
    cdef const uint64_t *cp = &C[0, 0, 0, 0] if C.shape[0] else NULL
    cdef const int64_t *op = &O[0] if O.shape[0] else &dummy
    cdef const int64_t *sp = &S[0] if S.shape[0] else &dummy
    cdef int rc
    with nogil:
        rc = mm_bfv_grouped(cp, C.shape[0], bp, B.shape[1], B.shape[0], fp, &G[0],
                            ngroups, op, sp, k, n, L, &P[0], &T[0, 0], &o[0, 0, 0, 0],
                            nthreads)
    _bfv_check(rc, "grouped")
    return out
