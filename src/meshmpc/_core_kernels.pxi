# Bindings for the kernels kernel family (csrc/kernels*.c); see _core.pyx.
#
# Thin layer: one function per C entry point, argument checks only. Buffers are
# C-contiguous numpy arrays of any dtype, checked by byte size; outputs are
# written in place (the *_into convention). The C calls release the GIL.

from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as _kn_np

cdef extern from "meshmpc/kernels.h":
    ctypedef struct mm_aes_key:
        uint8_t rk[176]
    ctypedef int (*mm_blake2b_fn)(unsigned char *out, size_t outlen, const unsigned char *inp,
                                  unsigned long long inlen, const unsigned char *key,
                                  size_t keylen, const unsigned char *salt,
                                  const unsigned char *personal) noexcept nogil
    int mm_cpu_features()
    int mm_best_path()
    int mm_resolve_path(int path)
    void mm_aes128_expand(const uint8_t *key, mm_aes_key *out) nogil
    void mm_aes128_ecb(const mm_aes_key *k, const uint8_t *inp, uint8_t *out, size_t n,
                       int path) nogil
    void mm_aes128_ctr(const mm_aes_key *k, uint64_t ctr, uint8_t *out, size_t n, int path) nogil
    uint64_t mm_prg_fill(const mm_aes_key *k, uint64_t ctr, uint8_t *out, size_t nbytes,
                         int path) nogil
    void mm_ccr_hash(const mm_aes_key *k, const uint8_t *inp, uint8_t *out, size_t n,
                     int path) nogil
    void mm_tccr_hash(const mm_aes_key *k, uint64_t tweak0, const uint8_t *inp, uint8_t *out,
                      size_t n, int path) nogil
    int mm_item_hash(mm_blake2b_fn fn, const uint8_t *data, const int64_t *offsets, size_t n,
                     const uint8_t *key, size_t keylen, const uint8_t *personal,
                     uint8_t *out) nogil
    void mm_transpose(const uint8_t *inp, uint8_t *out, size_t rows, size_t cols, int path) nogil
    void mm_gf128_mul(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t n, int path) nogil
    void mm_gf128_inner(const uint8_t *a, const uint8_t *b, size_t n, uint8_t *out,
                        int path) nogil
    void mm_xor(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t nbytes) nogil
    void mm_and(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t nbytes) nogil
    void mm_select(const uint8_t *bits, const uint8_t *a, const uint8_t *b, uint8_t *out,
                   size_t n, size_t width) nogil
    void mm_xor_where(const uint8_t *bits, const uint8_t *delta, uint8_t *inout, size_t n,
                      size_t width) nogil
    int mm_ext_receiver(const mm_aes_key *k0, const mm_aes_key *k1, size_t k, uint64_t ctr,
                        const uint8_t *c, int c_is_row, size_t m, uint8_t *u, uint8_t *t_rows,
                        int path) nogil
    int mm_ext_sender(const mm_aes_key *ks, const uint8_t *s, size_t k, uint64_t ctr,
                      const uint8_t *u, size_t m, uint8_t *q_rows, int path) nogil
    int mm_kkrt_oprf(mm_blake2b_fn fn, const uint8_t *personal, const mm_aes_key *code_keys,
                     const uint8_t *s, const uint8_t *rows, const int64_t *idx, uint64_t index0,
                     const uint8_t *x, size_t n, uint8_t *out, int path) nogil
    int mm_softspoken_receiver(const mm_aes_key *leaf_keys, int k, uint64_t ctr,
                               const uint8_t *r, size_t m, uint8_t *corrections,
                               uint8_t *t_rows, int path) nogil
    int mm_softspoken_sender(const mm_aes_key *leaf_keys, int k, const uint8_t *delta,
                             uint64_t ctr, const uint8_t *corrections, size_t m,
                             uint8_t *q_rows, int path) nogil

PATH_AUTO = -1
PATH_PORTABLE = 0
PATH_AESNI = 1
PATH_VAES = 2

