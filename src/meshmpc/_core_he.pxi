# Bindings for the he kernel family (csrc/he.c, GMP; csrc/he_mont.c, OpenSSL BIGNUM);
# see _core.pyx.
#
# Thin layer: argument checks only. A batch is a C-contiguous uint64 array of
# shape (count, limbs) of little-endian limbs; a 1-D array of limbs is one
# number broadcast to every row. Moduli are 1-D limb arrays with a non-zero top
# limb. Results are new (count, out_width) arrays. The C calls release the GIL.

from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as _he_np

cdef extern from "meshmpc/he.h":
    ctypedef struct mm_he_vec:
        const uint64_t *p
        size_t stride
        size_t width
    int mm_he_mulmod(mm_he_vec a, mm_he_vec b, uint64_t *out, size_t out_width, size_t count,
                     const uint64_t *m, size_t m_limbs, int nthreads) nogil
    int mm_he_powmod(mm_he_vec a, mm_he_vec e, uint64_t *out, size_t out_width, size_t count,
                     const uint64_t *m, size_t m_limbs, int nthreads) nogil
    int mm_he_powmod_secret(mm_he_vec a, mm_he_vec e, uint64_t *out, size_t out_width,
                            size_t count, const uint64_t *m, size_t m_limbs, int nthreads) nogil
    int mm_he_mod(mm_he_vec a, uint64_t *out, size_t out_width, size_t count,
                  const uint64_t *m, size_t m_limbs, int nthreads) nogil
    int mm_he_invert(mm_he_vec a, uint64_t *out, size_t out_width, size_t count,
                     const uint64_t *m, size_t m_limbs, int nthreads) nogil
    int mm_he_lfunc(mm_he_vec a, uint64_t *out, size_t out_width, size_t count,
                    const uint64_t *p, size_t p_limbs, int nthreads) nogil
    int mm_he_linear(mm_he_vec a, uint64_t *out, size_t out_width, size_t count,
                     const uint64_t *n, size_t n_limbs, int nthreads) nogil
    int mm_he_crt(mm_he_vec a, mm_he_vec b, uint64_t *out, size_t out_width, size_t count,
                  const uint64_t *p, size_t p_limbs, const uint64_t *q, size_t q_limbs,
                  const uint64_t *pinv, size_t pinv_limbs, int nthreads) nogil
    int mm_he_fb_table(const uint64_t *base, size_t base_limbs, int w, size_t nwin,
                       uint64_t *out, const uint64_t *m, size_t m_limbs, int nthreads) nogil
    int mm_he_fb_pow(const uint64_t *table, int w, size_t nwin, mm_he_vec e, uint64_t *out,
                     size_t out_width, size_t count, const uint64_t *m, size_t m_limbs,
                     int nthreads) nogil
    int mm_he_fb_pow_ct(const uint64_t *table, int w, size_t nwin, mm_he_vec e, uint64_t *out,
                        size_t out_width, size_t count, const uint64_t *m, size_t m_limbs,
                        int nthreads) nogil
    int mm_he_horner(mm_he_vec c, size_t k, size_t shift, uint64_t *out, size_t out_width,
                     size_t count, const uint64_t *m, size_t m_limbs, int nthreads) nogil
    int mm_he_hist(mm_he_vec c, const int64_t *rows, size_t nrows, const uint8_t *bins,
                   size_t ldb, size_t nfeat, size_t nbins, const uint8_t *limits,
                   uint64_t *out, uint8_t *filled, const uint64_t *m, size_t m_limbs,
                   int nthreads) nogil

_HE_ERRORS = {
    -1: "a result does not fit the output width",
    -2: "a bin index is out of range",
    -3: "a number has no inverse modulo the modulus",
    -4: "out of memory (or an OpenSSL BIGNUM call failed)",
    -5: "the modulus must be odd",
    -6: "a ciphertext is not in this key's group (not made under this key, or corrupted)",
}


cdef int _he_check(int rc, str what) except -1:
    if rc != 0:
        raise ValueError(f"he {what}: {_HE_ERRORS.get(rc, rc)}")
    return 0


