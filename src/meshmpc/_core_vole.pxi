# Bindings for the VOLE / OKVS kernel family (csrc/vole.c); see _core.pyx.
# Random band OKVS (encode, decode, hashing) and the expand-accumulate
# compression of silent VOLE. Blocks are rows of 16 bytes.

cdef extern from "meshmpc/vole.h":
    void mm_okvs_hash(const mm_aes_key *k_start, const mm_aes_key *k_band, const uint8_t *keys,
                      size_t n, uint64_t m, uint64_t *start, uint8_t *band, int path) nogil
    int mm_okvs_encode(const uint64_t *start, const uint8_t *band, const uint8_t *values,
                       size_t n, uint64_t m, uint8_t *p) nogil
    void mm_okvs_decode(const uint64_t *start, const uint8_t *band, const uint8_t *p, size_t n,
                        uint8_t *out, int nthreads) nogil
    void mm_ea_compress(const mm_aes_key *code_key, uint8_t *buf, size_t big_n, size_t width,
                        uint8_t *out, size_t n, int weight, int path, int nthreads) nogil
    int mm_ea_compress_regular(const mm_aes_key *code_key, const int64_t *alpha,
                               const uint8_t *beta, size_t t, int depth, uint8_t *out, size_t n,
                               int weight, int path, int nthreads) nogil

OKVS_BAND = 128


def _vole_starts(start, Py_ssize_t n) -> object:
    if not isinstance(start, _kn_np.ndarray) or start.dtype != _kn_np.uint64 or start.size != n:
        raise ValueError(f"start must be a uint64 array of {n} entries")
    return start


def okvs_hash_into(k_start, k_band, keys, uint64_t m, start, band, int path=-1) -> None:
    """start[i] in [0, m - 128] and the 128-bit band[i] of every 16-byte key."""
    if m < OKVS_BAND:
        raise ValueError(f"OKVS needs at least {OKVS_BAND} columns, got {m}")
    cdef Py_ssize_t n = _kn_blocks(keys, "keys")
    _vole_starts(start, n)
    cdef const mm_aes_key* ks = <const mm_aes_key*>_kn_in(k_start, "k_start", 176)
    cdef const mm_aes_key* kb = <const mm_aes_key*>_kn_in(k_band, "k_band", 176)
    cdef const uint8_t* src = _kn_in(keys, "keys", 16 * n)
    cdef uint64_t* st = <uint64_t*>_kn_out(start, "start", 8 * n)
    cdef uint8_t* bd = _kn_out(band, "band", 16 * n)
    with nogil:
        mm_okvs_hash(ks, kb, src, n, m, st, bd, path)


def okvs_encode_into(start, band, values, uint64_t m, out) -> bool:
    """Solve for the m-block table out; False when these hashes admit no solution."""
    cdef Py_ssize_t n = _kn_blocks(values, "values")
    _vole_starts(start, n)
    if n and int(start.max()) > m - OKVS_BAND:
        raise ValueError("an OKVS start lies past m - 128")
    cdef const uint64_t* st = <const uint64_t*>_kn_in(start, "start", 8 * n)
    cdef const uint8_t* bd = _kn_in(band, "band", 16 * n)
    cdef const uint8_t* vs = _kn_in(values, "values", 16 * n)
    cdef uint8_t* po = _kn_out(out, "out", 16 * m)
    cdef int rc
    with nogil:
        rc = mm_okvs_encode(st, bd, vs, n, m, po)
    if rc == -2:
        raise MemoryError("okvs_encode: out of memory")
    return rc == 0


def okvs_decode_into(start, band, table, out, int nthreads=1) -> None:
    """out[i] = XOR of table[start[i] + k] over the set bits k of band[i] (nthreads threads)."""
    cdef Py_ssize_t n = _kn_blocks(band, "band")
    cdef Py_ssize_t m = _kn_blocks(table, "table")
    _vole_starts(start, n)
    if n and (m < OKVS_BAND or int(start.max()) > m - OKVS_BAND):
        raise ValueError("an OKVS start lies past the end of the table")
    cdef const uint64_t* st = <const uint64_t*>_kn_in(start, "start", 8 * n)
    cdef const uint8_t* bd = _kn_in(band, "band", 16 * n)
    cdef const uint8_t* tb = _kn_in(table, "table", 16 * m)
    cdef uint8_t* po = _kn_out(out, "out", 16 * n)
    with nogil:
        mm_okvs_decode(st, bd, tb, n, po, nthreads)


