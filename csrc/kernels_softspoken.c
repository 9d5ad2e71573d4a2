/* SoftSpokenOT (Roy, CRYPTO 2022) with the repetition code, semi-honest:
 * small-field VOLE from punctured GGM trees, turned into correlated OT.
 *
 * There are c = 128 / k chunks of 2^k leaf seeds. For chunk i and leaf x the
 * PRG gives m bits r_{i,x}. The receiver (all leaves known) computes
 *   V_i[l] = XOR_{x : bit l of x = 1} r_{i,x},  U_i = XOR_x r_{i,x};
 * the sender (leaf delta_i unknown, delta_i = bits ik..ik+k-1 of delta) computes
 *   W_i[l] = XOR_{x : bit l of x != delta_il} r_{i,x} = V_i[l] ^ delta_il U_i.
 * The receiver sends C_i = U_i ^ r; the sender adds delta_il C_i, so row ik+l
 * of Q equals row ik+l of T xor delta_{ik+l} r, and the transposed rows satisfy
 * q_j = t_j ^ r_j delta, exactly like IKNP, for 128 / k bits of traffic per OT.
 * Sums use the halving trick: about 2^(k+1) vector XORs per chunk. On CPUs with
 * 256-bit VAES and k <= 4 the AES-NI path (and MM_PATH_AUTO there) runs the fused
 * kernel of softspoken_vaes256.c instead: leaves and sums in registers.
 */

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_internal.h"
#include "meshmpc/kernels.h"

/* The fused kernel serves the AES-NI path where the CPU has 256-bit VAES (as the
 * CTR and hash bulk do); portable and the AVX-512 path keep the generic code. */
static int use_fused(int path, int k) {
    return mm_resolve_path(path) == MM_PATH_AESNI && mm_softspoken_fused_ok(k);
}

static void xor_portable(uint8_t *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] ^= src[i];
}

__attribute__((target("avx512f"))) static void xor_avx512(uint8_t *dst, const uint8_t *src,
                                                          size_t n) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        _mm512_storeu_si512(dst + i, _mm512_xor_si512(_mm512_loadu_si512(dst + i),
                                                      _mm512_loadu_si512(src + i)));
    xor_portable(dst + i, src + i, n - i);
}

__attribute__((target("avx2"))) static void xor_avx2(uint8_t *dst, const uint8_t *src, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(dst + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, b));
    }
    xor_portable(dst + i, src + i, n - i);
}

typedef void (*xor_fn)(uint8_t *, const uint8_t *, size_t);

/* The widest XOR the requested path may use (the result is the same for all). */
static xor_fn pick_xor(int path) {
    int f = mm_cpu_features();
    if (path < 0) path = MM_PATH_VAES;
    if (path >= MM_PATH_VAES && (f & MM_CPU_AVX512)) return xor_avx512;
    if (path >= MM_PATH_AESNI && (f & MM_CPU_AVX2)) return xor_avx2;
    return xor_portable;
}

/* Level sums of one chunk over a column tile of wb bytes. leaves holds 2^k
 * vectors of wb bytes and is destroyed; rows[l] gets the sum for bit l of x
 * differing from bit l of flip; returns the total sum in leaves[0]. */
static void chunk_sums(uint8_t *leaves, int k, size_t wb, uint32_t flip, uint8_t *rows,
                       size_t row_stride, xor_fn xor_into) {
    size_t count = (size_t)1 << k;
    for (int l = 0; l < k; l++, count >>= 1) {
        uint8_t *row = rows + (size_t)l * row_stride;
        size_t first = ((flip >> l) & 1) ? 0 : 1; /* the y with bit 0 != flip_l */
        memcpy(row, leaves + first * wb, wb);
        for (size_t y = first + 2; y < count; y += 2) xor_into(row, leaves + y * wb, wb);
        for (size_t y = 0; y < count / 2; y++) {
            uint8_t *dst = leaves + y * wb;
            if (y) memcpy(dst, leaves + 2 * y * wb, wb);
            xor_into(dst, leaves + (2 * y + 1) * wb, wb);
        }
    }
}

