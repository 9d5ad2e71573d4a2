# Bindings for the Gilboa product kernels (csrc/gilboa.c); see _core.pyx.

from libc.stdint cimport uint8_t, uint64_t

cdef extern from "meshmpc/gilboa.h":
    size_t _c_gilboa_packed_bytes "gilboa_packed_bytes"(size_t rows) nogil
    void _c_gilboa_cot_send "gilboa_cot_send"(const mm_aes_key *fixed, const uint8_t *q,
                                              const uint8_t *delta, const uint64_t *a,
                                              size_t rows, uint8_t *corr, uint64_t *share,
                                              int path) nogil
    void _c_gilboa_cot_recv "gilboa_cot_recv"(const mm_aes_key *fixed, const uint8_t *t_rows,
                                              const uint64_t *b, size_t rows,
                                              const uint8_t *corr, uint64_t *share,
                                              int path) nogil


def gilboa_packed_bytes(size_t rows) -> int:
    """Bytes of the shortened Gilboa corrections for ``rows`` elements."""
    return _c_gilboa_packed_bytes(rows)


def gilboa_cot_send(rk, q, delta, const uint64_t[::1] a, corr, uint64_t[::1] share,
                    int path=-1):
    """Sender's packed corrections and share of a * b, hashing its COTs q (64 per element)."""
    cdef size_t rows = a.shape[0]
    if <size_t>share.shape[0] != rows:
        raise ValueError(f"share must hold {rows} words")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef const uint8_t* qp = _kn_in(q, "q", 16 * 64 * rows)
    cdef const uint8_t* dp = _kn_in(delta, "delta", 16)
    cdef uint8_t* cp = _kn_out(corr, "corr", _c_gilboa_packed_bytes(rows))
    if rows == 0:
        return
    with nogil:
        _c_gilboa_cot_send(k, qp, dp, &a[0], rows, cp, &share[0], path)


def gilboa_cot_recv(rk, t_rows, const uint64_t[::1] b, corr, uint64_t[::1] share,
                    int path=-1):
    """Receiver's share of a * b from its COTs t (chosen with the bits of b) and corr."""
    cdef size_t rows = b.shape[0]
    if <size_t>share.shape[0] != rows:
        raise ValueError(f"share must hold {rows} words")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef const uint8_t* tp = _kn_in(t_rows, "t_rows", 16 * 64 * rows)
    cdef const uint8_t* cp = _kn_in(corr, "corr", _c_gilboa_packed_bytes(rows))
    if rows == 0:
        return
    with nogil:
        _c_gilboa_cot_recv(k, tp, &b[0], rows, cp, &share[0], path)