def ea_compress_into(code_key, buf, out, int weight, int path=-1, int nthreads=1) -> None:
    """Dual expand-accumulate on rows of buf (n_big, w, 16) or (n_big, 16), w <= 2:
    buf becomes its prefix XOR, out (n, w, 16) the XOR of weight picked rows."""
    cdef Py_ssize_t width = buf.shape[1] if buf.ndim == 3 else 1
    if width not in (1, 2) or (buf.ndim == 3 and buf.shape[2] != 16):
        raise ValueError("ea_compress: rows must be 1 or 2 blocks")
    cdef Py_ssize_t big_n = _kn_blocks(buf, "buf") // width
    cdef Py_ssize_t n = _kn_blocks(out, "out") // width
    if not 1 <= weight <= 8 or big_n >= (1 << 32) or (n and big_n == 0):
        raise ValueError(f"ea_compress: weight {weight} or size {big_n} out of range")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(code_key, "code_key", 176)
    cdef uint8_t* pb = _kn_out(buf, "buf", 16 * big_n * width)
    cdef uint8_t* po = _kn_out(out, "out", 16 * n * width)
    with nogil:
        mm_ea_compress(k, pb, big_n, width, po, n, weight, path, nthreads)


def ea_compress_regular_into(code_key, alpha, beta, int depth, out, int weight, int path=-1,
                             int nthreads=1) -> None:
    """ea_compress_into of the regular noise vector (beta[r] at row r 2^depth + alpha[r] of
    t = len(alpha) regions, zero elsewhere) into out (n, 16), without building it."""
    if not isinstance(alpha, _kn_np.ndarray) or alpha.dtype != _kn_np.int64:
        raise ValueError("alpha must be an int64 array")
    cdef Py_ssize_t t = alpha.size
    if not 1 <= depth <= 30 or (t << depth) >= (1 << 32):
        raise ValueError(f"ea_compress_regular: depth {depth} or size out of range")
    if t and (int(alpha.min()) < 0 or int(alpha.max()) >= (1 << depth)):
        raise ValueError("a noise position lies outside its region")
    cdef Py_ssize_t n = _kn_blocks(out, "out")
    if not 1 <= weight <= 8 or (n and t == 0):
        raise ValueError(f"ea_compress_regular: weight {weight} or size out of range")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(code_key, "code_key", 176)
    cdef const int64_t* pa = <const int64_t*>_kn_in(alpha, "alpha", 8 * t)
    cdef const uint8_t* pbeta = _kn_in(beta, "beta", 16 * t)
    cdef uint8_t* po = _kn_out(out, "out", 16 * n)
    cdef int rc
    with nogil:
        rc = mm_ea_compress_regular(k, pa, pbeta, t, depth, po, n, weight, path, nthreads)
    if rc != 0:
        raise MemoryError("ea_compress_regular: out of memory")


cdef extern from "meshmpc/vole.h":
    void mm_ggm_expand(const mm_aes_key *fixed, const uint8_t *roots, size_t t, int depth,
                       uint64_t tw0, uint8_t *leaves, uint8_t *sums, int path) nogil
    void mm_ggm_punctured(const mm_aes_key *fixed, const int64_t *alpha, const uint8_t *chosen,
                          size_t t, int depth, uint64_t tw0, uint8_t *leaves, int path) nogil


def ggm_expand_into(fixed, roots, int depth, uint64_t tw0, leaves, sums, int path=-1) -> None:
    """t GGM trees: leaves (t * 2^depth blocks) and level parity sums (t * depth * 2)."""
    cdef Py_ssize_t t = _kn_blocks(roots, "roots")
    if not 1 <= depth <= 30:
        raise ValueError(f"GGM depth {depth} out of range")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(fixed, "fixed", 176)
    cdef const uint8_t* pr = _kn_in(roots, "roots", 16 * t)
    cdef uint8_t* pl = _kn_out(leaves, "leaves", 16 * t * (1 << depth))
    cdef uint8_t* ps = _kn_out(sums, "sums", 32 * t * depth)
    with nogil:
        mm_ggm_expand(k, pr, t, depth, tw0, pl, ps, path)


def ggm_punctured_into(fixed, alpha, chosen, int depth, uint64_t tw0, leaves,
                       int path=-1) -> None:
    """Every leaf but alpha[i] of tree i from the off-path level sums (t * depth blocks)."""
    if not isinstance(alpha, _kn_np.ndarray) or alpha.dtype != _kn_np.int64:
        raise ValueError("alpha must be an int64 array")
    cdef Py_ssize_t t = alpha.size
    if not 1 <= depth <= 30:
        raise ValueError(f"GGM depth {depth} out of range")
    if t and (int(alpha.min()) < 0 or int(alpha.max()) >= (1 << depth)):
        raise ValueError("a punctured point lies outside its tree")
    cdef const mm_aes_key* k = <const mm_aes_key*>_kn_in(fixed, "fixed", 176)
    cdef const int64_t* pa = <const int64_t*>_kn_in(alpha, "alpha", 8 * t)
    cdef const uint8_t* pc = _kn_in(chosen, "chosen", 16 * t * depth)
    cdef uint8_t* pl = _kn_out(leaves, "leaves", 16 * t * (1 << depth))
    with nogil:
        mm_ggm_punctured(k, pa, pc, t, depth, tw0, pl, path)
