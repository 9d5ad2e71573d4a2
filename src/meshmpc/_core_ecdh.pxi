# Bindings for the ECDH PSI X25519 kernels (csrc/ecdh_x25519.c); see _core.pyx.
#
# Thin layer: argument checks only. ``fns`` is a uint64 array of the two
# libsodium addresses in mm_ecdh_fns order (meshmpc.psi.group builds it).
# The batch releases the GIL so that worker threads run chunks in parallel.

from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef extern from "meshmpc/ecdh.h":
    ctypedef struct mm_ecdh_fns:
        pass
    int MM_X25519_SODIUM
    int MM_X25519_MB8
    int mm_x25519_mb_load(const char *const *paths, size_t n, int check_cpu, char *why,
                          size_t whylen)
    int mm_x25519_mb_ready()
    int64_t mm_x25519_batch(const mm_ecdh_fns *f, int path, const uint8_t *key,
                            const uint8_t *inp, size_t n, const uint8_t *personal,
                            uint8_t *out) nogil

X25519_SODIUM = MM_X25519_SODIUM
X25519_MB8 = MM_X25519_MB8
ECDH_X25519_FUNCTIONS = 2


def x25519_mb_load(list paths, bint check_cpu=True) -> str:
    """dlopen libcrypto_mb (after its dependencies); "" when ready, else the reason."""
    cdef list encoded = [str(p).encode() for p in paths]
    cdef size_t n = len(encoded)
    cdef const char *ptrs[16]
    if n > 16:
        raise ValueError("x25519 mb load: at most 16 library paths")
    for i in range(n):
        ptrs[i] = encoded[i]
    cdef char why[512]
    if mm_x25519_mb_load(ptrs, n, check_cpu, why, sizeof(why)):
        return ""
    return why.decode(errors="replace") or "libcrypto_mb refused"


def x25519_mb_ready() -> bool:
    """True once x25519_mb_load has succeeded in this process."""
    return bool(mm_x25519_mb_ready())


def x25519_batch_into(const uint64_t[::1] fns, int path, bytes key, const uint8_t[:, ::1] inp,
                      personal, uint8_t[:, ::1] out) -> int:
    """out[i] = X25519(key, u_i); u_i = inp[i] (32 bytes) or BLAKE2b-256(inp[i], personal)
    (16-byte rows). Returns -1 or the index of the first all-zero (low-order) result."""
    if fns.shape[0] != ECDH_X25519_FUNCTIONS or fns[0] == 0 or fns[1] == 0:
        raise ValueError(f"x25519: need {ECDH_X25519_FUNCTIONS} libsodium function addresses")
    if len(key) != 32:
        raise ValueError("x25519: the scalar is 32 bytes")
    cdef Py_ssize_t n = inp.shape[0]
    cdef bytes pers = b""
    if personal is not None:
        pers = personal
        if len(pers) != 16 or inp.shape[1] != 16:
            raise ValueError("x25519: hashing takes 16-byte rows and a 16-byte personal")
    elif inp.shape[1] != 32:
        raise ValueError("x25519: points are 32 bytes")
    if out.shape[0] != n or out.shape[1] != 32:
        raise ValueError(f"x25519: out must be {n}x32")
    if n == 0:
        return -1
    cdef const mm_ecdh_fns *f = <const mm_ecdh_fns*>&fns[0]
    cdef const uint8_t *k = key
    cdef const uint8_t *pp = NULL
    if personal is not None:
        pp = pers
    cdef int64_t rc
    with nogil:
        rc = mm_x25519_batch(f, path, k, &inp[0, 0], n, pp, &out[0, 0])
    if rc == -2:
        raise ValueError(f"x25519: path {path} is unknown or not loaded")
    return rc