cdef mm_he_vec _he_vec(const uint64_t[:, ::1] arr, size_t count, str name) except *:
    cdef mm_he_vec v
    if arr.shape[0] != 1 and <size_t>arr.shape[0] != count:
        raise ValueError(f"he: {name} has {arr.shape[0]} rows, expected {count} or 1")
    if arr.shape[1] == 0:
        raise ValueError(f"he: {name} has no limbs")
    v.p = &arr[0, 0] if arr.shape[0] else NULL
    v.stride = 0 if arr.shape[0] == 1 else arr.shape[1]
    v.width = arr.shape[1]
    return v


def _he_rows(a):
    """2-D C-contiguous uint64 view of a batch (1-D: one broadcast row)."""
    arr = _he_np.ascontiguousarray(a, dtype=_he_np.uint64)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


def _he_mod_arg(m):
    arr = _he_np.ascontiguousarray(m, dtype=_he_np.uint64)
    if arr.ndim != 1 or arr.shape[0] == 0 or arr[arr.shape[0] - 1] == 0:
        raise ValueError("he: a modulus must be 1-D limbs with a non-zero top limb")
    return arr


def _he_count(*arrays):
    rows = [a.shape[0] for a in arrays if a.shape[0] != 1]
    return rows[0] if rows else 1


def _he_binary(int which, a, b, m, size_t out_width, int nthreads):
    A, B, M = _he_rows(a), _he_rows(b), _he_mod_arg(m)
    cdef size_t count = _he_count(A, B)
    cdef mm_he_vec va = _he_vec(A, count, "a"), vb = _he_vec(B, count, "b")
    out = _he_np.empty((count, out_width), dtype=_he_np.uint64)
    cdef uint64_t[:, ::1] o = out
    cdef const uint64_t[::1] mv = M
    cdef int rc
    cdef uint64_t *op = &o[0, 0] if count else NULL
    with nogil:
        if which == 0:
            rc = mm_he_mulmod(va, vb, op, out_width, count, &mv[0], mv.shape[0], nthreads)
        elif which == 1:
            rc = mm_he_powmod(va, vb, op, out_width, count, &mv[0], mv.shape[0], nthreads)
        else:
            rc = mm_he_powmod_secret(va, vb, op, out_width, count, &mv[0], mv.shape[0],
                                     nthreads)
    _he_check(rc, ("mulmod", "powmod", "powmod_secret")[which])
    return out


def he_mulmod(a, b, m, size_t out_width, int nthreads=1):
    """Row-wise a * b mod m."""
    return _he_binary(0, a, b, m, out_width, nthreads)


def he_powmod(a, e, m, size_t out_width, int nthreads=1):
    """Row-wise a ^ e mod m."""
    return _he_binary(1, a, e, m, out_width, nthreads)


def he_powmod_secret(a, e, m, size_t out_width, int nthreads=1):
    """Row-wise a ^ e mod m, constant time in e (OpenSSL) whatever its length; m odd."""
    return _he_binary(2, a, e, m, out_width, nthreads)


def _he_unary(int which, a, m, size_t out_width, int nthreads):
    A, M = _he_rows(a), _he_mod_arg(m)
    cdef size_t count = A.shape[0]
    cdef mm_he_vec va = _he_vec(A, count, "a")
    out = _he_np.empty((count, out_width), dtype=_he_np.uint64)
    cdef uint64_t[:, ::1] o = out
    cdef const uint64_t[::1] mv = M
    cdef int rc
    cdef uint64_t *op = &o[0, 0] if count else NULL
    with nogil:
        if which == 0:
            rc = mm_he_mod(va, op, out_width, count, &mv[0], mv.shape[0], nthreads)
        elif which == 1:
            rc = mm_he_invert(va, op, out_width, count, &mv[0], mv.shape[0], nthreads)
        elif which == 2:
            rc = mm_he_lfunc(va, op, out_width, count, &mv[0], mv.shape[0], nthreads)
        else:
            rc = mm_he_linear(va, op, out_width, count, &mv[0], mv.shape[0], nthreads)
    _he_check(rc, ("mod", "invert", "lfunc", "linear")[which])
    return out


