/* Random band OKVS and expand-accumulate compression; see meshmpc/vole.h. */
#include "meshmpc/vole.h"

#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

#define HASH_CHUNK 4096

static inline u128 load128(const uint8_t *p) {
    u128 v;
    memcpy(&v, p, 16);
    return v;
}

static inline void store128(uint8_t *p, u128 v) { memcpy(p, &v, 16); }

static inline int ctz128(u128 v) {
    uint64_t lo = (uint64_t)v;
    return lo ? __builtin_ctzll(lo) : 64 + __builtin_ctzll((uint64_t)(v >> 64));
}

void mm_okvs_hash(const mm_aes_key *k_start, const mm_aes_key *k_band, const uint8_t *keys,
                  size_t n, uint64_t m, uint64_t *start, uint8_t *band, int path) {
    uint8_t tmp[16 * HASH_CHUNK];
    uint64_t span = m - MM_OKVS_BAND + 1;
    for (size_t i = 0; i < n; i += HASH_CHUNK) {
        size_t c = n - i < HASH_CHUNK ? n - i : HASH_CHUNK;
        mm_aes128_ecb(k_band, keys + 16 * i, band + 16 * i, c, path);
        mm_aes128_ecb(k_start, keys + 16 * i, tmp, c, path);
        for (size_t j = 0; j < c; j++) {
            uint64_t w;
            memcpy(&w, tmp + 16 * j, 8);
            start[i + j] = (uint64_t)(((u128)w * span) >> 64);
        }
    }
}

/* Rows sorted by start (counting sort), as 128-bit bands and values. */
static int sorted_rows(const uint64_t *start, const uint8_t *band, const uint8_t *values,
                       size_t n, uint64_t m, uint64_t *rs, u128 *rb, u128 *rv) {
    size_t *count = calloc(m + 1, sizeof(size_t));
    if (!count) return -2;
    for (size_t i = 0; i < n; i++) count[start[i] + 1]++;
    for (uint64_t c = 0; c < m; c++) count[c + 1] += count[c];
    for (size_t i = 0; i < n; i++) {
        size_t at = count[start[i]]++;
        rs[at] = start[i];
        rb[at] = load128(band + 16 * i);
        rv[at] = load128(values + 16 * i);
    }
    free(count);
    return 0;
}

/* Forward elimination: every row gets a pivot column no earlier row keeps. */
static int eliminate(size_t n, const uint64_t *rs, u128 *rb, u128 *rv, uint64_t *pivot) {
    for (size_t i = 0; i < n; i++) {
        if (rb[i] == 0) return -1;
        uint64_t col = rs[i] + (uint64_t)ctz128(rb[i]);
        pivot[i] = col;
        for (size_t j = i + 1; j < n && rs[j] <= col; j++) {
            if ((rb[j] >> (col - rs[j])) & 1) {
                rb[j] ^= rb[i] >> (rs[j] - rs[i]);
                rv[j] ^= rv[i];
            }
        }
    }
    return 0;
}

int mm_okvs_encode(const uint64_t *start, const uint8_t *band, const uint8_t *values, size_t n,
                   uint64_t m, uint8_t *p) {
    memset(p, 0, 16 * (size_t)m);
    if (n == 0) return 0;
    uint64_t *rs = malloc(n * sizeof(uint64_t));
    uint64_t *pivot = malloc(n * sizeof(uint64_t));
    u128 *rb = malloc(n * sizeof(u128));
    u128 *rv = malloc(n * sizeof(u128));
    int rc = (rs && pivot && rb && rv) ? sorted_rows(start, band, values, n, m, rs, rb, rv) : -2;
    if (rc == 0) rc = eliminate(n, rs, rb, rv, pivot);
    /* Back substitution in reverse: a row's other columns are later pivots or free (zero). */
    for (size_t i = n; rc == 0 && i-- > 0;) {
        u128 val = rv[i];
        u128 bits = rb[i] & (rb[i] - 1); /* drop the pivot, the lowest set bit */
        const uint8_t *base = p + 16 * rs[i];
        while (bits) {
            int k = ctz128(bits);
            val ^= load128(base + 16 * (size_t)k);
            bits &= bits - 1;
        }
        store128(p + 16 * pivot[i], val);
    }
    free(rs);
    free(pivot);
    free(rb);
    free(rv);
    return rc;
}

static inline u128 decode_one(const uint8_t *base, uint64_t bits) {
    u128 acc = 0;
    while (bits) {
        acc ^= load128(base + 16 * (size_t)__builtin_ctzll(bits));
        bits &= bits - 1;
    }
    return acc;
}

