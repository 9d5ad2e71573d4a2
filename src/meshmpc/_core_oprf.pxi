# Bindings for the OPRF kernel family (csrc/oprf.c); see _core.pyx.
#
# Thin layer: argument checks only. ``fns`` is a uint64 array of the eight
# libsodium function addresses in mm_sodium_fns order (built once by
# meshmpc.crypto.sodium). The C calls release the GIL.

from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as _oprf_np

cdef extern from "meshmpc/oprf.h":
    ctypedef struct mm_sodium_fns:
        pass
    int mm_oprf_h1(const mm_sodium_fns *f, const uint8_t *domain, size_t dlen,
                   const uint8_t *data, const int64_t *offsets, size_t n, uint8_t *out,
                   int nthreads) nogil
    int64_t mm_ristretto_mul(const mm_sodium_fns *f, const uint8_t *scalars, size_t scalar_step,
                             const uint8_t *points, size_t n, uint8_t *out, int nthreads) nogil
    int mm_oprf_h2(const mm_sodium_fns *f, const uint8_t *domain, size_t dlen,
                   const uint8_t *data, const int64_t *offsets, size_t n, const uint8_t *points,
                   uint8_t *out, int nthreads) nogil
    int64_t mm_ristretto_scalars(const mm_sodium_fns *f, const uint8_t *wide, size_t n,
                                 uint8_t *scalars, uint8_t *inv) nogil
    int mm_blake2b_items(const mm_sodium_fns *f, const uint8_t *data, const int64_t *offsets,
                         size_t n, const uint8_t *key, size_t keylen, const uint8_t *personal,
                         uint8_t *out, size_t outlen, int nthreads) nogil
    int mm_blake2b_rows(const mm_sodium_fns *f, const uint8_t *inp, size_t inlen, size_t n,
                        const uint8_t *key, size_t keylen, const uint8_t *personal,
                        uint8_t *out, size_t outlen, int nthreads) nogil
    void mm_seal_rows(const uint8_t *keys, const uint64_t *starts, uint8_t *rows,
                      size_t length, size_t n, int nthreads) nogil

OPRF_FUNCTIONS = 8


cdef const mm_sodium_fns* _oprf_fns(const uint64_t[::1] fns) except NULL:
    if fns.shape[0] != OPRF_FUNCTIONS:
        raise ValueError(f"oprf: need {OPRF_FUNCTIONS} libsodium function addresses")
    for i in range(OPRF_FUNCTIONS):
        if fns[i] == 0:
            raise ValueError(f"oprf: libsodium function address {i} is missing")
    return <const mm_sodium_fns*>&fns[0]


cdef _oprf_offsets(const uint8_t[::1] data, const int64_t[::1] offsets):
    cdef Py_ssize_t n = offsets.shape[0] - 1
    if n < 0 or (n > 0 and (offsets[0] < 0 or offsets[n] > data.shape[0])):
        raise ValueError("oprf: offsets must be n + 1 rising positions within the data")
    if n > 0 and _oprf_np.any(_oprf_np.diff(_oprf_np.asarray(offsets)) < 0):
        raise ValueError("oprf: offsets must rise")
    return n


def oprf_h1_into(const uint64_t[::1] fns, bytes domain, const uint8_t[::1] data,
                 const int64_t[::1] offsets, uint8_t[:, ::1] out, int nthreads=1) -> None:
    """out[i] = ristretto255 from_hash(SHA-512(domain || le64(len) || item i))."""
    cdef const mm_sodium_fns* f = _oprf_fns(fns)
    cdef Py_ssize_t n = _oprf_offsets(data, offsets)
    if out.shape[0] != n or out.shape[1] != 32:
        raise ValueError(f"oprf h1: out must be {n}x32")
    cdef const uint8_t* d = domain
    cdef size_t dl = len(domain)
    cdef const uint8_t* src = &data[0] if data.shape[0] else <const uint8_t*>d
    cdef int rc = 0
    if n == 0:
        return
    with nogil:
        rc = mm_oprf_h1(f, d, dl, src, &offsets[0], n, &out[0, 0], nthreads)
    if rc != 0:
        raise RuntimeError("oprf h1: libsodium failed")


def ristretto_mul_into(const uint64_t[::1] fns, const uint8_t[:, ::1] scalars,
                       const uint8_t[:, ::1] points, uint8_t[:, ::1] out,
                       int nthreads=1) -> int:
    """out[i] = s_i * P_i (one scalar row: the same for all); -1 or first bad index."""
    cdef const mm_sodium_fns* f = _oprf_fns(fns)
    cdef Py_ssize_t n = points.shape[0]
    if points.shape[1] != 32 or scalars.shape[1] != 32:
        raise ValueError("ristretto mul: points and scalars are 32 bytes")
    if scalars.shape[0] not in (1, n) or out.shape[0] != n or out.shape[1] != 32:
        raise ValueError(f"ristretto mul: need 1 or {n} scalars and a {n}x32 output")
    cdef size_t step = 0 if scalars.shape[0] == 1 and n != 1 else 32
    cdef int64_t failed = -1
    if n == 0:
        return -1
    with nogil:
        failed = mm_ristretto_mul(f, &scalars[0, 0], step, &points[0, 0], n, &out[0, 0],
                                  nthreads)
    return failed