def he_mod(a, m, size_t out_width, int nthreads=1):
    """Row-wise a mod m."""
    return _he_unary(0, a, m, out_width, nthreads)


def he_invert(a, m, size_t out_width, int nthreads=1):
    """Row-wise a^-1 mod m; raises ValueError when some row is not invertible."""
    return _he_unary(1, a, m, out_width, nthreads)


def he_lfunc(a, p, size_t out_width, int nthreads=1):
    """Row-wise (a - 1) / p (exact division)."""
    return _he_unary(2, a, p, out_width, nthreads)


def he_linear(a, n, size_t out_width, int nthreads=1):
    """Row-wise 1 + a * n."""
    return _he_unary(3, a, n, out_width, nthreads)


def he_crt(a, b, p, q, pinv, size_t out_width, int nthreads=1):
    """Row-wise x with x = a mod p, x = b mod q (pinv = p^-1 mod q)."""
    A, B = _he_rows(a), _he_rows(b)
    P, Q, I = _he_mod_arg(p), _he_mod_arg(q), _he_mod_arg(pinv)
    cdef size_t count = _he_count(A, B)
    cdef mm_he_vec va = _he_vec(A, count, "a"), vb = _he_vec(B, count, "b")
    out = _he_np.empty((count, out_width), dtype=_he_np.uint64)
    cdef uint64_t[:, ::1] o = out
    cdef const uint64_t[::1] pv = P, qv = Q, iv = I
    cdef int rc
    cdef uint64_t *op = &o[0, 0] if count else NULL
    with nogil:
        rc = mm_he_crt(va, vb, op, out_width, count, &pv[0], pv.shape[0], &qv[0], qv.shape[0],
                       &iv[0], iv.shape[0], nthreads)
    _he_check(rc, "crt")
    return out


def he_fb_table(base, int w, size_t nwin, m, int nthreads=1):
    """Fixed-base table (nwin, 2^w, limbs of m): entry [j, d] = base^(d * 2^(w j)) mod m."""
    if w < 1 or w > 16:
        raise ValueError("he fb_table: window must be 1..16 bits")
    B, M = _he_np.ascontiguousarray(base, dtype=_he_np.uint64), _he_mod_arg(m)
    cdef size_t L = M.shape[0]
    out = _he_np.empty((nwin, 1 << w, L), dtype=_he_np.uint64)
    cdef uint64_t[:, :, ::1] o = out
    cdef const uint64_t[::1] bv = B, mv = M
    cdef int rc
    with nogil:
        rc = mm_he_fb_table(&bv[0], bv.shape[0], w, nwin, &o[0, 0, 0], &mv[0], L, nthreads)
    _he_check(rc, "fb_table")
    return out


def he_fb_pow(table, e, m, size_t out_width, int nthreads=1, bint constant_time=False):
    """Row-wise base ^ e mod m from a fixed-base table (e < 2^(w * nwin)).

    ``constant_time``: every entry of every window is read (masked) and every
    window multiplied, so memory addresses and the number of products do not
    depend on e (for secret exponents: randomisers, plaintexts); cost grows
    with the table's 2^w entries per window.
    """
    T = _he_np.ascontiguousarray(table, dtype=_he_np.uint64)
    E, M = _he_rows(e), _he_mod_arg(m)
    if T.ndim != 3 or T.shape[2] != M.shape[0]:
        raise ValueError("he fb_pow: table does not match the modulus")
    cdef int w = int(T.shape[1]).bit_length() - 1
    cdef size_t count = E.shape[0]
    cdef mm_he_vec ve = _he_vec(E, count, "e")
    out = _he_np.empty((count, out_width), dtype=_he_np.uint64)
    cdef uint64_t[:, ::1] o = out
    cdef const uint64_t[:, :, ::1] tv = T
    cdef const uint64_t[::1] mv = M
    cdef int rc
    cdef uint64_t *op = &o[0, 0] if count else NULL
    with nogil:
        if constant_time:
            rc = mm_he_fb_pow_ct(&tv[0, 0, 0], w, tv.shape[0], ve, op, out_width, count,
                                 &mv[0], mv.shape[0], nthreads)
        else:
            rc = mm_he_fb_pow(&tv[0, 0, 0], w, tv.shape[0], ve, op, out_width, count, &mv[0],
                              mv.shape[0], nthreads)
    _he_check(rc, "fb_pow")
    return out


