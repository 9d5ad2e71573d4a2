# Bindings for the wire kernel family (csrc/wire.c); see _core.pyx.
# Checks on bytes received from the network before a decoder sees them.

from libc.stdint cimport int64_t, uint8_t

cdef extern from "meshmpc/wire.h":
    int64_t c_wire_msgpack_check "wire_msgpack_check"(const uint8_t *p, size_t n, int batch,
                                                      int max_kind) nogil


def wire_msgpack_check(const uint8_t[::1] data, int batch=0, int max_kind=0):
    """Top-level object count of concatenated msgpack ``data``, or -(1 + offset) of
    the first byte that is malformed, truncated or announces more elements than
    the remaining bytes could hold; with ``batch``, every object must also be a
    ``[str, kind <= max_kind, payload]`` item (see csrc/include/meshmpc/wire.h)."""
    cdef size_t n = data.shape[0]
    cdef int64_t result
    cdef const uint8_t *p = NULL
    if n == 0:
        return 0
    p = &data[0]
    with nogil:
        result = c_wire_msgpack_check(p, n, batch, max_kind)
    return result
