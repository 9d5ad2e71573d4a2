# Bindings for the Gilboa product kernels (csrc/gilboa.c); see _core.pyx.

from libc.stdint cimport uint64_t

cdef extern from "meshmpc/gilboa.h":
    void _c_gilboa_send "gilboa_send"(const uint64_t *pads, const uint64_t *a, size_t rows,
                                      uint64_t *corr, uint64_t *share) nogil
    void _c_gilboa_recv "gilboa_recv"(const uint64_t *pads, const uint64_t *b, size_t rows,
                                      const uint64_t *corr, uint64_t *share) nogil


def gilboa_send(const uint64_t[:, ::1] pads, const uint64_t[::1] a, uint64_t[::1] corr,
                uint64_t[::1] share):
    """Sender's corrections and share of a * b (64 random-OT pad pairs per element)."""
    cdef size_t rows = a.shape[0]
    if <size_t>pads.shape[0] != 128 * rows or pads.shape[1] != 2:
        raise ValueError(f"pads must be {128 * rows} x 2 words (m0 rows, then m1 rows)")
    if <size_t>corr.shape[0] != 64 * rows or <size_t>share.shape[0] != rows:
        raise ValueError(f"corr must hold {64 * rows} words and share {rows}")
    if rows == 0:
        return
    with nogil:
        _c_gilboa_send(&pads[0, 0], &a[0], rows, &corr[0], &share[0])


def gilboa_recv(const uint64_t[:, ::1] pads, const uint64_t[::1] b, const uint64_t[::1] corr,
                uint64_t[::1] share):
    """Receiver's share of a * b from the pads its bits of b chose and the corrections."""
    cdef size_t rows = b.shape[0]
    if <size_t>pads.shape[0] != 64 * rows or pads.shape[1] != 2:
        raise ValueError(f"pads must be {64 * rows} x 2 words")
    if <size_t>corr.shape[0] != 64 * rows or <size_t>share.shape[0] != rows:
        raise ValueError(f"corr must hold {64 * rows} words and share {rows}")
    if rows == 0:
        return
    with nogil:
        _c_gilboa_recv(&pads[0, 0], &b[0], rows, &corr[0], &share[0])
