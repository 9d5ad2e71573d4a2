# Bindings for the pir kernel family (csrc/pir*.c); see _core.pyx.
#
# Thin layer: argument checks only. Inputs are C-contiguous 2-D numpy arrays
# (row slices of a bigger array are fine); the output may be any 2-D uint32
# view (e.g. a transposed one). The C calls release the GIL.

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t

import numpy as _pir_np

cdef extern from "meshmpc/pir.h":
    int mm_pir_best_path()
    int mm_pir_dot_u8(const uint8_t *L, size_t rows, size_t ldl, const uint32_t *R, size_t cols,
                      size_t ldr, size_t k, uint32_t *out, size_t ldo_r, size_t ldo_c,
                      int nthreads, int path) nogil
    int mm_pir_dot_u32(const uint32_t *L, size_t rows, size_t ldl, const uint32_t *R,
                       size_t cols, size_t ldr, size_t k, uint32_t *out, size_t ldo_r,
                       size_t ldo_c, int nthreads, int path) nogil
    int64_t mm_pir_cuckoo_place(const uint32_t *c1, const uint32_t *c2, size_t n, size_t nbins,
                                uint32_t cap, size_t max_kicks, int64_t *table) nogil
    void mm_pir_gauss_add(const uint64_t *u, size_t n, const uint64_t *cdf256,
                          const int8_t *lut, int32_t center, uint32_t *out) nogil
    void mm_pir_hint_update(uint32_t *H, size_t ldh, const uint32_t *A, size_t lda, size_t n,
                            const int64_t *rows, const int64_t *cols, const int32_t *delta,
                            size_t count, int nthreads) nogil

PIR_PATH_AUTO = -1
PIR_PATH_PORTABLE = 0
PIR_PATH_AVX2 = 1
PIR_PATH_AVX512 = 2
PIR_GAUSS_AMBIGUOUS = 127


def pir_best_path() -> int:
    """Fastest PIR kernel path this CPU supports (0 portable, 1 AVX2, 2 AVX-512)."""
    return mm_pir_best_path()


cdef _pir_check_shapes(size_t lk, size_t rk, size_t lrows, size_t rrows, out):
    if lk != rk:
        raise ValueError(f"pir dot: L has {lk} columns but R has {rk}")
    if out.shape[0] != lrows or out.shape[1] != rrows:
        raise ValueError(f"pir dot: out must be {lrows}x{rrows}, got {out.shape}")
    if out.dtype != _pir_np.uint32:
        raise ValueError("pir dot: out must be uint32")


def pir_dot_u8_into(const uint8_t[:, ::1] L, const uint32_t[:, ::1] R, out,
                    int nthreads=1, int path=-1) -> int:
    """out[i, j] = <L[i], R[j]> mod 2^32 for uint8 L; returns the path used."""
    _pir_check_shapes(L.shape[1], R.shape[1], L.shape[0], R.shape[0], out)
    cdef uint32_t[:, :] o = out
    cdef int used
    cdef size_t ldo_r = o.strides[0] // 4, ldo_c = o.strides[1] // 4
    if L.shape[0] == 0 or R.shape[0] == 0:
        return path
    with nogil:
        used = mm_pir_dot_u8(&L[0, 0] if L.shape[1] else NULL, L.shape[0], L.shape[1], &R[0, 0] if R.shape[1] else NULL, R.shape[0], R.shape[1], L.shape[1], &o[0, 0], ldo_r, ldo_c, nthreads, path)
    if used < 0:
        raise ValueError(f"pir dot: path {path} unavailable on this CPU")
    return used


def pir_dot_u32_into(const uint32_t[:, ::1] L, const uint32_t[:, ::1] R, out,
                     int nthreads=1, int path=-1) -> int:
    """out[i, j] = <L[i], R[j]> mod 2^32 for uint32 L; returns the path used."""
    _pir_check_shapes(L.shape[1], R.shape[1], L.shape[0], R.shape[0], out)
    cdef uint32_t[:, :] o = out
    cdef int used
    cdef size_t ldo_r = o.strides[0] // 4, ldo_c = o.strides[1] // 4
    if L.shape[0] == 0 or R.shape[0] == 0:
        return path
    with nogil:
        used = mm_pir_dot_u32(&L[0, 0] if L.shape[1] else NULL, L.shape[0], L.shape[1], &R[0, 0] if R.shape[1] else NULL, R.shape[0], R.shape[1], L.shape[1], &o[0, 0], ldo_r, ldo_c, nthreads, path)
    if used < 0:
        raise ValueError(f"pir dot: path {path} unavailable on this CPU")
    return used


def pir_cuckoo_place(const uint32_t[::1] c1, const uint32_t[::1] c2, size_t nbins,
                     uint32_t cap, size_t max_kicks=2000):
    """Place items in one of their two bins; returns (table, failed item or -1).

    table has nbins*cap entries: the item index in each slot, -1 where free.
    """
    if c1.shape[0] != c2.shape[0]:
        raise ValueError("pir cuckoo: c1 and c2 differ in length")
    if nbins == 0 or cap == 0:
        raise ValueError("pir cuckoo: need at least one bin and one slot")
    cdef size_t n = c1.shape[0], i
    for i in range(n):
        if c1[i] >= nbins or c2[i] >= nbins:
            raise ValueError(f"pir cuckoo: item {i} names a bin beyond {nbins}")
    table = _pir_np.empty(nbins * cap, dtype=_pir_np.int64)
    cdef int64_t[::1] t = table
    cdef int64_t failed
    with nogil:
        failed = mm_pir_cuckoo_place(&c1[0] if n else NULL, &c2[0] if n else NULL, n, nbins, cap, max_kicks, &t[0])
    return table, int(failed)