def oprf_h2_into(const uint64_t[::1] fns, bytes domain, const uint8_t[::1] data,
                 const int64_t[::1] offsets, const uint8_t[:, ::1] points, uint8_t[:, ::1] out,
                 int nthreads=1) -> None:
    """out[i] = SHA-512(domain || le64(len) || item i || P_i)[:32]."""
    cdef const mm_sodium_fns* f = _oprf_fns(fns)
    cdef Py_ssize_t n = _oprf_offsets(data, offsets)
    if points.shape[0] != n or points.shape[1] != 32 or out.shape[0] != n or out.shape[1] != 32:
        raise ValueError(f"oprf h2: points and out must be {n}x32")
    cdef const uint8_t* d = domain
    cdef size_t dl = len(domain)
    cdef const uint8_t* src = &data[0] if data.shape[0] else <const uint8_t*>d
    cdef int rc = 0
    if n == 0:
        return
    with nogil:
        rc = mm_oprf_h2(f, d, dl, src, &offsets[0], n, &points[0, 0], &out[0, 0], nthreads)
    if rc != 0:
        raise RuntimeError("oprf h2: libsodium failed")


def ristretto_scalars_into(const uint64_t[::1] fns, const uint8_t[:, ::1] wide,
                           uint8_t[:, ::1] scalars, inverses=None) -> int:
    """Reduce 64-byte strings to scalars (and invert them); -1 or first zero index."""
    cdef const mm_sodium_fns* f = _oprf_fns(fns)
    cdef Py_ssize_t n = wide.shape[0]
    if wide.shape[1] != 64 or scalars.shape[0] != n or scalars.shape[1] != 32:
        raise ValueError(f"ristretto scalars: need {n}x64 input and {n}x32 output")
    cdef uint8_t[:, ::1] inv
    cdef uint8_t* ip = NULL
    if inverses is not None:
        inv = inverses
        if inv.shape[0] != n or inv.shape[1] != 32:
            raise ValueError(f"ristretto scalars: inverses must be {n}x32")
        if n:
            ip = &inv[0, 0]
    if n == 0:
        return -1
    cdef int64_t bad
    with nogil:
        bad = mm_ristretto_scalars(f, &wide[0, 0], n, &scalars[0, 0], ip)
    return bad


def blake2b_rows_into(const uint64_t[::1] fns, const uint8_t[:, ::1] rows, bytes key,
                      bytes personal, uint8_t[:, ::1] out, int nthreads=1) -> None:
    """out[i] = BLAKE2b(rows[i], key, personal) truncated to out's width (<= 64)."""
    cdef const mm_sodium_fns* f = _oprf_fns(fns)
    cdef Py_ssize_t n = rows.shape[0]
    if len(personal) != 16 or len(key) > 64 or not 16 <= out.shape[1] <= 64:
        raise ValueError("blake2b rows: personal 16 bytes, key <= 64, output 16..64 bytes")
    if out.shape[0] != n:
        raise ValueError(f"blake2b rows: out must have {n} rows")
    cdef const uint8_t* kp = key
    cdef const uint8_t* pp = personal
    cdef size_t kl = len(key), inl = rows.shape[1], outl = out.shape[1]
    cdef int rc = 0
    if n == 0:
        return
    with nogil:
        rc = mm_blake2b_rows(f, &rows[0, 0], inl, n, kp, kl, pp, &out[0, 0], outl, nthreads)
    if rc != 0:
        raise RuntimeError("blake2b rows: libsodium failed")


def blake2b_items_into(const uint64_t[::1] fns, const uint8_t[::1] data,
                       const int64_t[::1] offsets, bytes key, bytes personal,
                       uint8_t[:, ::1] out, int nthreads=1) -> None:
    """out[i] = BLAKE2b(item i, key, personal) truncated to out's width (16..64), items
    of any length (data[offsets[i]:offsets[i+1]]), on nthreads threads."""
    cdef const mm_sodium_fns* f = _oprf_fns(fns)
    cdef Py_ssize_t n = _oprf_offsets(data, offsets)
    if len(personal) != 16 or len(key) > 64 or not 16 <= out.shape[1] <= 64:
        raise ValueError("blake2b items: personal 16 bytes, key <= 64, output 16..64 bytes")
    if out.shape[0] != n:
        raise ValueError(f"blake2b items: out must have {n} rows")
    cdef const uint8_t* kp = key
    cdef const uint8_t* pp = personal
    cdef const uint8_t* src = &data[0] if data.shape[0] else pp
    cdef size_t kl = len(key), outl = out.shape[1]
    cdef int rc = 0
    if n == 0:
        return
    with nogil:
        rc = mm_blake2b_items(f, src, &offsets[0], n, kp, kl, pp, &out[0, 0], outl, nthreads)
    if rc != 0:
        raise RuntimeError("blake2b items: libsodium failed")


def seal_rows_inplace(const uint8_t[:, ::1] keys, const uint64_t[::1] starts,
                      uint8_t[:, ::1] rows, int nthreads=1) -> None:
    """rows[i] ^= AES-128-CTR keystream of key i from counter starts[i] (meshmpc layout)."""
    if keys.shape[1] != 16 or keys.shape[0] != rows.shape[0] or starts.shape[0] != rows.shape[0]:
        raise ValueError("seal rows: one 16-byte key and one start counter per row")
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        return
    with nogil:
        mm_seal_rows(&keys[0, 0], &starts[0], &rows[0, 0], rows.shape[1], rows.shape[0],
                     nthreads)
