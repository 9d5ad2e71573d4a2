/* Bit-matrix transpose, GF(2^128) arithmetic, block helpers and the batched
 * item hash.
 *
 * The transpose works on tiles of 32 (AVX2) or 64 (AVX-512BW) rows by 128
 * columns: a 16 x 16 byte transpose per 128-bit lane (four rounds of byte
 * unpacks, rows loaded in bit-reversed order so the result lands in place),
 * then eight movemask rounds peel one bit of every row per output row. The
 * portable path transposes 8 x 8 bit blocks inside a 64-bit word.
 */
#include <immintrin.h>
#include <string.h>

#include "meshmpc/kernels.h"

#define AVX2 __attribute__((target("avx2")))
#define AVX512 __attribute__((target("avx512f,avx512bw")))
#define CLMUL __attribute__((target("pclmul,sse4.1")))

/* -------------------------------------------------------------- transpose */

static uint64_t transpose8x8(uint64_t x) {
    uint64_t t;
    t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL;
    x = x ^ t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL;
    x = x ^ t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL;
    return x ^ t ^ (t << 28);
}

/* Portable transpose of rows [r0, r1) x column bytes [c0, c1). */
static void transpose_portable(const uint8_t *in, uint8_t *out, size_t rows, size_t cols,
                               size_t r0, size_t r1, size_t c0, size_t c1) {
    size_t in_stride = cols / 8, out_stride = rows / 8;
    for (size_t r = r0; r < r1; r += 8) {
        for (size_t cb = c0; cb < c1; cb++) {
            uint64_t x = 0;
            for (int i = 0; i < 8; i++) x |= (uint64_t)in[(r + i) * in_stride + cb] << (8 * i);
            x = transpose8x8(x);
            for (int i = 0; i < 8; i++) out[(cb * 8 + i) * out_stride + r / 8] = (uint8_t)(x >> (8 * i));
        }
    }
}

static const int BITREV4[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};

#define BYTE_TRANSPOSE16(x, t, unpacklo, unpackhi)                                        \
    for (int round = 0; round < 4; round++) {                                             \
        for (int i = 0; i < 8; i++) {                                                     \
            t[i] = unpacklo(x[2 * i], x[2 * i + 1]);                                      \
            t[i + 8] = unpackhi(x[2 * i], x[2 * i + 1]);                                  \
        }                                                                                 \
        for (int i = 0; i < 16; i++) x[i] = t[i];                                         \
    }

/* Tiles read from a strip buffer (rows x STRIP_BYTES, contiguous) so that the
 * 32/64 rows of a tile are not a power-of-two stride apart in memory, which
 * would map them all to one cache set and thrash L1/L2. */
#define STRIP_BYTES 256

AVX2 static void tile_avx2(const uint8_t *in, size_t in_stride, uint8_t *out, size_t out_stride) {
    __m256i x[16], t[16];
    for (int k = 0; k < 16; k++) {
        const uint8_t *lo = in + BITREV4[k] * in_stride;
        __m128i a = _mm_loadu_si128((const __m128i *)lo);
        __m128i b = _mm_loadu_si128((const __m128i *)(lo + 16 * in_stride));
        x[k] = _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
    }
    BYTE_TRANSPOSE16(x, t, _mm256_unpacklo_epi8, _mm256_unpackhi_epi8)
    for (int v = 0; v < 16; v++) {
        uint8_t *col = out + (size_t)BITREV4[v] * 8 * out_stride;
        __m256i y = x[v];
        for (int bit = 7; bit >= 0; bit--) {
            uint32_t m = (uint32_t)_mm256_movemask_epi8(y);
            memcpy(col + bit * out_stride, &m, 4);
            y = _mm256_slli_epi64(y, 1);
        }
    }
}

AVX512 static void tile_avx512(const uint8_t *in, size_t in_stride, uint8_t *out,
                               size_t out_stride) {
    __m512i x[16], t[16];
    for (int k = 0; k < 16; k++) {
        const uint8_t *p = in + BITREV4[k] * in_stride;
        __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + 16 * in_stride)), 1);
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + 32 * in_stride)), 2);
        x[k] = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + 48 * in_stride)), 3);
    }
    BYTE_TRANSPOSE16(x, t, _mm512_unpacklo_epi8, _mm512_unpackhi_epi8)
    for (int v = 0; v < 16; v++) {
        uint8_t *col = out + (size_t)BITREV4[v] * 8 * out_stride;
        __m512i y = x[v];
        for (int bit = 7; bit >= 0; bit--) {
            uint64_t m = (uint64_t)_mm512_movepi8_mask(y);
            memcpy(col + bit * out_stride, &m, 8);
            y = _mm512_slli_epi64(y, 1);
        }
    }
}

/* Internal (kernels_internal.h): nblocks 128 x 128 bit blocks, block b being 128 rows
 * of 16 bytes at in + 2048 b, each transposed into out + 2048 b. The rows of a tile
 * are 16 bytes apart (no cache-set aliasing), so no strip copy is needed. */
