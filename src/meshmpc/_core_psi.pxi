# Bindings for the psi kernel family (csrc/psi*.c); see _core.pyx.
# Tables over fixed-width pseudo-random values: matching, first occurrences,
# cuckoo hashing. Values are rows of a C-contiguous uint8 array (n, width).

from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as np

cdef extern from "meshmpc/psi.h":
    int64_t c_psi_match "psi_match"(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, size_t width,
                      int64_t *out) nogil
    int64_t c_psi_first_index "psi_first_index"(const uint8_t *v, size_t n, size_t width, int64_t *out) nogil
    uint64_t c_psi_cuckoo_bin "psi_cuckoo_bin"(const uint8_t *x, int j, uint64_t nbins) nogil
    int64_t c_psi_cuckoo_insert "psi_cuckoo_insert"(const uint8_t *items, size_t n, uint64_t nbins, size_t max_kicks,
                              int64_t *table, uint8_t *which, int64_t *stash) nogil
    void c_psi_permutation "psi_permutation"(const uint64_t *rand, int64_t n, int64_t *out) nogil


def _psi_rows(object values, str name, size_t min_width=8):
    arr = np.ascontiguousarray(values, dtype=np.uint8)
    if arr.ndim != 2 or arr.shape[1] < min_width:
        raise ValueError(f"{name} must be a (n, width >= {min_width}) uint8 array")
    return arr


def psi_match(object a, object b):
    """For each row of a, the index of the first equal row of b, or -1 (int64 array)."""
    cdef const uint8_t[:, ::1] av = _psi_rows(a, "a")
    cdef const uint8_t[:, ::1] bv = _psi_rows(b, "b")
    if av.shape[1] != bv.shape[1]:
        raise ValueError("a and b must have the same row width")
    out = np.empty(av.shape[0], dtype=np.int64)
    cdef int64_t[::1] ov = out
    cdef int64_t hits
    cdef const uint8_t *ap = NULL
    cdef const uint8_t *bp = NULL
    cdef int64_t *op = NULL
    if av.shape[0]:
        ap = &av[0, 0]
        op = &ov[0]
    if bv.shape[0]:
        bp = &bv[0, 0]
    with nogil:
        hits = c_psi_match(ap, av.shape[0], bp, bv.shape[0], av.shape[1], op)
    if hits < 0:
        raise MemoryError("psi_match: table allocation failed")
    return out


def psi_first_index(object values):
    """For each row, the index of its first occurrence (equal to itself if first)."""
    cdef const uint8_t[:, ::1] v = _psi_rows(values, "values")
    out = np.empty(v.shape[0], dtype=np.int64)
    cdef int64_t[::1] ov = out
    cdef int64_t rep
    if v.shape[0] == 0:
        return out
    with nogil:
        rep = c_psi_first_index(&v[0, 0], v.shape[0], v.shape[1], &ov[0])
    if rep < 0:
        raise MemoryError("psi_first_index: table allocation failed")
    return out


def psi_cuckoo_bins(object items, uint64_t nbins):
    """The three candidate bins of every 16-byte item, as an (n, 3) int64 array."""
    cdef const uint8_t[:, ::1] v = _psi_rows(items, "items", 16)
    out = np.empty((v.shape[0], 3), dtype=np.int64)
    cdef int64_t[:, ::1] ov = out
    cdef size_t i
    cdef int j
    with nogil:
        for i in range(<size_t>v.shape[0]):
            for j in range(3):
                ov[i, j] = <int64_t>c_psi_cuckoo_bin(&v[i, 0], j, nbins)
    return out


def psi_cuckoo_insert(object items, uint64_t nbins, size_t max_kicks=500):
    """Cuckoo-hash 16-byte items into nbins bins with 3 hash functions.

    Returns (table, which, stash): table[b] is the item index in bin b or -1,
    which[b] the hash function that placed it, stash the items left over.
    """
    cdef const uint8_t[:, ::1] v = _psi_rows(items, "items", 16)
    if nbins == 0:
        raise ValueError("nbins must be positive")
    table = np.empty(nbins, dtype=np.int64)
    which = np.empty(nbins, dtype=np.uint8)
    stash = np.empty(max(1, v.shape[0]), dtype=np.int64)
    cdef int64_t[::1] tv = table
    cdef uint8_t[::1] wv = which
    cdef int64_t[::1] sv = stash
    cdef int64_t ns
    cdef const uint8_t *ip = NULL
    if v.shape[0]:
        ip = &v[0, 0]
    with nogil:
        ns = c_psi_cuckoo_insert(ip, v.shape[0], nbins, max_kicks, &tv[0], &wv[0], &sv[0])
    return table, which, stash[:ns].copy()


def psi_permutation(object rand):
    """A permutation of 0..n-1 (int64) from n 64-bit random words (Fisher-Yates in C)."""
    cdef const uint64_t[::1] r = np.ascontiguousarray(rand, dtype=np.uint64)
    out = np.empty(r.shape[0], dtype=np.int64)
    cdef int64_t[::1] ov = out
    if r.shape[0] == 0:
        return out
    with nogil:
        c_psi_permutation(&r[0], r.shape[0], &ov[0])
    return out