cdef uint8_t _kn_empty[16]


cdef const uint8_t* _kn_in(object a, str name, Py_ssize_t nbytes) except NULL:
    """Read pointer of a C-contiguous array holding at least nbytes bytes."""
    if not isinstance(a, _kn_np.ndarray) or not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous numpy array")
    if a.nbytes < nbytes:
        raise ValueError(f"{name}: needs {nbytes} bytes, array has {a.nbytes}")
    if a.nbytes == 0:
        return _kn_empty
    cdef const uint8_t[::1] mv = a.reshape(-1).view(_kn_np.uint8)
    return &mv[0]


cdef uint8_t* _kn_out(object a, str name, Py_ssize_t nbytes) except NULL:
    """Write pointer of a writable C-contiguous array holding at least nbytes bytes."""
    if not isinstance(a, _kn_np.ndarray) or not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous numpy array")
    if not a.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    if a.nbytes < nbytes:
        raise ValueError(f"{name}: needs {nbytes} bytes, array has {a.nbytes}")
    if a.nbytes == 0:
        return _kn_empty
    cdef uint8_t[::1] mv = a.reshape(-1).view(_kn_np.uint8)
    return &mv[0]


cdef Py_ssize_t _kn_blocks(object a, str name) except -1:
    if a.nbytes % 16:
        raise ValueError(f"{name}: byte size {a.nbytes} is not a multiple of 16")
    return a.nbytes // 16


def cpu_features() -> int:
    return mm_cpu_features()


def best_path() -> int:
    return mm_best_path()


def resolve_path(int path) -> int:
    return mm_resolve_path(path)


def aes128_expand(key) -> object:
    """Round keys (176 uint8) of a 16-byte AES key (bytes or uint8 array)."""
    cdef const uint8_t[::1] kv = _kn_np.frombuffer(bytes(key), dtype=_kn_np.uint8)
    if kv.shape[0] != 16:
        raise ValueError(f"AES-128 key must be 16 bytes, got {kv.shape[0]}")
    out = _kn_np.empty(176, dtype=_kn_np.uint8)
    mm_aes128_expand(&kv[0], <mm_aes_key*>_kn_out(out, "out", 176))
    return out


def aes128_expand_many(keys) -> object:
    """Round keys (n, 176) of n AES keys given as an (n, 16) uint8 array."""
    cdef Py_ssize_t n = _kn_blocks(keys, "keys"), i
    cdef const uint8_t* src = _kn_in(keys, "keys", 16 * n)
    out = _kn_np.empty((n, 176), dtype=_kn_np.uint8)
    cdef mm_aes_key* dst = <mm_aes_key*>_kn_out(out, "out", 176 * n)
    with nogil:
        for i in range(n):
            mm_aes128_expand(src + 16 * i, dst + i)
    return out


def aes128_ecb_into(rk, inp, out, int path=-1) -> None:
    cdef Py_ssize_t n = _kn_blocks(inp, "inp")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef const uint8_t* src = _kn_in(inp, "inp", 16 * n)
    cdef uint8_t* dst = _kn_out(out, "out", 16 * n)
    with nogil:
        mm_aes128_ecb(k, src, dst, n, path)


def aes128_ctr_into(rk, uint64_t ctr, out, int path=-1) -> None:
    cdef Py_ssize_t n = _kn_blocks(out, "out")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef uint8_t* dst = _kn_out(out, "out", 16 * n)
    with nogil:
        mm_aes128_ctr(k, ctr, dst, n, path)


def prg_fill(rk, uint64_t ctr, out, int path=-1) -> int:
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef Py_ssize_t nbytes = out.nbytes
    cdef uint8_t* dst = _kn_out(out, "out", nbytes)
    cdef uint64_t used
    with nogil:
        used = mm_prg_fill(k, ctr, dst, nbytes, path)
    return used


