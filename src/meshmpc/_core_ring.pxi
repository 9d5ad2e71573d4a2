# Bindings for the ring kernel family (csrc/ring*.c); see _core.pyx.
# Z_2^128 arrays are uint64 arrays whose last axis has length 2 (lo, hi words).

from libc.stdint cimport uint64_t

cdef extern from "meshmpc/ring.h":
    void _c_ring_bitslice64 "ring_bitslice64"(const uint64_t *x, size_t n, uint64_t *planes, size_t w) nogil
    void _c_ring_plane_to_u64 "ring_plane_to_u64"(const uint64_t *plane, size_t n, uint64_t *out) nogil
    void _c_ring_u64_to_plane "ring_u64_to_plane"(const uint64_t *bits, size_t n, uint64_t *plane) nogil
    void _c_ring64_matmul_tn "ring64_matmul_tn"(const uint64_t *a, const uint64_t *b,
                                                uint64_t *out, size_t k, size_t m,
                                                size_t p) nogil
    void _c_ring64_matmul_nn "ring64_matmul_nn"(const uint64_t *a, const uint64_t *b,
                                                uint64_t *out, size_t m, size_t k,
                                                size_t p) nogil
    int _c_ring64_matmul_fixed "ring64_matmul_fixed"(const double *x, const uint64_t *b,
                                                     uint64_t *out, size_t m, size_t k,
                                                     size_t p, double scale,
                                                     double bound) nogil
    void _c_ring128_add "ring128_add"(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n) nogil
    void _c_ring128_sub "ring128_sub"(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n) nogil
    void _c_ring128_mul "ring128_mul"(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n) nogil
    void _c_ring128_matmul "ring128_matmul"(const uint64_t *a, const uint64_t *b, uint64_t *out,
                        size_t m, size_t k, size_t p) nogil
    void _c_ring128_sar "ring128_sar"(const uint64_t *a, uint64_t *out, size_t n, unsigned s) nogil
    void _c_ring128_shr "ring128_shr"(const uint64_t *a, uint64_t *out, size_t n, unsigned s) nogil
    void _c_ring128_from_double "ring128_from_double"(const double *x, uint64_t *out, size_t n, unsigned f) nogil
    void _c_ring128_to_double "ring128_to_double"(const uint64_t *a, double *out, size_t n, unsigned f) nogil


def ring_bitslice64(const uint64_t[::1] x, uint64_t[:, ::1] planes):
    """Bit-slice x into planes (64 x ceil(n/64)): plane j holds bit j of every word."""
    cdef size_t n = x.shape[0]
    cdef size_t w = (n + 63) // 64
    if planes.shape[0] != 64 or <size_t>planes.shape[1] != w:
        raise ValueError(f"planes must be 64 x {w}, got {planes.shape[0]} x {planes.shape[1]}")
    if n == 0:
        return
    with nogil:
        _c_ring_bitslice64(&x[0], n, &planes[0, 0], w)


def ring_plane_to_u64(const uint64_t[::1] plane, uint64_t[::1] out):
    """Unpack the first len(out) bits of a plane into 0/1 words."""
    cdef size_t n = out.shape[0]
    if <size_t>plane.shape[0] * 64 < n:
        raise ValueError("plane too short for out")
    if n == 0:
        return
    with nogil:
        _c_ring_plane_to_u64(&plane[0], n, &out[0])


def ring_u64_to_plane(const uint64_t[::1] bits, uint64_t[::1] plane):
    """Pack 0/1 words (bit 0 of each) into a plane of ceil(n/64) words."""
    cdef size_t n = bits.shape[0]
    if <size_t>plane.shape[0] != (n + 63) // 64:
        raise ValueError("plane must have ceil(n/64) words")
    if n == 0:
        return
    with nogil:
        _c_ring_u64_to_plane(&bits[0], n, &plane[0])


def ring64_matmul_tn(const uint64_t[:, ::1] a, const uint64_t[:, ::1] b,
                     uint64_t[:, ::1] out):
    """out (m x p) = a.T @ b mod 2^64 for a stored as (k, m) and b as (k, p)."""
    cdef size_t k = a.shape[0], m = a.shape[1], p = b.shape[1]
    if <size_t>b.shape[0] != k or <size_t>out.shape[0] != m or <size_t>out.shape[1] != p:
        raise ValueError(f"ring64_matmul_tn: ({k},{m})^T @ ({b.shape[0]},{p}) into "
                         f"({out.shape[0]},{out.shape[1]}) does not match")
    if m == 0 or p == 0:
        return
    if k == 0:
        out[:, :] = 0
        return
    with nogil:
        _c_ring64_matmul_tn(&a[0, 0], &b[0, 0], &out[0, 0], k, m, p)