void mm_okvs_decode(const uint64_t *start, const uint8_t *band, const uint8_t *p, size_t n,
                    uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        uint64_t lo, hi;
        memcpy(&lo, band + 16 * i, 8);
        memcpy(&hi, band + 16 * i + 8, 8);
        const uint8_t *base = p + 16 * start[i];
        if (i + 4 < n) __builtin_prefetch(p + 16 * start[i + 4]);
        store128(out + 16 * i, decode_one(base, lo) ^ decode_one(base + 16 * 64, hi));
    }
}

#define EA_CHUNK 1024

void mm_ea_compress(const mm_aes_key *code_key, uint8_t *buf, size_t big_n, size_t width,
                    uint8_t *out, size_t n, int weight, int path) {
    u128 acc[2] = {0, 0};
    for (size_t i = 0; i < big_n; i++) {
        for (size_t c = 0; c < width; c++) {
            acc[c] ^= load128(buf + 16 * (width * i + c));
            store128(buf + 16 * (width * i + c), acc[c]);
        }
    }
    uint32_t words[8 * EA_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += EA_CHUNK) {
        size_t cnt = n - j0 < EA_CHUNK ? n - j0 : EA_CHUNK;
        mm_aes128_ctr(code_key, 2 * (uint64_t)j0, (uint8_t *)words, 2 * cnt, path);
        for (size_t j = 0; j < cnt; j++) {
            const uint32_t *w = words + 8 * j;
            u128 v[2] = {0, 0};
            for (int r = 0; r < weight; r++) {
                const uint8_t *row = buf + 16 * width * (size_t)(((uint64_t)w[r] * big_n) >> 32);
                for (size_t c = 0; c < width; c++) v[c] ^= load128(row + 16 * c);
            }
            for (size_t c = 0; c < width; c++) store128(out + 16 * (width * (j0 + j) + c), v[c]);
        }
    }
}

/* Nodes 0..half-1 of buf become nodes 0..2 half-1 of the next level. */
static void ggm_level(const mm_aes_key *fixed, uint8_t *buf, size_t half, uint64_t tw,
                      int path) {
    for (size_t k = half; k-- > 0;) {
        u128 v = load128(buf + 16 * k);
        store128(buf + 32 * k, v);
        store128(buf + 32 * k + 16, v);
    }
    mm_tccr_hash(fixed, tw, buf, buf, 2 * half, path);
}

static void parity_sums(const uint8_t *buf, size_t count, u128 *even, u128 *odd) {
    u128 e = 0, o = 0;
    for (size_t k = 0; k < count; k += 2) {
        e ^= load128(buf + 16 * k);
        o ^= load128(buf + 16 * k + 16);
    }
    *even = e;
    *odd = o;
}

void mm_ggm_expand(const mm_aes_key *fixed, const uint8_t *roots, size_t t, int depth,
                   uint64_t tw0, uint8_t *leaves, uint8_t *sums, int path) {
    size_t width = (size_t)1 << depth;
    for (size_t i = 0; i < t; i++) {
        uint8_t *buf = leaves + 16 * width * i;
        memcpy(buf, roots + 16 * i, 16);
        for (int l = 1; l <= depth; l++) {
            size_t half = (size_t)1 << (l - 1);
            ggm_level(fixed, buf, half, tw0 + ((uint64_t)l << 40) + i * 2 * half, path);
            u128 e, o;
            parity_sums(buf, 2 * half, &e, &o);
            store128(sums + 32 * ((size_t)depth * i + (size_t)(l - 1)), e);
            store128(sums + 32 * ((size_t)depth * i + (size_t)(l - 1)) + 16, o);
        }
    }
}

void mm_ggm_punctured(const mm_aes_key *fixed, const int64_t *alpha, const uint8_t *chosen,
                      size_t t, int depth, uint64_t tw0, uint8_t *leaves, int path) {
    size_t width = (size_t)1 << depth;
    for (size_t i = 0; i < t; i++) {
        uint8_t *buf = leaves + 16 * width * i;
        uint64_t a = (uint64_t)alpha[i];
        memset(buf, 0, 16);
        for (int l = 1; l <= depth; l++) {
            size_t half = (size_t)1 << (l - 1);
            ggm_level(fixed, buf, half, tw0 + ((uint64_t)l << 40) + i * 2 * half, path);
            uint64_t parent = a >> (depth - l + 1), sibling = (a >> (depth - l)) ^ 1;
            memset(buf + 32 * parent, 0, 32);
            u128 e, o;
            parity_sums(buf, 2 * half, &e, &o);
            u128 known = (sibling & 1) ? o : e;
            store128(buf + 16 * sibling,
                     load128(chosen + 16 * ((size_t)depth * i + (size_t)(l - 1))) ^ known);
        }
    }
}
