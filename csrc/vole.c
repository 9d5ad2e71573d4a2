/* Random band OKVS and expand-accumulate compression; see meshmpc/vole.h. */
#include "meshmpc/vole.h"

#include <pthread.h>
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

#define NO_PIVOT UINT64_MAX

/* Forward elimination: every row gets a pivot column no earlier row keeps. */
static int eliminate(size_t n, const uint64_t *rs, u128 *rb, u128 *rv, uint64_t *pivot) {
    for (size_t i = 0; i < n; i++) {
        if (rb[i] == 0) {
            /* a dependent row: consistent (0 = 0, e.g. a repeated key with its value)
             * keeps no pivot; inconsistent means no solution for these hashes */
            if (rv[i] != 0) return -1;
            pivot[i] = NO_PIVOT;
            continue;
        }
        uint64_t col = rs[i] + (uint64_t)ctz128(rb[i]);
        pivot[i] = col;
        /* Branch-free: whether row j has the pivot bit is a coin flip, and a
         * mispredicted branch per row cost more than the masked XORs. */
        u128 band_i = rb[i], value_i = rv[i];
        uint64_t start_i = rs[i];
        for (size_t j = i + 1; j < n && rs[j] <= col; j++) {
            u128 hit = -(u128)((rb[j] >> (col - rs[j])) & 1);
            rb[j] ^= (band_i >> (rs[j] - start_i)) & hit;
            rv[j] ^= value_i & hit;
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
        if (pivot[i] == NO_PIVOT) continue;
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

/* Run fn over [0, n) split into nthreads contiguous ranges (at least `grain`
 * items each); thread 0 is the caller. A thread that cannot be created runs its
 * range on the caller, so the result never depends on the thread count. */
typedef void (*range_fn)(void *arg, size_t lo, size_t hi);
typedef struct {
    range_fn fn;
    void *arg;
    size_t lo, hi;
} span;

#define MAX_THREADS 16

static void *span_main(void *p) {
    span *s = (span *)p;
    s->fn(s->arg, s->lo, s->hi);
    return NULL;
}

static void parallel(range_fn fn, void *arg, size_t n, int nthreads, size_t grain) {
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (grain && n / grain < (size_t)nthreads) nthreads = (int)(n / grain);
    if (nthreads < 1) nthreads = 1;
    span spans[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < nthreads; t++) {
        spans[t] = (span){fn, arg, n * (size_t)t / (size_t)nthreads,
                          n * (size_t)(t + 1) / (size_t)nthreads};
        if (t > 0) started[t] = pthread_create(&tids[t], NULL, span_main, &spans[t]) == 0;
    }
    span_main(&spans[0]);
    for (int t = 1; t < nthreads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            span_main(&spans[t]);
    }
}

typedef struct {
    const uint64_t *start;
    const uint8_t *band, *p;
    uint8_t *out;
} decode_job;

#define DECODE_AHEAD 8

static void decode_range(void *arg, size_t lo, size_t hi) {
    const decode_job *d = (const decode_job *)arg;
    for (size_t i = lo; i < hi; i++) {
        uint64_t lo_bits, hi_bits;
        memcpy(&lo_bits, d->band + 16 * i, 8);
        memcpy(&hi_bits, d->band + 16 * i + 8, 8);
        const uint8_t *base = d->p + 16 * d->start[i];
        if (i + DECODE_AHEAD < hi) {
            /* the window of a later key: its first and middle cache lines */
            const uint8_t *next = d->p + 16 * d->start[i + DECODE_AHEAD];
            __builtin_prefetch(next);
            __builtin_prefetch(next + 16 * 64);
        }
        store128(d->out + 16 * i, decode_one(base, lo_bits) ^ decode_one(base + 16 * 64, hi_bits));
    }
}

typedef struct {
    const uint64_t *start;
    const uint8_t *band, *p;
    uint8_t *out;
    const uint32_t *order;
} sorted_decode_job;

static void sorted_decode_range(void *arg, size_t lo, size_t hi) {
    const sorted_decode_job *d = (const sorted_decode_job *)arg;
    for (size_t k = lo; k < hi; k++) {
        size_t i = d->order[k];
        if (k + DECODE_AHEAD < hi) {
            size_t ahead = d->order[k + DECODE_AHEAD];
            __builtin_prefetch(d->start + ahead);
            __builtin_prefetch(d->band + 16 * ahead);
            __builtin_prefetch(d->out + 16 * ahead, 1);
        }
        uint64_t lo_bits, hi_bits;
        memcpy(&lo_bits, d->band + 16 * i, 8);
        memcpy(&hi_bits, d->band + 16 * i + 8, 8);
        const uint8_t *base = d->p + 16 * d->start[i];
        store128(d->out + 16 * i, decode_one(base, lo_bits) ^ decode_one(base + 16 * 64, hi_bits));
    }
}

/* Keys in order of start >> SORT_SHIFT (a counting sort): consecutive keys then read
 * overlapping windows of the table, which stay in cache, instead of 32 cache lines
 * at a random place per key (the table is larger than the cache from ~2^17 keys). */
#define SORT_SHIFT 8
#define SORT_MIN_KEYS ((size_t)1 << 16)

static uint32_t *decode_order(const uint64_t *start, size_t n) {
    uint64_t top = 0;
    for (size_t i = 0; i < n; i++) top = start[i] > top ? start[i] : top;
    size_t groups = (size_t)(top >> SORT_SHIFT) + 2;
    size_t *count = calloc(groups, sizeof(size_t));
    uint32_t *order = malloc(n * sizeof(uint32_t));
    if (!count || !order) {
        free(count);
        free(order);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) count[(start[i] >> SORT_SHIFT) + 1]++;
    for (size_t g = 1; g < groups; g++) count[g] += count[g - 1];
    for (size_t i = 0; i < n; i++) order[count[start[i] >> SORT_SHIFT]++] = (uint32_t)i;
    free(count);
    return order;
}

void mm_okvs_decode(const uint64_t *start, const uint8_t *band, const uint8_t *p, size_t n,
                    uint8_t *out, int nthreads) {
    uint32_t *order = NULL;
    if (n >= SORT_MIN_KEYS && n <= UINT32_MAX) order = decode_order(start, n);
    if (order) {
        sorted_decode_job d = {start, band, p, out, order};
        parallel(sorted_decode_range, &d, n, nthreads, 1 << 14);
        free(order);
        return;
    }
    decode_job d = {start, band, p, out};
    parallel(decode_range, &d, n, nthreads, 1 << 14);
}

#define EA_CHUNK 1024
#define EA_AHEAD 4

/* buf[i] ^= buf[0] ^ ... ^ buf[i-1] over rows of `width` blocks, in two passes
 * over per-thread ranges (range sums, then each range from its offset). */
typedef struct {
    uint8_t *buf;
    size_t width, ranges;
    size_t big_n;
    u128 *carry; /* ranges x width: XOR of every row before the range */
} prefix_job;

static void prefix_sum_range(void *arg, size_t r0, size_t r1) {
    prefix_job *p = (prefix_job *)arg;
    for (size_t r = r0; r < r1; r++) {
        size_t lo = p->big_n * r / p->ranges, hi = p->big_n * (r + 1) / p->ranges;
        u128 acc[2] = {0, 0};
        for (size_t i = lo; i < hi; i++)
            for (size_t c = 0; c < p->width; c++) acc[c] ^= load128(p->buf + 16 * (p->width * i + c));
        for (size_t c = 0; c < p->width; c++) p->carry[2 * r + c] = acc[c];
    }
}

static void prefix_apply_range(void *arg, size_t r0, size_t r1) {
    prefix_job *p = (prefix_job *)arg;
    for (size_t r = r0; r < r1; r++) {
        size_t lo = p->big_n * r / p->ranges, hi = p->big_n * (r + 1) / p->ranges;
        u128 acc[2] = {p->carry[2 * r], p->carry[2 * r + 1]};
        for (size_t i = lo; i < hi; i++) {
            for (size_t c = 0; c < p->width; c++) {
                uint8_t *at = p->buf + 16 * (p->width * i + c);
                acc[c] ^= load128(at);
                store128(at, acc[c]);
            }
        }
    }
}

static void prefix_xor(uint8_t *buf, size_t big_n, size_t width, int nthreads) {
    u128 carry[2 * MAX_THREADS];
    size_t ranges = nthreads < 1 ? 1 : nthreads > MAX_THREADS ? MAX_THREADS : (size_t)nthreads;
    if (big_n < ((size_t)1 << 16)) ranges = 1;
    prefix_job p = {buf, width, ranges, big_n, carry};
    parallel(prefix_sum_range, &p, ranges, (int)ranges, 1);
    u128 acc[2] = {0, 0};
    for (size_t r = 0; r < ranges; r++) {
        for (size_t c = 0; c < width; c++) {
            u128 sum = carry[2 * r + c];
            carry[2 * r + c] = acc[c];
            acc[c] ^= sum;
        }
        if (width == 1) carry[2 * r + 1] = 0;
    }
    parallel(prefix_apply_range, &p, ranges, (int)ranges, 1);
}

typedef struct {
    const mm_aes_key *code_key;
    const uint8_t *buf;
    size_t big_n, width;
    uint8_t *out;
    int weight, path;
    /* regular noise (mm_ea_compress_regular): prefix[r] = beta_0 ^ ... ^ beta_{r-1} */
    const int64_t *alpha;
    const u128 *beta, *prefix;
    int depth;
} ea_job;

static inline size_t ea_pos(uint32_t w, size_t big_n) {
    return (size_t)(((uint64_t)w * big_n) >> 32);
}

static void ea_range(void *arg, size_t lo, size_t hi) {
    const ea_job *e = (const ea_job *)arg;
    uint32_t words[8 * EA_CHUNK];
    size_t row_bytes = 16 * e->width;
    for (size_t j0 = lo; j0 < hi; j0 += EA_CHUNK) {
        size_t cnt = hi - j0 < EA_CHUNK ? hi - j0 : EA_CHUNK;
        mm_aes128_ctr(e->code_key, 2 * (uint64_t)j0, (uint8_t *)words, 2 * cnt, e->path);
        for (size_t j = 0; j < cnt; j++) {
            const uint32_t *w = words + 8 * j;
            if (j + EA_AHEAD < cnt)
                for (int r = 0; r < e->weight; r++)
                    __builtin_prefetch(e->buf + row_bytes * ea_pos(w[8 * EA_AHEAD + r], e->big_n));
            u128 v[2] = {0, 0};
            for (int r = 0; r < e->weight; r++) {
                const uint8_t *row = e->buf + row_bytes * ea_pos(w[r], e->big_n);
                for (size_t c = 0; c < e->width; c++) v[c] ^= load128(row + 16 * c);
            }
            for (size_t c = 0; c < e->width; c++) store128(e->out + row_bytes * (j0 + j) + 16 * c, v[c]);
        }
    }
}

void mm_ea_compress(const mm_aes_key *code_key, uint8_t *buf, size_t big_n, size_t width,
                    uint8_t *out, size_t n, int weight, int path, int nthreads) {
    prefix_xor(buf, big_n, width, nthreads);
    ea_job e = {code_key, buf, big_n, width, out, weight, path, NULL, NULL, NULL, 0};
    parallel(ea_range, &e, n, nthreads, 1 << 14);
}

static void ea_regular_range(void *arg, size_t lo, size_t hi) {
    const ea_job *e = (const ea_job *)arg;
    uint32_t words[8 * EA_CHUNK];
    uint64_t mask = ((uint64_t)1 << e->depth) - 1;
    for (size_t j0 = lo; j0 < hi; j0 += EA_CHUNK) {
        size_t cnt = hi - j0 < EA_CHUNK ? hi - j0 : EA_CHUNK;
        mm_aes128_ctr(e->code_key, 2 * (uint64_t)j0, (uint8_t *)words, 2 * cnt, e->path);
        for (size_t j = 0; j < cnt; j++) {
            u128 v = 0;
            for (int r = 0; r < e->weight; r++) {
                uint64_t pos = ea_pos(words[8 * j + r], e->big_n);
                size_t region = (size_t)(pos >> e->depth);
                u128 in = -(u128)((int64_t)(pos & mask) >= e->alpha[region]);
                v ^= e->prefix[region] ^ (e->beta[region] & in);
            }
            store128(e->out + 16 * (j0 + j), v);
        }
    }
}

int mm_ea_compress_regular(const mm_aes_key *code_key, const int64_t *alpha, const uint8_t *beta,
                           size_t t, int depth, uint8_t *out, size_t n, int weight, int path,
                           int nthreads) {
    u128 *b = malloc((t ? t : 1) * sizeof(u128));
    u128 *prefix = malloc((t ? t : 1) * sizeof(u128));
    if (!b || !prefix) {
        free(b);
        free(prefix);
        return -2;
    }
    u128 acc = 0;
    for (size_t r = 0; r < t; r++) {
        b[r] = load128(beta + 16 * r);
        prefix[r] = acc;
        acc ^= b[r];
    }
    ea_job e = {code_key, NULL, t << depth, 1, out, weight, path, alpha, b, prefix, depth};
    parallel(ea_regular_range, &e, n, nthreads, 1 << 14);
    free(b);
    free(prefix);
    return 0;
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