def ring64_matmul_nn(const uint64_t[:, ::1] a, const uint64_t[:, ::1] b,
                     uint64_t[:, ::1] out):
    """out (m x p) = a @ b mod 2^64 for a (m, k) and b (k, p), p small (matrix-vector)."""
    cdef size_t m = a.shape[0], k = a.shape[1], p = b.shape[1]
    if <size_t>b.shape[0] != k or <size_t>out.shape[0] != m or <size_t>out.shape[1] != p:
        raise ValueError(f"ring64_matmul_nn: ({m},{k}) @ ({b.shape[0]},{p}) into "
                         f"({out.shape[0]},{out.shape[1]}) does not match")
    if m == 0 or p == 0:
        return
    if k == 0:
        out[:, :] = 0
        return
    with nogil:
        _c_ring64_matmul_nn(&a[0, 0], &b[0, 0], &out[0, 0], m, k, p)


def ring64_matmul_fixed(const double[:, ::1] x, const uint64_t[:, ::1] b,
                        uint64_t[:, ::1] out, double scale, double bound):
    """out = round(x * scale) @ b mod 2^64 (fixed-point encoding fused with the product).

    Raises ValueError if an encoded entry reaches ``bound`` in magnitude or x is not finite.
    """
    cdef size_t m = x.shape[0], k = x.shape[1], p = b.shape[1]
    cdef int status = 0
    if <size_t>b.shape[0] != k or <size_t>out.shape[0] != m or <size_t>out.shape[1] != p:
        raise ValueError(f"ring64_matmul_fixed: ({m},{k}) @ ({b.shape[0]},{p}) into "
                         f"({out.shape[0]},{out.shape[1]}) does not match")
    if m == 0 or p == 0:
        return
    if k == 0:
        out[:, :] = 0
        return
    with nogil:
        status = _c_ring64_matmul_fixed(&x[0, 0], &b[0, 0], &out[0, 0], m, k, p, scale, bound)
    if status:
        raise ValueError("ring64_matmul_fixed: an entry is out of range or not finite")


cdef size_t _pairs(const uint64_t[::1] a, uint64_t[::1] out) except? 0:
    if a.shape[0] != out.shape[0] or a.shape[0] % 2:
        raise ValueError("Z_2^128 operands need equal, even word counts")
    return a.shape[0] // 2


def ring128_add(const uint64_t[::1] a, const uint64_t[::1] b, uint64_t[::1] out):
    """out = a + b mod 2^128 (flat word arrays, two words per element)."""
    cdef size_t n = _pairs(a, out)
    if b.shape[0] != a.shape[0]:
        raise ValueError("operand sizes differ")
    if n:
        with nogil:
            _c_ring128_add(&a[0], &b[0], &out[0], n)


def ring128_sub(const uint64_t[::1] a, const uint64_t[::1] b, uint64_t[::1] out):
    """out = a - b mod 2^128."""
    cdef size_t n = _pairs(a, out)
    if b.shape[0] != a.shape[0]:
        raise ValueError("operand sizes differ")
    if n:
        with nogil:
            _c_ring128_sub(&a[0], &b[0], &out[0], n)


def ring128_mul(const uint64_t[::1] a, const uint64_t[::1] b, uint64_t[::1] out):
    """out = a * b mod 2^128."""
    cdef size_t n = _pairs(a, out)
    if b.shape[0] != a.shape[0]:
        raise ValueError("operand sizes differ")
    if n:
        with nogil:
            _c_ring128_mul(&a[0], &b[0], &out[0], n)


def ring128_matmul(const uint64_t[::1] a, const uint64_t[::1] b, uint64_t[::1] out,
                   size_t m, size_t k, size_t p):
    """out (m x p) = a (m x k) @ b (k x p) mod 2^128, flat row-major word arrays."""
    if <size_t>a.shape[0] != 2 * m * k or <size_t>b.shape[0] != 2 * k * p:
        raise ValueError("matmul operand sizes do not match m, k, p")
    if <size_t>out.shape[0] != 2 * m * p:
        raise ValueError("matmul output size does not match m, p")
    if k == 0:
        out[:] = 0
        return
    if m and p:
        with nogil:
            _c_ring128_matmul(&a[0], &b[0], &out[0], m, k, p)


def ring128_sar(const uint64_t[::1] a, uint64_t[::1] out, unsigned s):
    """Arithmetic right shift of every element by s (< 128)."""
    cdef size_t n = _pairs(a, out)
    if s >= 128:
        raise ValueError("shift must be below 128")
    if n:
        with nogil:
            _c_ring128_sar(&a[0], &out[0], n, s)


def ring128_shr(const uint64_t[::1] a, uint64_t[::1] out, unsigned s):
    """Logical right shift of every element by s (< 128)."""
    cdef size_t n = _pairs(a, out)
    if s >= 128:
        raise ValueError("shift must be below 128")
    if n:
        with nogil:
            _c_ring128_shr(&a[0], &out[0], n, s)


