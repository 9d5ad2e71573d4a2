/* SoftSpokenOT's small-field VOLE with the leaf PRG and the level sums fused, on
 * 256-bit VAES (AVX2 + VAES, as on AMD Zen 3), for k <= 4.
 *
 * The generic kernel (kernels_softspoken.c) writes every leaf's keystream of a
 * column tile to memory and then folds it level by level, about 2^(k+1) passes
 * over the tile's leaves. Here one 128-OT block of all 2^k leaves of a chunk is
 * made in registers (leaves 2q and 2q + 1 share a register, one key per 128-bit
 * lane), and the k level sums and the total are XORs of those registers:
 *   total T = XOR_q b_q: low lane = even leaves, high lane = odd leaves;
 *   S_0 = high(T), S_l = fold(XOR_{q : bit l-1 of q} b_q) for l >= 1, U = fold(T),
 * with fold(y) = low(y) ^ high(y), S_l = XOR of the leaves x with bit l of x set.
 * The receiver's row ik + l is S_l, its correction U ^ r; the sender (leaf d of the
 * chunk unknown, its lane zeroed) takes S_l or U ^ S_l as bit l of d is 0 or 1 and
 * adds the correction where it is 1. The rows go to the tile as 128 x 128 bit blocks
 * (128 OTs, the 128 rows' 16 bytes each, one after the other), so each block
 * transposes in place without the generic transpose's strip copies. Same output as
 * the generic kernel (tested). */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_internal.h"
#include "meshmpc/kernels.h"

#define VAES256 __attribute__((target("aes,vaes,avx2")))
/* k, nq and group are compile-time constants in each specialisation below, so the
 * register arrays stay in registers and the loops unroll */
#define INLINE VAES256 static inline __attribute__((always_inline))
#define REGS 8 /* AES registers in flight: 2^(k-1) leaves pairs x G blocks */
#define TILE_BITS 4096 /* OTs per column tile: 64 KiB of rows, in L2 */
#define BLOCK_BYTES 2048 /* the tile holds 128 x 128 bit blocks: 128 OTs' 128 rows of 16 bytes */

typedef struct {
    int nq; /* 2^(k-1) leaf pairs; a chunk_tile makes REGS / nq blocks at once */
    __m256i rk[REGS][11];
    __m256i keep[REGS]; /* sender: the unknown leaf's lane zeroed */
} chunk_state;

VAES256 static void load_chunk(chunk_state *s, const mm_aes_key *keys, int skip) {
    for (int q = 0; q < s->nq; q++) {
        for (int r = 0; r < 11; r++)
            s->rk[q][r] = _mm256_loadu2_m128i((const __m128i *)(keys[2 * q + 1].rk + 16 * r),
                                              (const __m128i *)(keys[2 * q].rk + 16 * r));
        long long lo = (2 * q == skip) ? 0 : -1, hi = (2 * q + 1 == skip) ? 0 : -1;
        s->keep[q] = _mm256_set_epi64x(hi, hi, lo, lo);
    }
}

/* Blocks ctr .. ctr + group - 1 of every leaf: b[g * nq + q]. */
INLINE void leaf_blocks(const chunk_state *s, int nq, int group, uint64_t ctr, __m256i *b) {
    int n = nq * group;
    for (int t = 0; t < n; t++) {
        uint64_t c = ctr + (uint64_t)(t / nq);
        b[t] = _mm256_xor_si256(_mm256_set_epi64x(0, (long long)c, 0, (long long)c),
                                s->rk[t % nq][0]);
    }
    for (int r = 1; r < 10; r++)
        for (int t = 0; t < n; t++) b[t] = _mm256_aesenc_epi128(b[t], s->rk[t % nq][r]);
    for (int t = 0; t < n; t++)
        b[t] = _mm256_and_si256(_mm256_aesenclast_epi128(b[t], s->rk[t % nq][10]),
                                s->keep[t % nq]);
}

INLINE __m128i fold(__m256i y) {
    return _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
}

/* The k level sums S_l and the total U of one block of the nq leaf pairs in b. */
INLINE __m128i level_sums(const __m256i *b, int k, int nq, __m128i *sums) {
    __m256i total = b[0];
    for (int q = 1; q < nq; q++) total = _mm256_xor_si256(total, b[q]);
    sums[0] = _mm256_extracti128_si256(total, 1);
    for (int l = 1; l < k; l++) {
        __m256i acc = _mm256_setzero_si256();
        for (int q = 0; q < nq; q++)
            if ((q >> (l - 1)) & 1) acc = _mm256_xor_si256(acc, b[q]);
        sums[l] = fold(acc);
    }
    return fold(total);
}

static int chunk_delta(const uint8_t delta[16], size_t i, int k) {
    int d = 0;
    for (int l = 0; l < k; l++) {
        size_t bit = i * (size_t)k + (size_t)l;
        d |= ((delta[bit / 8] >> (bit % 8)) & 1) << l;
    }
    return d;
}