def he_horner(c, size_t k, size_t shift, m, size_t out_width, int nthreads=1):
    """Rows i*k..i*k+k-1 of c combined: prod_j c_j^(2^(shift j)) mod m."""
    C, M = _he_rows(c), _he_mod_arg(m)
    if k == 0 or C.shape[0] % k:
        raise ValueError(f"he horner: {C.shape[0]} rows is not a multiple of k={k}")
    cdef size_t count = C.shape[0] // k
    cdef mm_he_vec vc = _he_vec(C, C.shape[0], "c")
    out = _he_np.empty((count, out_width), dtype=_he_np.uint64)
    cdef uint64_t[:, ::1] o = out
    cdef const uint64_t[::1] mv = M
    cdef int rc
    cdef uint64_t *op = &o[0, 0] if count else NULL
    with nogil:
        rc = mm_he_horner(vc, k, shift, op, out_width, count, &mv[0], mv.shape[0], nthreads)
    _he_check(rc, "horner")
    return out


def he_hist(c, rows, bins, size_t nbins, m, int nthreads=1, limits=None):
    """Encrypted histograms of c[rows] per feature row of bins (uint8, features x rows).

    Returns (sums, filled): sums (features, nbins, limbs of m), filled (features, nbins)
    uint8, 1 where some row fell into the bin. ``limits`` (uint8 per feature, optional):
    bins at or above limits[f] are not summed (left 1 and unfilled).
    """
    C, M = _he_rows(c), _he_mod_arg(m)
    R = _he_np.ascontiguousarray(rows, dtype=_he_np.int64)
    Bn = _he_np.ascontiguousarray(bins, dtype=_he_np.uint8)
    if Bn.ndim != 2:
        raise ValueError("he hist: bins must be features x rows")
    if R.shape[0] and (R.min() < 0 or R.max() >= min(C.shape[0], Bn.shape[1])):
        raise ValueError("he hist: a row index is out of range")
    if nbins < 1 or nbins > 256:
        raise ValueError("he hist: nbins must be 1..256")
    cdef size_t nfeat = Bn.shape[0], L = M.shape[0]
    Lim = None
    if limits is not None:
        Lim = _he_np.ascontiguousarray(limits, dtype=_he_np.uint8)
        if Lim.shape != (nfeat,):
            raise ValueError(f"he hist: limits must have one entry per feature ({nfeat})")
    cdef const uint8_t[::1] lv
    cdef const uint8_t *lp = NULL
    if Lim is not None and nfeat:
        lv = Lim
        lp = &lv[0]
    cdef mm_he_vec vc = _he_vec(C, C.shape[0], "c")
    sums = _he_np.empty((nfeat, nbins, L), dtype=_he_np.uint64)
    filled = _he_np.zeros((nfeat, nbins), dtype=_he_np.uint8)
    if nfeat == 0:
        return sums, filled
    cdef uint64_t[:, :, ::1] sv = sums
    cdef uint8_t[:, ::1] fv = filled
    cdef const int64_t[::1] rv = R
    cdef const uint8_t[:, ::1] bv = Bn
    cdef const uint64_t[::1] mv = M
    cdef int rc
    cdef const int64_t *rp = &rv[0] if R.shape[0] else NULL
    with nogil:
        rc = mm_he_hist(vc, rp, rv.shape[0], &bv[0, 0], bv.shape[1], nfeat, nbins, lp,
                        &sv[0, 0, 0], &fv[0, 0], &mv[0], L, nthreads)
    _he_check(rc, "hist")
    return sums, filled
