# Bindings for the millionaires' comparison kernels (csrc/mill.c); see _core.pyx.

from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef extern from "meshmpc/mill.h":
    void _c_mill_send "mill_send"(const uint8_t *m0, const uint8_t *m1, size_t stride,
                                  const uint64_t *u,
                                  size_t n, const uint64_t *lt_s, const uint64_t *eq_s,
                                  uint32_t *w_out) nogil
    void _c_mill_recv "mill_recv"(const uint8_t *m, size_t stride, const uint64_t *v, size_t n,
                                  const uint32_t *w_in, uint64_t *lt, uint64_t *eq) nogil

MILL_DIGITS = 16


def _mill_check_pads(const uint8_t[:, ::1] pads, size_t n, str name):
    if <size_t>pads.shape[0] != 4 * MILL_DIGITS * n or pads.shape[1] not in (4, 16):
        raise ValueError(f"{name} must be {4 * MILL_DIGITS * n} x 16 (or x 4) pads, "
                         f"got {pads.shape[0]} x {pads.shape[1]}")


def _mill_check_planes(const uint64_t[:, ::1] planes, size_t n, str name):
    if planes.shape[0] != MILL_DIGITS or <size_t>planes.shape[1] != (n + 63) // 64:
        raise ValueError(f"{name} must be {MILL_DIGITS} x {(n + 63) // 64} plane words")


def mill_send(const uint8_t[:, ::1] m0, const uint8_t[:, ::1] m1, const uint64_t[::1] u,
              const uint64_t[:, ::1] lt_s, const uint64_t[:, ::1] eq_s, uint32_t[::1] w_out):
    """Sender's 16 masked two-bit messages per digit of u (see csrc/mill.c); pads of
    16 bytes or their first 4 (as :func:`cot_low_send` gives them)."""
    cdef size_t n = u.shape[0]
    _mill_check_pads(m0, n, "m0")
    _mill_check_pads(m1, n, "m1")
    if m0.shape[1] != m1.shape[1]:
        raise ValueError("m0 and m1 must have the same pad width")
    _mill_check_planes(lt_s, n, "lt_s")
    _mill_check_planes(eq_s, n, "eq_s")
    if <size_t>w_out.shape[0] != MILL_DIGITS * n:
        raise ValueError(f"w_out must hold {MILL_DIGITS * n} words")
    if n == 0:
        return
    with nogil:
        _c_mill_send(&m0[0, 0], &m1[0, 0], m0.shape[1], &u[0], n, &lt_s[0, 0], &eq_s[0, 0], &w_out[0])


def mill_recv(const uint8_t[:, ::1] m, const uint64_t[::1] v, const uint32_t[::1] w_in,
              uint64_t[:, ::1] lt, uint64_t[:, ::1] eq):
    """Receiver's shares of [u_d < v_d] and [u_d == v_d] for every digit (see csrc/mill.c)."""
    cdef size_t n = v.shape[0]
    _mill_check_pads(m, n, "m")
    _mill_check_planes(lt, n, "lt")
    _mill_check_planes(eq, n, "eq")
    if <size_t>w_in.shape[0] != MILL_DIGITS * n:
        raise ValueError(f"w_in must hold {MILL_DIGITS * n} words")
    if n == 0:
        return
    with nogil:
        _c_mill_recv(&m[0, 0], m.shape[1], &v[0], n, &w_in[0], &lt[0, 0], &eq[0, 0])


cdef extern from "meshmpc/cot_hash.h":
    void _c_cot_low_send "cot_low_send"(const mm_aes_key *fixed, uint64_t tweak,
                                        const uint8_t *q, const uint8_t *delta, size_t n,
                                        size_t width, uint8_t *out0, uint8_t *out1) nogil
    void _c_cot_low_recv "cot_low_recv"(const mm_aes_key *fixed, uint64_t tweak,
                                        const uint8_t *t, size_t n, size_t width,
                                        uint8_t *out) nogil


def _cot_low_rows(out, size_t n, str name) -> size_t:
    if out.ndim != 2 or <size_t>out.shape[0] != n or not 1 <= out.shape[1] <= 16:
        raise ValueError(f"{name} must be {n} x width (1..16) bytes")
    return out.shape[1]


def cot_low_send(rk, uint64_t tweak, q, delta, out0, out1) -> None:
    """Low bytes of the sender's random-OT pads H(q_j) and H(q_j ^ delta) (csrc/cot_hash.c)."""
    cdef size_t n = _kn_blocks(q, "q")
    cdef size_t width = _cot_low_rows(out0, n, "out0")
    if _cot_low_rows(out1, n, "out1") != width:
        raise ValueError("out0 and out1 must have the same width")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef const uint8_t* qp = _kn_in(q, "q", 16 * n)
    cdef const uint8_t* dp = _kn_in(delta, "delta", 16)
    cdef uint8_t* o0 = _kn_out(out0, "out0", width * n)
    cdef uint8_t* o1 = _kn_out(out1, "out1", width * n)
    with nogil:
        _c_cot_low_send(k, tweak, qp, dp, n, width, o0, o1)


def cot_low_recv(rk, uint64_t tweak, t, out) -> None:
    """Low bytes of the receiver's random-OT pads H(t_j) (csrc/cot_hash.c)."""
    cdef size_t n = _kn_blocks(t, "t")
    cdef size_t width = _cot_low_rows(out, n, "out")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef const uint8_t* tp = _kn_in(t, "t", 16 * n)
    cdef uint8_t* o = _kn_out(out, "out", width * n)
    with nogil:
        _c_cot_low_recv(k, tweak, tp, n, width, o)
