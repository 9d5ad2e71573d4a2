# Bindings for the millionaires' comparison kernels (csrc/mill.c); see _core.pyx.

from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef extern from "meshmpc/mill.h":
    void _c_mill_send "mill_send"(const uint8_t *m0, const uint8_t *m1, const uint64_t *u,
                                  size_t n, const uint64_t *lt_s, const uint64_t *eq_s,
                                  uint32_t *w_out) nogil
    void _c_mill_recv "mill_recv"(const uint8_t *m, const uint64_t *v, size_t n,
                                  const uint32_t *w_in, uint64_t *lt, uint64_t *eq) nogil

MILL_DIGITS = 16


def _mill_check_pads(const uint8_t[:, ::1] pads, size_t n, str name):
    if <size_t>pads.shape[0] != 4 * MILL_DIGITS * n or pads.shape[1] != 16:
        raise ValueError(f"{name} must be {4 * MILL_DIGITS * n} x 16 pads, "
                         f"got {pads.shape[0]} x {pads.shape[1]}")


def _mill_check_planes(const uint64_t[:, ::1] planes, size_t n, str name):
    if planes.shape[0] != MILL_DIGITS or <size_t>planes.shape[1] != (n + 63) // 64:
        raise ValueError(f"{name} must be {MILL_DIGITS} x {(n + 63) // 64} plane words")


def mill_send(const uint8_t[:, ::1] m0, const uint8_t[:, ::1] m1, const uint64_t[::1] u,
              const uint64_t[:, ::1] lt_s, const uint64_t[:, ::1] eq_s, uint32_t[::1] w_out):
    """Sender's 16 masked two-bit messages per digit of u (see csrc/mill.c)."""
    cdef size_t n = u.shape[0]
    _mill_check_pads(m0, n, "m0")
    _mill_check_pads(m1, n, "m1")
    _mill_check_planes(lt_s, n, "lt_s")
    _mill_check_planes(eq_s, n, "eq_s")
    if <size_t>w_out.shape[0] != MILL_DIGITS * n:
        raise ValueError(f"w_out must hold {MILL_DIGITS * n} words")
    if n == 0:
        return
    with nogil:
        _c_mill_send(&m0[0, 0], &m1[0, 0], &u[0], n, &lt_s[0, 0], &eq_s[0, 0], &w_out[0])


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
        _c_mill_recv(&m[0, 0], &v[0], n, &w_in[0], &lt[0, 0], &eq[0, 0])