/* One chunk of one tile: cw OTs from block counter ctr. Receiver (d < 0): rows get S_l,
 * corr gets U ^ r. Sender (leaf d unknown): rows get its sums plus d_l times corr. */
INLINE void chunk_tile(const chunk_state *s, const int k, uint64_t ctr, size_t cw, int d,
                       uint8_t *rows, uint8_t *corr, const uint8_t *r) {
    __m256i b[REGS];
    __m128i sums[4];
    const int nq = 1 << (k - 1), group = REGS / nq;
    for (size_t p = 0; p < cw / 128; p += (size_t)group) {
        leaf_blocks(s, nq, group, ctr + p, b);
        for (int g = 0; g < group && p + (size_t)g < cw / 128; g++) {
            size_t at = 16 * (p + (size_t)g);
            uint8_t *block = rows + BLOCK_BYTES * (p + (size_t)g);
            __m128i u = level_sums(b + g * nq, k, nq, sums);
            if (d < 0) {
                __m128i rv = _mm_loadu_si128((const __m128i *)(r + at));
                _mm_storeu_si128((__m128i *)(corr + at), _mm_xor_si128(u, rv));
                for (int l = 0; l < k; l++)
                    _mm_storeu_si128((__m128i *)(block + 16 * l), sums[l]);
                continue;
            }
            __m128i c = _mm_loadu_si128((const __m128i *)(corr + at));
            for (int l = 0; l < k; l++) {
                __m128i row = (d >> l) & 1 ? _mm_xor_si128(_mm_xor_si128(u, sums[l]), c) : sums[l];
                _mm_storeu_si128((__m128i *)(block + 16 * l), row);
            }
        }
    }
}

#define CHUNK_TILE_K(K)                                                                   \
    VAES256 static void chunk_tile_##K(const chunk_state *s, uint64_t ctr, size_t cw, int d, \
                                       uint8_t *rows, uint8_t *corr, const uint8_t *r) {    \
        chunk_tile(s, K, ctr, cw, d, rows, corr, r);                                        \
    }
CHUNK_TILE_K(1)
CHUNK_TILE_K(2)
CHUNK_TILE_K(3)
CHUNK_TILE_K(4)

typedef void (*chunk_tile_fn)(const chunk_state *, uint64_t, size_t, int, uint8_t *, uint8_t *,
                              const uint8_t *);
static const chunk_tile_fn CHUNK_TILES[5] = {NULL, chunk_tile_1, chunk_tile_2, chunk_tile_3,
                                             chunk_tile_4};

/* Both ends: the receiver passes delta NULL (writes corrections), the sender delta. */
VAES256 static void fused(const mm_aes_key *leaf_keys, int k, const uint8_t *delta,
                          uint64_t ctr, const uint8_t *r, uint8_t *corrections, size_t m,
                          uint8_t *out_rows, uint8_t *tile) {
    chunk_state s;
    size_t c = 128 / (size_t)k, row_bytes = m / 8;
    s.nq = 1 << (k - 1);
    for (size_t j0 = 0; j0 < m; j0 += TILE_BITS) {
        size_t cw = m - j0 < TILE_BITS ? m - j0 : TILE_BITS;
        for (size_t i = 0; i < c; i++) {
            int d = delta ? chunk_delta(delta, i, k) : -1;
            load_chunk(&s, leaf_keys + (i << k), d);
            CHUNK_TILES[k](&s, ctr + j0 / 128, cw, d, tile + 16 * i * (size_t)k,
                           corrections + i * row_bytes + j0 / 8, r ? r + j0 / 8 : NULL);
        }
        mm_transpose128_blocks_avx2(tile, out_rows + j0 * 16, cw / 128);
    }
}

int mm_softspoken_fused_ok(int k) {
    return k >= 1 && k <= 4 && (mm_cpu_features() & MM_CPU_VAES256) &&
           (mm_cpu_features() & MM_CPU_AVX2);
}

int mm_softspoken_receiver_vaes256(const mm_aes_key *leaf_keys, int k, uint64_t ctr,
                                   const uint8_t *r, size_t m, uint8_t *corrections,
                                   uint8_t *t_rows) {
    uint8_t *tile = malloc(128 * TILE_BITS / 8);
    if (!tile) return -1;
    fused(leaf_keys, k, NULL, ctr, r, corrections, m, t_rows, tile);
    free(tile);
    return 0;
}

int mm_softspoken_sender_vaes256(const mm_aes_key *leaf_keys, int k, const uint8_t delta[16],
                                 uint64_t ctr, const uint8_t *corrections, size_t m,
                                 uint8_t *q_rows) {
    uint8_t *tile = malloc(128 * TILE_BITS / 8);
    if (!tile) return -1;
    /* the sender only reads the corrections (chunk_tile writes them only for d < 0) */
    fused(leaf_keys, k, delta, ctr, NULL, (uint8_t *)(uintptr_t)corrections, m, q_rows, tile);
    free(tile);
    return 0;
}