def ring128_from_double(const double[::1] x, uint64_t[::1] out, unsigned f):
    """Encode round(x * 2^f) as two's complement Z_2^128 elements."""
    if <size_t>out.shape[0] != 2 * <size_t>x.shape[0]:
        raise ValueError("out needs two words per input")
    cdef size_t n = x.shape[0]
    if n:
        with nogil:
            _c_ring128_from_double(&x[0], &out[0], n, f)


def ring128_to_double(const uint64_t[::1] a, double[::1] out, unsigned f):
    """Decode signed Z_2^128 fixed-point elements (f fraction bits) to doubles."""
    if <size_t>a.shape[0] != 2 * <size_t>out.shape[0]:
        raise ValueError("a needs two words per output")
    cdef size_t n = out.shape[0]
    if n:
        with nogil:
            _c_ring128_to_double(&a[0], &out[0], n, f)


# --- half-gates garbling (csrc/gc.c): layers of AND gates over 16-byte labels ---

cdef extern from "meshmpc/gc.h":
    void _c_gc_garble_and "gc_garble_and"(const uint8_t *k, uint64_t tweak, const uint8_t *a0,
                                          const uint8_t *b0, const uint8_t *delta,
                                          unsigned color, uint8_t *c0, uint8_t *tables,
                                          uint8_t *scratch, size_t n) nogil
    void _c_gc_eval_and "gc_eval_and"(const uint8_t *k, uint64_t tweak, const uint8_t *a,
                                      const uint8_t *b, unsigned color, const uint8_t *tables,
                                      uint8_t *c, uint8_t *scratch, size_t n) nogil
    void _c_gc_colors "gc_colors"(const uint8_t *labels, unsigned color, uint8_t *out,
                                  size_t n) nogil

from libc.stdint cimport uint8_t
import numpy as _ring_np


cdef size_t _labels(const uint8_t[:, ::1] x, str name) except? 0:
    if x.shape[1] != 16:
        raise ValueError(f"{name}: labels must be (n, 16) uint8")
    return x.shape[0]


def gc_garble_and(const uint8_t[::1] rk, uint64_t tweak, const uint8_t[:, ::1] a0,
                  const uint8_t[:, ::1] b0, const uint8_t[::1] delta, unsigned color,
                  uint8_t[:, ::1] c0, uint8_t[:, ::1] tables):
    """Garble n AND gates (half-gates): output zero-labels c0 (n,16), tables (n,32)."""
    cdef size_t n = _labels(a0, "a0")
    if rk.shape[0] != 176 or delta.shape[0] != 16 or color >= 128:
        raise ValueError("need 176-byte round keys, a 16-byte delta and color < 128")
    if <size_t>b0.shape[0] != n or <size_t>c0.shape[0] != n or <size_t>tables.shape[0] != n \
            or tables.shape[1] != 32 or c0.shape[1] != 16 or b0.shape[1] != 16:
        raise ValueError("gc_garble_and: a0, b0, c0 (n,16) and tables (n,32) must agree")
    if n == 0:
        return
    scratch = _ring_np.empty((4 * n, 16), dtype=_ring_np.uint8)
    cdef uint8_t[:, ::1] s = scratch
    with nogil:
        _c_gc_garble_and(&rk[0], tweak, &a0[0, 0], &b0[0, 0], &delta[0], color, &c0[0, 0],
                         &tables[0, 0], &s[0, 0], n)


def gc_eval_and(const uint8_t[::1] rk, uint64_t tweak, const uint8_t[:, ::1] a,
                const uint8_t[:, ::1] b, unsigned color, const uint8_t[:, ::1] tables,
                uint8_t[:, ::1] c):
    """Evaluate n garbled AND gates on active labels a, b (n,16): active outputs c."""
    cdef size_t n = _labels(a, "a")
    if rk.shape[0] != 176 or color >= 128:
        raise ValueError("need 176-byte round keys and color < 128")
    if <size_t>b.shape[0] != n or <size_t>c.shape[0] != n or <size_t>tables.shape[0] != n \
            or tables.shape[1] != 32 or c.shape[1] != 16 or b.shape[1] != 16:
        raise ValueError("gc_eval_and: a, b, c (n,16) and tables (n,32) must agree")
    if n == 0:
        return
    scratch = _ring_np.empty((2 * n, 16), dtype=_ring_np.uint8)
    cdef uint8_t[:, ::1] s = scratch
    with nogil:
        _c_gc_eval_and(&rk[0], tweak, &a[0, 0], &b[0, 0], color, &tables[0, 0], &c[0, 0],
                       &s[0, 0], n)


def gc_colors(const uint8_t[:, ::1] labels, unsigned color, uint8_t[::1] out):
    """out[i] = bit ``color`` of label i."""
    cdef size_t n = _labels(labels, "labels")
    if <size_t>out.shape[0] != n or color >= 128:
        raise ValueError("gc_colors: out must have one byte per label, color < 128")
    if n:
        with nogil:
            _c_gc_colors(&labels[0, 0], color, &out[0], n)