static size_t tile_bits(int k, size_t m) {
    /* Leaves of one chunk stay within 256 KiB (L2); wide tiles amortise the
     * per-leaf AES call over many counter blocks. */
    size_t w = ((size_t)1 << 21) / ((size_t)1 << k);
    if (w > 8192) w = 8192;
    w = w / 128 * 128;
    if (w < 128) w = 128;
    return w < m ? w : m;
}

static void expand_leaves(const mm_aes_key *keys, int k, int skip, uint64_t ctr, size_t w,
                          uint8_t *leaves, int path) {
    size_t wb = w / 8;
    for (int x = 0; x < (1 << k); x++) {
        if (x == skip) memset(leaves + (size_t)x * wb, 0, wb);
        else mm_aes128_ctr(&keys[x], ctr, leaves + (size_t)x * wb, w / 128, path);
    }
}

int mm_softspoken_receiver(const mm_aes_key *leaf_keys, int k, uint64_t ctr, const uint8_t *r,
                           size_t m, uint8_t *corrections, uint8_t *t_rows, int path) {
    if (use_fused(path, k))
        return mm_softspoken_receiver_vaes256(leaf_keys, k, ctr, r, m, corrections, t_rows);
    size_t c = 128 / (size_t)k, w = tile_bits(k, m), row_bytes = m / 8;
    xor_fn xor_into = pick_xor(path);
    uint8_t *leaves = malloc(((size_t)1 << k) * w / 8), *tile = malloc(128 * w / 8);
    if (!leaves || !tile) {
        free(leaves);
        free(tile);
        return -1;
    }
    for (size_t j0 = 0; j0 < m; j0 += w) {
        size_t cw = m - j0 < w ? m - j0 : w, wb = cw / 8;
        for (size_t i = 0; i < c; i++) {
            expand_leaves(leaf_keys + (i << k), k, -1, ctr + j0 / 128, cw, leaves, path);
            chunk_sums(leaves, k, wb, 0, tile + i * k * wb, wb, xor_into);
            uint8_t *ci = corrections + i * row_bytes + j0 / 8;
            for (size_t b = 0; b < wb; b++) ci[b] = (uint8_t)(leaves[b] ^ r[j0 / 8 + b]);
        }
        mm_transpose(tile, t_rows + j0 * 16, 128, cw, path);
    }
    free(leaves);
    free(tile);
    return 0;
}

int mm_softspoken_sender(const mm_aes_key *leaf_keys, int k, const uint8_t delta[16],
                         uint64_t ctr, const uint8_t *corrections, size_t m, uint8_t *q_rows,
                         int path) {
    if (use_fused(path, k))
        return mm_softspoken_sender_vaes256(leaf_keys, k, delta, ctr, corrections, m, q_rows);
    size_t c = 128 / (size_t)k, w = tile_bits(k, m), row_bytes = m / 8;
    xor_fn xor_into = pick_xor(path);
    uint8_t *leaves = malloc(((size_t)1 << k) * w / 8), *tile = malloc(128 * w / 8);
    if (!leaves || !tile) {
        free(leaves);
        free(tile);
        return -1;
    }
    for (size_t j0 = 0; j0 < m; j0 += w) {
        size_t cw = m - j0 < w ? m - j0 : w, wb = cw / 8;
        for (size_t i = 0; i < c; i++) {
            uint32_t d = 0;
            for (int l = 0; l < k; l++) {
                size_t bit = i * (size_t)k + (size_t)l;
                d |= (uint32_t)((delta[bit / 8] >> (bit % 8)) & 1) << l;
            }
            expand_leaves(leaf_keys + (i << k), k, (int)d, ctr + j0 / 128, cw, leaves, path);
            uint8_t *rows = tile + i * k * wb;
            chunk_sums(leaves, k, wb, d, rows, wb, xor_into);
            const uint8_t *ci = corrections + i * row_bytes + j0 / 8;
            for (int l = 0; l < k; l++)
                if ((d >> l) & 1) xor_into(rows + (size_t)l * wb, ci, wb);
        }
        mm_transpose(tile, q_rows + j0 * 16, 128, cw, path);
    }
    free(leaves);
    free(tile);
    return 0;
}