AVX2 void mm_transpose128_blocks_avx2(const uint8_t *in, uint8_t *out, size_t nblocks) {
    for (size_t b = 0; b < nblocks; b++)
        for (int g = 0; g < 4; g++) tile_avx2(in + 2048 * b + 512 * g, 16, out + 2048 * b + 4 * g, 16);
}

/* SIMD transpose of rows [0, rs) x column bytes [0, cbs), tile_rows at a time. */
static void transpose_simd(const uint8_t *in, uint8_t *out, size_t rows, size_t cols,
                           size_t rs, size_t cbs, size_t tile_rows) {
    uint8_t strip[64 * STRIP_BYTES];
    size_t in_stride = cols / 8, out_stride = rows / 8;
    for (size_t r = 0; r < rs; r += tile_rows) {
        for (size_t c0 = 0; c0 < cbs; c0 += STRIP_BYTES) {
            size_t w = cbs - c0 < STRIP_BYTES ? cbs - c0 : STRIP_BYTES;
            for (size_t i = 0; i < tile_rows; i++)
                memcpy(strip + i * STRIP_BYTES, in + (r + i) * in_stride + c0, w);
            for (size_t cb = 0; cb < w; cb += 16) {
                uint8_t *dst = out + (c0 + cb) * 8 * out_stride + r / 8;
                if (tile_rows == 64) tile_avx512(strip + cb, STRIP_BYTES, dst, out_stride);
                else tile_avx2(strip + cb, STRIP_BYTES, dst, out_stride);
            }
        }
    }
}

void mm_transpose(const uint8_t *in, uint8_t *out, size_t rows, size_t cols, int path) {
    int f = mm_cpu_features();
    size_t tile_rows = 0;
    if (path < 0) path = MM_PATH_VAES;
    if (path >= MM_PATH_VAES && (f & MM_CPU_AVX512)) tile_rows = 64;
    else if (path >= MM_PATH_AESNI && (f & MM_CPU_AVX2)) tile_rows = 32;
    size_t rs = tile_rows ? rows / tile_rows * tile_rows : 0;
    size_t cbs = tile_rows ? (cols / 8) / 16 * 16 : 0;
    if (rs && cbs) transpose_simd(in, out, rows, cols, rs, cbs, tile_rows);
    if (cbs < cols / 8) transpose_portable(in, out, rows, cols, 0, rs, cbs, cols / 8);
    if (rs < rows) transpose_portable(in, out, rows, cols, rs, rows, 0, cols / 8);
}

/* ------------------------------------------------------------- GF(2^128) */

typedef struct {
    uint64_t w[4];
} u256;

static void clmul64(uint64_t a, uint64_t b, uint64_t *lo, uint64_t *hi) {
    uint64_t l = 0, h = 0;
    for (int i = 0; i < 64; i++) {
        uint64_t m = (uint64_t)0 - ((b >> i) & 1);
        l ^= (a << i) & m;
        if (i) h ^= (a >> (64 - i)) & m;
    }
    *lo = l;
    *hi = h;
}

static void mul_portable(const uint8_t *a, const uint8_t *b, u256 *acc) {
    uint64_t x[2], y[2], lo, hi;
    memcpy(x, a, 16);
    memcpy(y, b, 16);
    clmul64(x[0], y[0], &lo, &hi);
    acc->w[0] ^= lo, acc->w[1] ^= hi;
    clmul64(x[1], y[1], &lo, &hi);
    acc->w[2] ^= lo, acc->w[3] ^= hi;
    clmul64(x[0], y[1], &lo, &hi);
    acc->w[1] ^= lo, acc->w[2] ^= hi;
    clmul64(x[1], y[0], &lo, &hi);
    acc->w[1] ^= lo, acc->w[2] ^= hi;
}

/* Reduce w3 w2 w1 w0 modulo x^128 + x^7 + x^2 + x + 1 (0x87 below x^128). */
static void reduce_portable(const u256 *p, uint8_t out[16]) {
    uint64_t lo, hi, r[2] = {p->w[0], p->w[1]};
    clmul64(p->w[2], 0x87, &lo, &hi);
    r[0] ^= lo, r[1] ^= hi;
    clmul64(p->w[3], 0x87, &lo, &hi);
    r[1] ^= lo;
    clmul64(hi, 0x87, &lo, &hi);
    r[0] ^= lo;
    memcpy(out, r, 16);
}

CLMUL static void mul_clmul(__m128i a, __m128i b, __m128i *lo, __m128i *hi) {
    __m128i t0 = _mm_clmulepi64_si128(a, b, 0x00);
    __m128i t1 = _mm_clmulepi64_si128(a, b, 0x11);
    __m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x10), _mm_clmulepi64_si128(a, b, 0x01));
    *lo = _mm_xor_si128(*lo, _mm_xor_si128(t0, _mm_slli_si128(mid, 8)));
    *hi = _mm_xor_si128(*hi, _mm_xor_si128(t1, _mm_srli_si128(mid, 8)));
}

