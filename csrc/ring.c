/* Ring kernels: bit slicing of Z_2^64 shares for boolean circuits, and
 * Z_2^128 arithmetic (GCC's unsigned __int128) for the high-precision ring. */
#include "meshmpc/ring.h"

#include <math.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef __int128 s128;

/* In-place 64x64 bit-matrix transpose (recursive block swaps, log2(64) passes):
 * afterwards bit t of a[j] is what bit j of a[t] was. */
static void transpose64(uint64_t a[64]) {
    static const uint64_t masks[6] = {
        0x00000000FFFFFFFFULL, 0x0000FFFF0000FFFFULL, 0x00FF00FF00FF00FFULL,
        0x0F0F0F0F0F0F0F0FULL, 0x3333333333333333ULL, 0x5555555555555555ULL};
    unsigned j = 32;
    for (int level = 0; level < 6; level++, j >>= 1) {
        uint64_t m = masks[level];
        for (unsigned k = 0; k < 64; k = ((k | j) + 1) & ~j) {
            uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
            a[k] ^= t << j;
            a[k | j] ^= t;
        }
    }
}

void ring_bitslice64(const uint64_t *x, size_t n, uint64_t *planes, size_t w) {
    uint64_t block[64];
    for (size_t k = 0; k < w; k++) {
        size_t start = k * 64;
        size_t count = n - start < 64 ? n - start : 64;
        memcpy(block, x + start, count * sizeof(uint64_t));
        if (count < 64) memset(block + count, 0, (64 - count) * sizeof(uint64_t));
        transpose64(block);
        for (unsigned j = 0; j < 64; j++) planes[(size_t)j * w + k] = block[j];
    }
}

void ring_plane_to_u64(const uint64_t *plane, size_t n, uint64_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = (plane[i >> 6] >> (i & 63)) & 1ULL;
}

void ring_u64_to_plane(const uint64_t *bits, size_t n, uint64_t *plane) {
    size_t w = (n + 63) / 64;
    memset(plane, 0, w * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) plane[i >> 6] |= (bits[i] & 1ULL) << (i & 63);
}

void ring64_matmul_tn(const uint64_t *a, const uint64_t *b, uint64_t *out,
                      size_t k, size_t m, size_t p) {
    memset(out, 0, m * p * sizeof(uint64_t));
    for (size_t t = 0; t < k; t++) {
        const uint64_t *row = a + t * m;
        const uint64_t *brow = b + t * p;
        for (size_t j = 0; j < p; j++) {
            uint64_t scale = brow[j];
            uint64_t *col = out + j;
            for (size_t i = 0; i < m; i++) col[i * p] += row[i] * scale;
        }
    }
}

void ring64_matmul_nn(const uint64_t *a, const uint64_t *b, uint64_t *out,
                      size_t m, size_t k, size_t p) {
    if (p == 1) {  /* matrix-vector: four independent accumulators per row */
        for (size_t i = 0; i < m; i++) {
            const uint64_t *row = a + i * k;
            uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            size_t t = 0;
            for (; t + 4 <= k; t += 4) {
                s0 += row[t] * b[t];
                s1 += row[t + 1] * b[t + 1];
                s2 += row[t + 2] * b[t + 2];
                s3 += row[t + 3] * b[t + 3];
            }
            for (; t < k; t++) s0 += row[t] * b[t];
            out[i] = s0 + s1 + s2 + s3;
        }
        return;
    }
    memset(out, 0, m * p * sizeof(uint64_t));
    for (size_t i = 0; i < m; i++) {
        const uint64_t *row = a + i * k;
        uint64_t *orow = out + i * p;
        for (size_t t = 0; t < k; t++) {
            uint64_t x = row[t];
            const uint64_t *brow = b + t * p;
            for (size_t j = 0; j < p; j++) orow[j] += x * brow[j];
        }
    }
}

int ring64_matmul_fixed(const double *x, const uint64_t *b, uint64_t *out,
                        size_t m, size_t k, size_t p, double scale, double bound) {
    memset(out, 0, m * p * sizeof(uint64_t));
    for (size_t i = 0; i < m; i++) {
        const double *row = x + i * k;
        uint64_t *orow = out + i * p;
        uint64_t acc = 0;
        int bad = 0;
        for (size_t t = 0; t < k; t++) {
            double y = row[t] * scale, scaled;
            /* round to nearest even without a libm call: exact below 2^51 */
            if (fabs(y) < 0x1p51) scaled = (y + 0x1.8p52) - 0x1.8p52;
            else scaled = nearbyint(y);
            bad |= !(fabs(scaled) < bound); /* also catches NaN */
            uint64_t e = (uint64_t)(int64_t)scaled;
            if (p == 1) {
                acc += e * b[t];
            } else {
                const uint64_t *brow = b + t * p;
                for (size_t j = 0; j < p; j++) orow[j] += e * brow[j];
            }
        }
        if (bad) return -1;
        if (p == 1) orow[0] = acc;
    }
    return 0;
}

static inline u128 load128(const uint64_t *p) { return ((u128)p[1] << 64) | p[0]; }

static inline void store128(uint64_t *p, u128 v) {
    p[0] = (uint64_t)v;
    p[1] = (uint64_t)(v >> 64);
}

void ring128_add(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) store128(out + 2 * i, load128(a + 2 * i) + load128(b + 2 * i));
}

void ring128_sub(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) store128(out + 2 * i, load128(a + 2 * i) - load128(b + 2 * i));
}

void ring128_mul(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) store128(out + 2 * i, load128(a + 2 * i) * load128(b + 2 * i));
}

void ring128_matmul(const uint64_t *a, const uint64_t *b, uint64_t *out,
                    size_t m, size_t k, size_t p) {
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < p; j++) {
            u128 acc = 0;
            for (size_t t = 0; t < k; t++)
                acc += load128(a + 2 * (i * k + t)) * load128(b + 2 * (t * p + j));
            store128(out + 2 * (i * p + j), acc);
        }
    }
}

void ring128_sar(const uint64_t *a, uint64_t *out, size_t n, unsigned s) {
    for (size_t i = 0; i < n; i++) store128(out + 2 * i, (u128)((s128)load128(a + 2 * i) >> s));
}

void ring128_shr(const uint64_t *a, uint64_t *out, size_t n, unsigned s) {
    for (size_t i = 0; i < n; i++) store128(out + 2 * i, load128(a + 2 * i) >> s);
}

void ring128_from_double(const double *x, uint64_t *out, size_t n, unsigned f) {
    double scale = ldexp(1.0, (int)f);
    for (size_t i = 0; i < n; i++) store128(out + 2 * i, (u128)(s128)round(x[i] * scale));
}

void ring128_to_double(const uint64_t *a, double *out, size_t n, unsigned f) {
    double scale = ldexp(1.0, -(int)f);
    for (size_t i = 0; i < n; i++) out[i] = (double)(s128)load128(a + 2 * i) * scale;
}
