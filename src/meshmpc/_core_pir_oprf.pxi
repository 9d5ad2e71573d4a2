# Bindings for the PIR OPRF over Curve25519 (csrc/pir_oprf.c); see _core.pyx.
#
# Thin layer: argument checks only. ``fns`` is a uint64 array of the eleven
# libsodium function addresses in mm_x25519_fns order (built once by
# meshmpc.pir.oprf25519). The C calls release the GIL; each returns -1 or the
# index of the first item that failed.

from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef extern from "meshmpc/pir_oprf.h":
    ctypedef struct mm_x25519_fns:
        pass
    int64_t mm_x25519_h1(const mm_x25519_fns *f, const uint8_t *domain, size_t dlen,
                         const uint8_t *data, const int64_t *offsets, size_t n, uint8_t *u,
                         int nthreads) nogil
    int64_t mm_x25519_prf(const mm_x25519_fns *f, const uint8_t *key, const uint8_t *d1,
                          size_t d1len, const uint8_t *d2, size_t d2len, const uint8_t *data,
                          const int64_t *offsets, size_t n, uint8_t *out, int nthreads) nogil
    int64_t mm_x25519_blind(const mm_x25519_fns *f, const uint8_t *u, const uint8_t *r,
                            size_t n, uint8_t *blinded, int nthreads) nogil
    int64_t mm_x25519_ed_mul(const mm_x25519_fns *f, const uint8_t *s, size_t step,
                             const uint8_t *points, size_t n, uint8_t *out, int nthreads) nogil
    int64_t mm_x25519_finalize(const mm_x25519_fns *f, const uint8_t *s,
                               const uint8_t *points, const uint8_t *d2, size_t d2len,
                               const uint8_t *data, const int64_t *offsets, size_t n,
                               uint8_t *out, int nthreads) nogil
    int64_t mm_x25519_scalars(const mm_x25519_fns *f, const uint8_t *wide, size_t n,
                              uint8_t *r, uint8_t *s) nogil

X25519_FUNCTIONS = 11


cdef const mm_x25519_fns* _x25519_fns(const uint64_t[::1] fns) except NULL:
    if fns.shape[0] != X25519_FUNCTIONS:
        raise ValueError(f"x25519 oprf: need {X25519_FUNCTIONS} libsodium function addresses")
    for i in range(X25519_FUNCTIONS):
        if fns[i] == 0:
            raise ValueError(f"x25519 oprf: libsodium function address {i} is missing")
    return <const mm_x25519_fns*>&fns[0]


cdef const uint8_t* _x25519_items(const uint8_t[::1] data, const int64_t[::1] offsets,
                                  Py_ssize_t n, bytes fallback) except NULL:
    if offsets.shape[0] != n + 1 or (n > 0 and (offsets[0] < 0 or offsets[n] > data.shape[0])):
        raise ValueError("x25519 oprf: offsets must be n + 1 positions within the data")
    if n > 0 and _oprf_np.any(_oprf_np.diff(_oprf_np.asarray(offsets)) < 0):
        raise ValueError("x25519 oprf: offsets must rise")
    return &data[0] if data.shape[0] else <const uint8_t*>fallback


def x25519_h1_into(const uint64_t[::1] fns, bytes domain, const uint8_t[::1] data,
                   const int64_t[::1] offsets, uint8_t[:, ::1] u, int nthreads=1) -> int:
    """u[i] = the Curve25519 u-coordinate H1(item i); -1 or the first failing index."""
    cdef const mm_x25519_fns* f = _x25519_fns(fns)
    cdef Py_ssize_t n = u.shape[0]
    if u.shape[1] != 32:
        raise ValueError("x25519 h1: out rows are 32 bytes")
    cdef const uint8_t* src = _x25519_items(data, offsets, n, domain)
    cdef const uint8_t* d = domain
    cdef size_t dl = len(domain)
    cdef int64_t bad = -1
    if n == 0:
        return -1
    with nogil:
        bad = mm_x25519_h1(f, d, dl, src, &offsets[0], n, &u[0, 0], nthreads)
    return bad


def x25519_prf_into(const uint64_t[::1] fns, bytes key, bytes d1, bytes d2,
                    const uint8_t[::1] data, const int64_t[::1] offsets, uint8_t[:, ::1] out,
                    int nthreads=1) -> int:
    """out[i] = H2(item i, X25519(key, H1(item i))); -1 or the first failing index."""
    cdef const mm_x25519_fns* f = _x25519_fns(fns)
    cdef Py_ssize_t n = out.shape[0]
    if out.shape[1] != 32 or len(key) != 32:
        raise ValueError("x25519 prf: key and output rows are 32 bytes")
    cdef const uint8_t* src = _x25519_items(data, offsets, n, d1)
    cdef const uint8_t* k = key
    cdef const uint8_t* a = d1
    cdef const uint8_t* b = d2
    cdef size_t al = len(d1), bl = len(d2)
    cdef int64_t bad = -1
    if n == 0:
        return -1
    with nogil:
        bad = mm_x25519_prf(f, k, a, al, b, bl, src, &offsets[0], n, &out[0, 0], nthreads)
    return bad