CLMUL static __m128i reduce_clmul(__m128i lo, __m128i hi) {
    const __m128i poly = _mm_set_epi64x(0, 0x87);
    __m128i t0 = _mm_clmulepi64_si128(hi, poly, 0x00);  /* hi.lo * r: bits 0..70 */
    __m128i t1 = _mm_clmulepi64_si128(hi, poly, 0x01);  /* hi.hi * r, times x^64 */
    lo = _mm_xor_si128(lo, _mm_xor_si128(t0, _mm_slli_si128(t1, 8)));
    __m128i over = _mm_srli_si128(t1, 8);                /* bits at x^128 and above */
    return _mm_xor_si128(lo, _mm_clmulepi64_si128(over, poly, 0x00));
}

CLMUL static void gf_mul_clmul(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        __m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();
        mul_clmul(_mm_loadu_si128((const __m128i *)(a + 16 * i)),
                  _mm_loadu_si128((const __m128i *)(b + 16 * i)), &lo, &hi);
        _mm_storeu_si128((__m128i *)(out + 16 * i), reduce_clmul(lo, hi));
    }
}

CLMUL static void gf_inner_clmul(const uint8_t *a, const uint8_t *b, size_t n, uint8_t out[16]) {
    __m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();
    for (size_t i = 0; i < n; i++)
        mul_clmul(_mm_loadu_si128((const __m128i *)(a + 16 * i)),
                  _mm_loadu_si128((const __m128i *)(b + 16 * i)), &lo, &hi);
    _mm_storeu_si128((__m128i *)out, reduce_clmul(lo, hi));
}

static int use_clmul(int path) {
    return path != MM_PATH_PORTABLE && (mm_cpu_features() & MM_CPU_PCLMUL);
}

void mm_gf128_mul(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t n, int path) {
    if (use_clmul(path)) {
        gf_mul_clmul(a, b, out, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        u256 p = {{0, 0, 0, 0}};
        mul_portable(a + 16 * i, b + 16 * i, &p);
        reduce_portable(&p, out + 16 * i);
    }
}

void mm_gf128_inner(const uint8_t *a, const uint8_t *b, size_t n, uint8_t out[16], int path) {
    if (use_clmul(path)) {
        gf_inner_clmul(a, b, n, out);
        return;
    }
    u256 p = {{0, 0, 0, 0}};
    for (size_t i = 0; i < n; i++) mul_portable(a + 16 * i, b + 16 * i, &p);
    reduce_portable(&p, out);
}

/* ---------------------------------------------------------- block helpers */

void mm_xor(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t nbytes) {
    for (size_t i = 0; i < nbytes; i++) out[i] = (uint8_t)(a[i] ^ b[i]);
}

void mm_and(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t nbytes) {
    for (size_t i = 0; i < nbytes; i++) out[i] = (uint8_t)(a[i] & b[i]);
}

static void select_words(const uint8_t *bits, const uint8_t *a, const uint8_t *b, uint8_t *out,
                         size_t n, size_t words) {
    for (size_t j = 0; j < n; j++) {
        uint64_t m = (uint64_t)0 - ((bits[j / 8] >> (j % 8)) & 1);
        for (size_t i = 0; i < words; i++) {
            uint64_t x, y;
            memcpy(&x, a + 8 * (j * words + i), 8);
            memcpy(&y, b + 8 * (j * words + i), 8);
            x ^= (x ^ y) & m;
            memcpy(out + 8 * (j * words + i), &x, 8);
        }
    }
}

void mm_select(const uint8_t *bits, const uint8_t *a, const uint8_t *b, uint8_t *out, size_t n,
               size_t width) {
    if (width % 8 == 0) {
        select_words(bits, a, b, out, n, width / 8);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        uint8_t m = (uint8_t)(0 - ((bits[j / 8] >> (j % 8)) & 1));
        const uint8_t *pa = a + j * width, *pb = b + j * width;
        uint8_t *po = out + j * width;
        for (size_t i = 0; i < width; i++) po[i] = (uint8_t)(pa[i] ^ ((pa[i] ^ pb[i]) & m));
    }
}

void mm_xor_where(const uint8_t *bits, const uint8_t *delta, uint8_t *inout, size_t n,
                  size_t width) {
    for (size_t j = 0; j < n; j++) {
        uint8_t m = (uint8_t)(0 - ((bits[j / 8] >> (j % 8)) & 1));
        uint8_t *p = inout + j * width;
        for (size_t i = 0; i < width; i++) p[i] ^= (uint8_t)(delta[i] & m);
    }
}

/* -------------------------------------------------------------- item hash */

int mm_item_hash(mm_blake2b_fn fn, const uint8_t *data, const int64_t *offsets, size_t n,
                 const uint8_t *key, size_t keylen, const uint8_t personal[16], uint8_t *out) {
    static const uint8_t salt[16] = {0};
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = data + offsets[i];
        unsigned long long len = (unsigned long long)(offsets[i + 1] - offsets[i]);
        if (fn(out + 16 * i, 16, p, len, key, keylen, salt, personal) != 0) return -1;
    }
    return 0;
}