def ccr_hash_into(rk, inp, out, int path=-1) -> None:
    cdef Py_ssize_t n = _kn_blocks(inp, "inp")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef const uint8_t* src = _kn_in(inp, "inp", 16 * n)
    cdef uint8_t* dst = _kn_out(out, "out", 16 * n)
    with nogil:
        mm_ccr_hash(k, src, dst, n, path)


def tccr_hash_into(rk, uint64_t tweak0, inp, out, int path=-1) -> None:
    cdef Py_ssize_t n = _kn_blocks(inp, "inp")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(rk, "rk", 176)
    cdef const uint8_t* src = _kn_in(inp, "inp", 16 * n)
    cdef uint8_t* dst = _kn_out(out, "out", 16 * n)
    with nogil:
        mm_tccr_hash(k, tweak0, src, dst, n, path)


def item_hash_into(size_t fn_address, data, offsets, bytes key, bytes personal, out) -> None:
    """BLAKE2b-128 of data[offsets[i]:offsets[i+1]] for each i (libsodium's function)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    if offsets.dtype != _kn_np.int64 or n < 0:
        raise ValueError("offsets: expected an int64 array of n + 1 positions")
    if n > 0 and (offsets[0] < 0 or offsets[n] > data.nbytes or _kn_np.any(_kn_np.diff(offsets) < 0)):
        raise ValueError("offsets: positions must rise within the data buffer")
    if len(personal) != 16 or len(key) > 64:
        raise ValueError("personal must be 16 bytes and key at most 64 bytes")
    cdef const uint8_t* src = _kn_in(data, "data", 0)
    cdef const int64_t* offs = <const int64_t*>_kn_in(offsets, "offsets", 8 * (n + 1))
    cdef uint8_t* dst = _kn_out(out, "out", 16 * n)
    cdef const uint8_t* kp = key
    cdef const uint8_t* pp = personal
    cdef size_t keylen = len(key)
    cdef int rc
    with nogil:
        rc = mm_item_hash(<mm_blake2b_fn>fn_address, src, offs, n, kp if keylen else NULL,
                          keylen, pp, dst)
    if rc != 0:
        raise RuntimeError("BLAKE2b failed inside libsodium")


def transpose_into(inp, out, size_t rows, size_t cols, int path=-1) -> None:
    """Transpose a rows x cols bit matrix (rows, cols multiples of 8)."""
    if rows % 8 or cols % 8:
        raise ValueError(f"transpose: rows {rows} and cols {cols} must be multiples of 8")
    cdef const uint8_t* src = _kn_in(inp, "inp", rows * cols // 8)
    cdef uint8_t* dst = _kn_out(out, "out", rows * cols // 8)
    with nogil:
        mm_transpose(src, dst, rows, cols, path)


def gf128_mul_into(a, b, out, int path=-1) -> None:
    cdef Py_ssize_t n = _kn_blocks(a, "a")
    cdef const uint8_t* pa = _kn_in(a, "a", 16 * n)
    cdef const uint8_t* pb = _kn_in(b, "b", 16 * n)
    cdef uint8_t* po = _kn_out(out, "out", 16 * n)
    with nogil:
        mm_gf128_mul(pa, pb, po, n, path)


def gf128_inner(a, b, int path=-1) -> bytes:
    cdef Py_ssize_t n = _kn_blocks(a, "a")
    cdef const uint8_t* pa = _kn_in(a, "a", 16 * n)
    cdef const uint8_t* pb = _kn_in(b, "b", 16 * n)
    cdef uint8_t res[16]
    with nogil:
        mm_gf128_inner(pa, pb, n, res, path)
    return bytes(res[:16])


def xor_into(a, b, out) -> None:
    cdef Py_ssize_t nb = a.nbytes
    cdef const uint8_t* pa = _kn_in(a, "a", nb)
    cdef const uint8_t* pb = _kn_in(b, "b", nb)
    cdef uint8_t* po = _kn_out(out, "out", nb)
    with nogil:
        mm_xor(pa, pb, po, nb)


def and_into(a, b, out) -> None:
    cdef Py_ssize_t nb = a.nbytes
    cdef const uint8_t* pa = _kn_in(a, "a", nb)
    cdef const uint8_t* pb = _kn_in(b, "b", nb)
    cdef uint8_t* po = _kn_out(out, "out", nb)
    with nogil:
        mm_and(pa, pb, po, nb)


def select_into(bits, a, b, out, size_t n, size_t width) -> None:
    """out[j] = b[j] if bit j else a[j], rows of width bytes, bits packed little-endian."""
    cdef const uint8_t* pbits = _kn_in(bits, "bits", (n + 7) // 8)
    cdef const uint8_t* pa = _kn_in(a, "a", n * width)
    cdef const uint8_t* pb = _kn_in(b, "b", n * width)
    cdef uint8_t* po = _kn_out(out, "out", n * width)
    with nogil:
        mm_select(pbits, pa, pb, po, n, width)


def xor_where_into(bits, delta, inout, size_t n, size_t width) -> None:
    """inout[j] ^= delta where bit j is set (rows of width bytes)."""
    cdef const uint8_t* pbits = _kn_in(bits, "bits", (n + 7) // 8)
    cdef const uint8_t* pd = _kn_in(delta, "delta", width)
    cdef uint8_t* po = _kn_out(inout, "inout", n * width)
    with nogil:
        mm_xor_where(pbits, pd, po, n, width)


def ext_receiver_into(k0, k1, uint64_t ctr, c, bint c_is_row, u, t_rows, int path=-1) -> None:
    """IKNP/KKRT receiver batch: k = len(k0) seeds, m = t_rows.shape[0] OTs."""
    cdef size_t k = k0.shape[0], m = t_rows.shape[0]
    if k % 32 or m % 128 or k1.shape[0] != k:
        raise ValueError(f"extension: k={k} must be a multiple of 32 and m={m} of 128")
    cdef const mm_aes_key* p0 = <const mm_aes_key*>_kn_in(k0, "k0", 176 * k)
    cdef const mm_aes_key* p1 = <const mm_aes_key*>_kn_in(k1, "k1", 176 * k)
    cdef const uint8_t* pc = _kn_in(c, "c", (m // 8) * (1 if c_is_row else k))
    cdef uint8_t* pu = _kn_out(u, "u", k * m // 8)
    cdef uint8_t* pt = _kn_out(t_rows, "t_rows", k * m // 8)
    cdef int rc
    with nogil:
        rc = mm_ext_receiver(p0, p1, k, ctr, pc, c_is_row, m, pu, pt, path)
    if rc:
        raise MemoryError("OT extension receiver: out of memory")


def ext_sender_into(ks, s, uint64_t ctr, u, q_rows, int path=-1) -> None:
    """IKNP/KKRT sender batch: k = len(ks) seeds, m = q_rows.shape[0] OTs."""
    cdef size_t k = ks.shape[0], m = q_rows.shape[0]
    if k % 32 or m % 128:
        raise ValueError(f"extension: k={k} must be a multiple of 32 and m={m} of 128")
    cdef const mm_aes_key* pk = <const mm_aes_key*>_kn_in(ks, "ks", 176 * k)
    cdef const uint8_t* ps = _kn_in(s, "s", k // 8)
    cdef const uint8_t* pu = _kn_in(u, "u", k * m // 8)
    cdef uint8_t* pq = _kn_out(q_rows, "q_rows", k * m // 8)
    cdef int rc
    with nogil:
        rc = mm_ext_sender(pk, ps, k, ctr, pu, m, pq, path)
    if rc:
        raise MemoryError("OT extension sender: out of memory")


def kkrt_oprf_into(size_t fn_address, bytes personal, code_keys, s, rows, idx, uint64_t index0,
                   x, out, int path=-1) -> None:
    """KKRT OPRF values (see mm_kkrt_oprf); idx and x may be None."""
    cdef Py_ssize_t n = out.shape[0], nrows = rows.shape[0]
    if len(personal) != 16:
        raise ValueError("personal must be 16 bytes")
    if idx is not None:
        if idx.dtype != _kn_np.int64 or idx.shape[0] != n:
            raise ValueError(f"idx: expected {n} int64 indices")
        if n and (idx.min() < 0 or idx.max() >= nrows):
            raise ValueError(f"idx: indices must lie in 0..{nrows - 1}")
    elif n > nrows:
        raise ValueError(f"{n} outputs but only {nrows} rows")
    cdef const uint8_t* pp = personal
    cdef const mm_aes_key* pk = <const mm_aes_key*>_kn_in(code_keys, "code_keys", 4 * 176)
    cdef const uint8_t* ps = _kn_in(s, "s", 64)
    cdef const uint8_t* pr = _kn_in(rows, "rows", 64 * nrows)
    cdef const int64_t* pi = NULL
    cdef const uint8_t* px = NULL
    if idx is not None:
        pi = <const int64_t*>_kn_in(idx, "idx", 8 * n)
    if x is not None:
        px = _kn_in(x, "x", 16 * n)
    cdef uint8_t* po = _kn_out(out, "out", 16 * n)
    cdef int rc
    with nogil:
        rc = mm_kkrt_oprf(<mm_blake2b_fn>fn_address, pp, pk, ps, pr, pi, index0, px, n, po, path)
    if rc:
        raise RuntimeError("BLAKE2b failed inside libsodium")


cdef size_t _kn_softspoken_m(object leaf_keys, int k, object rows) except 0:
    if k not in (1, 2, 4, 8):
        raise ValueError(f"SoftSpoken: k={k} must be 1, 2, 4 or 8")
    if leaf_keys.shape[0] != (128 // k) << k:
        raise ValueError(f"SoftSpoken: expected {(128 // k) << k} leaf keys")
    cdef size_t m = rows.shape[0]
    if m == 0 or m % 128:
        raise ValueError(f"SoftSpoken: m={m} must be a positive multiple of 128")
    return m


def softspoken_receiver_into(leaf_keys, int k, uint64_t ctr, r, corrections, t_rows,
                             int path=-1) -> None:
    """SoftSpoken receiver batch: m = t_rows.shape[0] OTs (see mm_softspoken_receiver)."""
    cdef size_t m = _kn_softspoken_m(leaf_keys, k, t_rows)
    cdef const mm_aes_key* pk = <const mm_aes_key*>_kn_in(leaf_keys, "leaf_keys", 176 * leaf_keys.shape[0])
    cdef const uint8_t* pr = _kn_in(r, "r", m // 8)
    cdef uint8_t* pc = _kn_out(corrections, "corrections", (128 // k) * m // 8)
    cdef uint8_t* pt = _kn_out(t_rows, "t_rows", 16 * m)
    cdef int rc
    with nogil:
        rc = mm_softspoken_receiver(pk, k, ctr, pr, m, pc, pt, path)
    if rc:
        raise MemoryError("SoftSpoken receiver: out of memory")


def softspoken_sender_into(leaf_keys, int k, delta, uint64_t ctr, corrections, q_rows,
                           int path=-1) -> None:
    """SoftSpoken sender batch: m = q_rows.shape[0] OTs (see mm_softspoken_sender)."""
    cdef size_t m = _kn_softspoken_m(leaf_keys, k, q_rows)
    cdef const mm_aes_key* pk = <const mm_aes_key*>_kn_in(leaf_keys, "leaf_keys", 176 * leaf_keys.shape[0])
    cdef const uint8_t* pd = _kn_in(delta, "delta", 16)
    cdef const uint8_t* pc = _kn_in(corrections, "corrections", (128 // k) * m // 8)
    cdef uint8_t* pq = _kn_out(q_rows, "q_rows", 16 * m)
    cdef int rc
    with nogil:
        rc = mm_softspoken_sender(pk, k, pd, ctr, pc, m, pq, path)
    if rc:
        raise MemoryError("SoftSpoken sender: out of memory")