def x25519_blind_into(const uint64_t[::1] fns, const uint8_t[:, ::1] u,
                      const uint8_t[:, ::1] r, uint8_t[:, ::1] out, int nthreads=1) -> int:
    """out[i] = r_i * 8 * Ed(u_i) on edwards25519; -1 or the first failing index."""
    cdef const mm_x25519_fns* f = _x25519_fns(fns)
    cdef Py_ssize_t n = u.shape[0]
    if u.shape[1] != 32 or r.shape[1] != 32 or out.shape[1] != 32 \
            or r.shape[0] != n or out.shape[0] != n:
        raise ValueError(f"x25519 blind: need {n}x32 points, scalars and output")
    cdef int64_t bad = -1
    if n == 0:
        return -1
    with nogil:
        bad = mm_x25519_blind(f, &u[0, 0], &r[0, 0], n, &out[0, 0], nthreads)
    return bad


def x25519_ed_mul_into(const uint64_t[::1] fns, const uint8_t[:, ::1] scalars,
                       const uint8_t[:, ::1] points, uint8_t[:, ::1] out,
                       int nthreads=1) -> int:
    """out[i] = s_i * P_i on edwards25519 (one scalar row: the same for all), each P_i
    checked to lie in the prime-order subgroup; -1 or the first bad index."""
    cdef const mm_x25519_fns* f = _x25519_fns(fns)
    cdef Py_ssize_t n = points.shape[0]
    if points.shape[1] != 32 or scalars.shape[1] != 32 or out.shape[1] != 32 \
            or out.shape[0] != n or scalars.shape[0] not in (1, n):
        raise ValueError(f"x25519 ed mul: need 1 or {n} scalars, {n}x32 points and output")
    cdef size_t step = 0 if scalars.shape[0] == 1 and n != 1 else 32
    cdef int64_t bad = -1
    if n == 0:
        return -1
    with nogil:
        bad = mm_x25519_ed_mul(f, &scalars[0, 0], step, &points[0, 0], n, &out[0, 0], nthreads)
    return bad


def x25519_finalize_into(const uint64_t[::1] fns, const uint8_t[:, ::1] scalars,
                         const uint8_t[:, ::1] points, bytes d2, const uint8_t[::1] data,
                         const int64_t[::1] offsets, uint8_t[:, ::1] out,
                         int nthreads=1) -> int:
    """out[i] = H2(item i, u(s_i * P_i)); -1 or the first failing index."""
    cdef const mm_x25519_fns* f = _x25519_fns(fns)
    cdef Py_ssize_t n = out.shape[0]
    if points.shape[0] != n or scalars.shape[0] != n or out.shape[1] != 32 \
            or points.shape[1] != 32 or scalars.shape[1] != 32:
        raise ValueError(f"x25519 finalize: need {n}x32 scalars, points and output")
    cdef const uint8_t* src = _x25519_items(data, offsets, n, d2)
    cdef const uint8_t* b = d2
    cdef size_t bl = len(d2)
    cdef int64_t bad = -1
    if n == 0:
        return -1
    with nogil:
        bad = mm_x25519_finalize(f, &scalars[0, 0], &points[0, 0], b, bl, src, &offsets[0], n,
                                 &out[0, 0], nthreads)
    return bad


def x25519_scalars_into(const uint64_t[::1] fns, const uint8_t[:, ::1] wide,
                        uint8_t[:, ::1] r, uint8_t[:, ::1] s) -> int:
    """r_i = wide_i mod L, s_i = (8 r_i)^-1 mod L; -1 or the first zero index."""
    cdef const mm_x25519_fns* f = _x25519_fns(fns)
    cdef Py_ssize_t n = wide.shape[0]
    if wide.shape[1] != 64 or r.shape[0] != n or s.shape[0] != n or r.shape[1] != 32 \
            or s.shape[1] != 32:
        raise ValueError(f"x25519 scalars: need {n}x64 input and {n}x32 outputs")
    cdef int64_t bad = -1
    if n == 0:
        return -1
    with nogil:
        bad = mm_x25519_scalars(f, &wide[0, 0], n, &r[0, 0], &s[0, 0])
    return bad