def pir_gauss_add_into(const uint64_t[::1] u, const uint64_t[::1] cdf256, const int8_t[::1] lut,
                       int32_t center, uint32_t[::1] out) -> None:
    """out[i] += (number of cdf256 entries <= u[i]) - center, mod 2^32.

    lut[u >> 48] must hold that value wherever it is the same for the whole
    interval, else PIR_GAUSS_AMBIGUOUS (127).
    """
    if cdf256.shape[0] != 256 or lut.shape[0] != 65536:
        raise ValueError("pir gauss: need a 256-entry cdf and a 65536-entry lut")
    if u.shape[0] != out.shape[0]:
        raise ValueError(f"pir gauss: {u.shape[0]} uniforms for {out.shape[0]} outputs")
    if u.shape[0] == 0:
        return
    with nogil:
        mm_pir_gauss_add(&u[0], u.shape[0], &cdf256[0], &lut[0], center, &out[0])


def pir_hint_update(uint32_t[:, ::1] H, const uint32_t[:, ::1] A, const int64_t[::1] rows,
                    const int64_t[::1] cols, const int32_t[::1] delta,
                    int nthreads=1) -> None:
    """H[rows[e]] += delta[e] * A[cols[e]] mod 2^32 for every entry e (H = D A)."""
    cdef size_t count = rows.shape[0], e
    if cols.shape[0] != count or delta.shape[0] != count:
        raise ValueError("pir hint update: rows, cols and delta differ in length")
    if H.shape[1] != A.shape[1]:
        raise ValueError("pir hint update: H and A have different widths")
    for e in range(count):
        if rows[e] < 0 or rows[e] >= H.shape[0] or cols[e] < 0 or cols[e] >= A.shape[0]:
            raise ValueError(f"pir hint update: entry {e} is outside H or A")
    if count == 0:
        return
    with nogil:
        mm_pir_hint_update(&H[0, 0], H.shape[1], &A[0, 0], A.shape[1], H.shape[1], &rows[0],
                           &cols[0], &delta[0], count, nthreads)


cdef extern from "meshmpc/pir.h":
    void mm_pir_write_slots(uint8_t *db, size_t buckets, size_t cols, size_t slots, size_t size,
                            const int64_t *table, const uint8_t *content, int nthreads) nogil
    int64_t mm_pir_pack_bodies(const uint8_t *data, const int64_t *offsets, size_t n,
                               size_t record_bytes, uint8_t *out) nogil


def pir_write_slots(uint8_t[:, ::1] db, size_t buckets, size_t slots,
                    const int64_t[::1] table, const uint8_t[:, ::1] content,
                    int nthreads=1) -> None:
    """Write content[item] down its column for every placed slot of ``table``
    (buckets x columns bins of ``slots``; -1 free) into db (rows x columns, uint8)."""
    cdef size_t cols = db.shape[1], size = content.shape[1]
    if db.shape[0] != buckets * slots * size:
        raise ValueError(f"pir write slots: db needs {buckets * slots * size} rows")
    if table.shape[0] != buckets * cols * slots:
        raise ValueError(f"pir write slots: table needs {buckets * cols * slots} entries")
    placed = _pir_np.asarray(table)
    if placed.size and (placed.max() >= content.shape[0] or placed.min() < -1):
        raise ValueError("pir write slots: table names an item outside content")
    if db.shape[0] == 0 or cols == 0 or size == 0 or content.shape[0] == 0:
        return
    with nogil:
        mm_pir_write_slots(&db[0, 0], buckets, cols, slots, size, &table[0], &content[0, 0],
                           nthreads)


def pir_pack_bodies_into(const uint8_t[::1] data, const int64_t[::1] offsets,
                         uint8_t[:, ::1] out) -> int:
    """out[i] = le16(len) || item i || zeros (width 2 + record_bytes); -1 or the first
    item longer than record_bytes."""
    cdef size_t n = out.shape[0]
    if out.shape[1] < 2 or offsets.shape[0] != n + 1:
        raise ValueError("pir pack bodies: need n + 1 offsets and rows of 2 + record_bytes")
    if n and (offsets[0] < 0 or offsets[n] > data.shape[0]):
        raise ValueError("pir pack bodies: offsets beyond the data")
    if n and _pir_np.any(_pir_np.diff(_pir_np.asarray(offsets)) < 0):
        raise ValueError("pir pack bodies: offsets must rise")
    cdef int64_t bad = -1
    cdef const uint8_t* src = &data[0] if data.shape[0] else NULL
    if n == 0:
        return -1
    with nogil:
        bad = mm_pir_pack_bodies(src, &offsets[0], n, out.shape[1] - 2, &out[0, 0])
    return bad
