/* PIR kernels: LWE dot products mod 2^32 (SimplePIR server answer, hint and
 * query generation) and two-choice cuckoo placement. See meshmpc/pir.h.
 *
 * Why this shape: every product the protocol needs is out[i,j] = <L_i, R_j>
 * over rows of two row-major matrices, so one cache-blocked kernel serves the
 * server (L = database digits, uint8), the hint (R = rows of A^T) and the
 * client (L = A or the hint, uint32). A 4x4 register tile reuses each loaded
 * L and R vector four times; K is blocked so the R panel stays in L2.
 */
#include "meshmpc/pir.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KB 2048 /* k-block: 64 R rows x 2048 x 4 B = 512 KiB panel */
#define JB 64

#define TGT512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define TGT256 __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline))

int mm_pir_best_path(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return MM_PIR_PATH_AVX512;
    if (__builtin_cpu_supports("avx2")) return MM_PIR_PATH_AVX2;
    return MM_PIR_PATH_PORTABLE;
}

/* ---------- micro-kernels: acc[a][b] = <L_a[0:kl], R_b[0:kl]> ---------- */

#define LOAD512_U8(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p)))
#define MLOAD512_U8(m, p) _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8((m), (p)))
#define LOAD512_U32(p) _mm512_loadu_si512((const void *)(p))
#define MLOAD512_U32(m, p) _mm512_maskz_loadu_epi32((m), (p))

#define MICRO512(NAME, LT, LOADL, MLOADL)                                                   \
    INLINE TGT512 void NAME(const LT *L, size_t ldl, const uint32_t *R, size_t ldr,         \
                            size_t kl, uint32_t acc_out[4][4], const int nr, const int nc) { \
        __m512i acc[4][4], l[4], r[4];                                                      \
        for (int a = 0; a < nr; a++)                                                        \
            for (int b = 0; b < nc; b++) acc[a][b] = _mm512_setzero_si512();                \
        size_t t = 0;                                                                       \
        for (; t + 16 <= kl; t += 16) {                                                     \
            for (int a = 0; a < nr; a++) l[a] = LOADL(L + a * ldl + t);                     \
            for (int b = 0; b < nc; b++) r[b] = _mm512_loadu_si512(R + b * ldr + t);        \
            for (int a = 0; a < nr; a++)                                                    \
                for (int b = 0; b < nc; b++)                                                \
                    acc[a][b] = _mm512_add_epi32(acc[a][b], _mm512_mullo_epi32(l[a], r[b])); \
        }                                                                                   \
        if (t < kl) {                                                                       \
            __mmask16 m = (__mmask16)((1u << (kl - t)) - 1u);                               \
            for (int a = 0; a < nr; a++) l[a] = MLOADL(m, L + a * ldl + t);                 \
            for (int b = 0; b < nc; b++) r[b] = _mm512_maskz_loadu_epi32(m, R + b * ldr + t); \
            for (int a = 0; a < nr; a++)                                                    \
                for (int b = 0; b < nc; b++)                                                \
                    acc[a][b] = _mm512_add_epi32(acc[a][b], _mm512_mullo_epi32(l[a], r[b])); \
        }                                                                                   \
        for (int a = 0; a < nr; a++)                                                        \
            for (int b = 0; b < nc; b++)                                                    \
                acc_out[a][b] = (uint32_t)_mm512_reduce_add_epi32(acc[a][b]);               \
    }

MICRO512(micro512_u8, uint8_t, LOAD512_U8, MLOAD512_U8)
MICRO512(micro512_u32, uint32_t, LOAD512_U32, MLOAD512_U32)

INLINE TGT256 uint32_t hsum256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(s);
}

#define LOAD256_U8(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p)))
#define LOAD256_U32(p) _mm256_loadu_si256((const __m256i *)(p))

#define MICRO256(NAME, LT, LOADL)                                                           \
    INLINE TGT256 void NAME(const LT *L, size_t ldl, const uint32_t *R, size_t ldr,         \
                            size_t kl, uint32_t acc_out[4][4], const int nr, const int nc) { \
        __m256i acc[4][4], l[4], r[4];                                                      \
        for (int a = 0; a < nr; a++)                                                        \
            for (int b = 0; b < nc; b++) acc[a][b] = _mm256_setzero_si256();                \
        size_t t = 0;                                                                       \
        for (; t + 8 <= kl; t += 8) {                                                       \
            for (int a = 0; a < nr; a++) l[a] = LOADL(L + a * ldl + t);                     \
            for (int b = 0; b < nc; b++)                                                    \
                r[b] = _mm256_loadu_si256((const __m256i *)(R + b * ldr + t));              \
            for (int a = 0; a < nr; a++)                                                    \
                for (int b = 0; b < nc; b++)                                                \
                    acc[a][b] = _mm256_add_epi32(acc[a][b], _mm256_mullo_epi32(l[a], r[b])); \
        }                                                                                   \
        for (int a = 0; a < nr; a++)                                                        \
            for (int b = 0; b < nc; b++) {                                                  \
                uint32_t s = hsum256(acc[a][b]);                                            \
                for (size_t u = t; u < kl; u++)                                             \
                    s += (uint32_t)L[a * ldl + u] * R[b * ldr + u];                         \
                acc_out[a][b] = s;                                                          \
            }                                                                               \
    }

MICRO256(micro256_u8, uint8_t, LOAD256_U8)
MICRO256(micro256_u32, uint32_t, LOAD256_U32)

#define MICRO_PORTABLE(NAME, LT)                                                            \
    INLINE void NAME(const LT *L, size_t ldl, const uint32_t *R, size_t ldr, size_t kl,     \
                     uint32_t acc_out[4][4], const int nr, const int nc) {                  \
        for (int a = 0; a < nr; a++)                                                        \
            for (int b = 0; b < nc; b++) {                                                  \
                uint32_t s = 0;                                                             \
                const LT *la = L + a * ldl;                                                 \
                const uint32_t *rb = R + b * ldr;                                           \
                for (size_t u = 0; u < kl; u++) s += (uint32_t)la[u] * rb[u];               \
                acc_out[a][b] = s;                                                          \
            }                                                                               \
    }

MICRO_PORTABLE(micro_port_u8, uint8_t)
MICRO_PORTABLE(micro_port_u32, uint32_t)

/* Dispatch a tile size known only at run time to a micro-kernel specialised
 * for it (constant nr, nc let the compiler keep the tile in registers). */
#define CASE(MICRO, A, B) \
    case (A)*8 + (B): MICRO(L, ldl, R, ldr, kl, acc, A, B); break;
#define DISPATCH(NAME, MICRO, LT, TGT)                                                      \
    static TGT void NAME(const LT *L, size_t ldl, const uint32_t *R, size_t ldr, size_t kl, \
                         uint32_t acc[4][4], int nr, int nc) {                              \
        switch (nr * 8 + nc) {                                                              \
            CASE(MICRO, 1, 1) CASE(MICRO, 1, 2) CASE(MICRO, 1, 3) CASE(MICRO, 1, 4)         \
            CASE(MICRO, 2, 1) CASE(MICRO, 2, 2) CASE(MICRO, 2, 3) CASE(MICRO, 2, 4)         \
            CASE(MICRO, 3, 1) CASE(MICRO, 3, 2) CASE(MICRO, 3, 3) CASE(MICRO, 3, 4)         \
            CASE(MICRO, 4, 1) CASE(MICRO, 4, 2) CASE(MICRO, 4, 3) CASE(MICRO, 4, 4)         \
            default: break;                                                                 \
        }                                                                                   \
    }

#define NOTGT
DISPATCH(tile512_u8, micro512_u8, uint8_t, TGT512)
DISPATCH(tile512_u32, micro512_u32, uint32_t, TGT512)
DISPATCH(tile256_u8, micro256_u8, uint8_t, TGT256)
DISPATCH(tile256_u32, micro256_u32, uint32_t, TGT256)
DISPATCH(tileport_u8, micro_port_u8, uint8_t, NOTGT)
DISPATCH(tileport_u32, micro_port_u32, uint32_t, NOTGT)


/* ---------- blocked driver and threads ---------- */

typedef struct {
    const void *L;
    int l_is_u8;
    size_t r0, r1, ldl;
    const uint32_t *R;
    size_t cols, ldr, k;
    uint32_t *out;
    size_t ldo_r, ldo_c;
    int path;
} dot_job;

static void run_tile(const dot_job *J, size_t i, size_t j, size_t kb, size_t kl, int nr, int nc,
                     uint32_t acc[4][4]) {
    const uint32_t *R = J->R + j * J->ldr + kb;
    if (J->l_is_u8) {
        const uint8_t *L = (const uint8_t *)J->L + i * J->ldl + kb;
        if (J->path == MM_PIR_PATH_AVX512) tile512_u8(L, J->ldl, R, J->ldr, kl, acc, nr, nc);
        else if (J->path == MM_PIR_PATH_AVX2) tile256_u8(L, J->ldl, R, J->ldr, kl, acc, nr, nc);
        else tileport_u8(L, J->ldl, R, J->ldr, kl, acc, nr, nc);
    } else {
        const uint32_t *L = (const uint32_t *)J->L + i * J->ldl + kb;
        if (J->path == MM_PIR_PATH_AVX512) tile512_u32(L, J->ldl, R, J->ldr, kl, acc, nr, nc);
        else if (J->path == MM_PIR_PATH_AVX2) tile256_u32(L, J->ldl, R, J->ldr, kl, acc, nr, nc);
        else tileport_u32(L, J->ldl, R, J->ldr, kl, acc, nr, nc);
    }
}

/* Rows [J->r0, J->r1) of the product, k-blocked and tiled. AVX2 has 16 vector
 * registers: a 4x4 tile (16 accumulators) spills, so wide products (the hint,
 * R of 1024 rows) use 2x4 tiles there (~8 % faster measured); narrow ones (a
 * query's 2 R rows) keep 4 L rows per tile, which reuse each R load 4 times. */
static void dot_block(const dot_job *J) {
    uint32_t acc[4][4];
    const size_t tr = J->path == MM_PIR_PATH_AVX2 && J->cols >= 4 ? 2 : 4;
    for (size_t kb = 0; kb < J->k || kb == 0; kb += KB) {
        size_t kl = J->k - kb < KB ? J->k - kb : KB;
        for (size_t jb = 0; jb < J->cols; jb += JB) {
            size_t je = jb + JB < J->cols ? jb + JB : J->cols;
            for (size_t i = J->r0; i < J->r1; i += tr) {
                int nr = (int)(J->r1 - i < tr ? J->r1 - i : tr);
                for (size_t j = jb; j < je; j += 4) {
                    int nc = (int)(je - j < 4 ? je - j : 4);
                    run_tile(J, i, j, kb, kl, nr, nc, acc);
                    for (int a = 0; a < nr; a++)
                        for (int b = 0; b < nc; b++) {
                            uint32_t *o = J->out + (i + a) * J->ldo_r + (j + b) * J->ldo_c;
                            *o = kb == 0 ? acc[a][b] : *o + acc[a][b];
                        }
                }
            }
        }
        if (J->k == 0) break;
    }
}

/* Threads pull row chunks from a shared counter, so a thread slowed down by
 * other load on its core does not hold the whole product back. */
typedef struct {
    dot_job job; /* r0, r1 unused */
    size_t rows, chunk, next;
} dot_queue;

static void *dot_worker(void *arg) {
    dot_queue *Q = (dot_queue *)arg;
    for (;;) {
        size_t r0 = __atomic_fetch_add(&Q->next, Q->chunk, __ATOMIC_RELAXED);
        if (r0 >= Q->rows) break;
        dot_job J = Q->job;
        J.r0 = r0;
        J.r1 = r0 + Q->chunk < Q->rows ? r0 + Q->chunk : Q->rows;
        dot_block(&J);
    }
    return NULL;
}

static int path_ok(int path) {
    int best = mm_pir_best_path();
    if (path == MM_PIR_PATH_AUTO) return best;
    if (path < 0 || path > best) return -1;
    return path;
}

static int dot_run(const void *L, int l_is_u8, size_t rows, size_t ldl, const uint32_t *R,
                   size_t cols, size_t ldr, size_t k, uint32_t *out, size_t ldo_r, size_t ldo_c,
                   int nthreads, int path) {
    int p = path_ok(path);
    if (p < 0) return -1;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    if ((size_t)nthreads * 64 > rows) nthreads = 1; /* tiny jobs: threads cost more */
    /* ~8 chunks per thread (multiples of 4 rows, at least 64): enough to
     * balance, few enough that R panels are not re-read too often. */
    size_t chunk = (rows / ((size_t)nthreads * 8) + 3) & ~(size_t)3;
    if (chunk < 64) chunk = 64;
    dot_queue Q = {{L, l_is_u8, 0, 0, ldl, R, cols, ldr, k, out, ldo_r, ldo_c, p}, rows, chunk, 0};
    pthread_t tids[64];
    int spawned = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tids[spawned], NULL, dot_worker, &Q) != 0) break;
        spawned++;
    }
    dot_worker(&Q);
    for (int t = 0; t < spawned; t++) pthread_join(tids[t], NULL);
    return p;
}

int mm_pir_dot_u8(const uint8_t *L, size_t rows, size_t ldl, const uint32_t *R, size_t cols,
                  size_t ldr, size_t k, uint32_t *out, size_t ldo_r, size_t ldo_c, int nthreads,
                  int path) {
    return dot_run(L, 1, rows, ldl, R, cols, ldr, k, out, ldo_r, ldo_c, nthreads, path);
}

int mm_pir_dot_u32(const uint32_t *L, size_t rows, size_t ldl, const uint32_t *R, size_t cols,
                   size_t ldr, size_t k, uint32_t *out, size_t ldo_r, size_t ldo_c, int nthreads,
                   int path) {
    return dot_run(L, 0, rows, ldl, R, cols, ldr, k, out, ldo_r, ldo_c, nthreads, path);
}

/* ---------- cuckoo placement ---------- */

static int try_put(int64_t *table, uint32_t *fill, uint32_t bin, uint32_t cap, int64_t item) {
    if (fill[bin] >= cap) return 0;
    table[(size_t)bin * cap + fill[bin]++] = item;
    return 1;
}

int64_t mm_pir_cuckoo_place(const uint32_t *c1, const uint32_t *c2, size_t n, size_t nbins,
                            uint32_t cap, size_t max_kicks, int64_t *table) {
    uint32_t *fill = calloc(nbins ? nbins : 1, sizeof(uint32_t));
    if (!fill) return 0;
    for (size_t s = 0; s < nbins * cap; s++) table[s] = -1;
    uint64_t walk = 0x9e3779b97f4a7c15ull; /* deterministic victim choice: layout is public */
    for (size_t x = 0; x < n; x++) {
        int64_t cur = (int64_t)x;
        uint32_t bin = c1[x];
        if (try_put(table, fill, c1[x], cap, cur) || try_put(table, fill, c2[x], cap, cur))
            continue;
        size_t kicks = 0;
        for (;;) {
            walk = walk * 6364136223846793005ull + 1442695040888963407ull;
            size_t slot = (size_t)bin * cap + (size_t)((walk >> 33) % cap);
            int64_t victim = table[slot];
            table[slot] = cur;
            cur = victim;
            bin = c1[cur] == bin ? c2[cur] : c1[cur];
            if (try_put(table, fill, bin, cap, cur)) break;
            if (++kicks > max_kicks) {
                free(fill);
                return cur;
            }
        }
    }
    free(fill);
    return -1;
}

/* ---------- discrete Gaussian error ----------
 * out[i] += v(idx) where idx is the number of cdf entries <= u[i] and
 * v(idx) = idx - center. Fast path: lut[u >> 48] holds the answer when no cdf
 * boundary falls inside that 2^48-wide interval (all but ~0.3% of draws);
 * otherwise a branch-free binary search over the 256-entry table (padded with
 * UINT64_MAX). Both tables are public; they fit in L2. */
void mm_pir_gauss_add(const uint64_t *u, size_t n, const uint64_t *cdf256, const int8_t *lut,
                      int32_t center, uint32_t *out) {
    for (size_t i = 0; i < n; i++) {
        uint64_t x = u[i];
        int32_t v = lut[x >> 48];
        if (v == MM_PIR_GAUSS_AMBIGUOUS) {
            size_t idx = 0;
            for (size_t half = 128; half > 0; half >>= 1)
                idx += (size_t)(x >= cdf256[idx + half - 1]) * half;
            v = (int32_t)idx - center;
        }
        out[i] += (uint32_t)v;
    }
}

/* ---------- incremental hint ----------
 * H[rows[e], :] += delta[e] * A[cols[e], :] mod 2^32 for every changed entry
 * e of the database (H = D A, A is m x n): a rebuild that rewrites a few slots
 * updates the hint in O(changed entries * n) instead of recomputing D A. */
static TGT256 void axpy_avx2(uint32_t *h, const uint32_t *a, uint32_t d, size_t n) {
    __m256i dv = _mm256_set1_epi32((int)d);
    size_t t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256i hv = _mm256_loadu_si256((const __m256i *)(h + t));
        __m256i av = _mm256_loadu_si256((const __m256i *)(a + t));
        _mm256_storeu_si256((__m256i *)(h + t), _mm256_add_epi32(hv, _mm256_mullo_epi32(dv, av)));
    }
    for (; t < n; t++) h[t] += d * a[t];
}

static void axpy_port(uint32_t *h, const uint32_t *a, uint32_t d, size_t n) {
    for (size_t t = 0; t < n; t++) h[t] += d * a[t];
}

typedef struct {
    uint32_t *H;
    size_t ldh, lda, n, count;
    const uint32_t *A;
    const int64_t *rows, *cols;
    const int32_t *delta;
    int nthreads, next, avx2;
} hint_job;

/* Thread t owns the hint rows r with (r / 16) % nthreads == t, so no two threads
 * write one row; each scans the whole (small) entry list. */
static void *hint_worker(void *arg) {
    hint_job *J = (hint_job *)arg;
    int me = __atomic_fetch_add(&J->next, 1, __ATOMIC_RELAXED);
    for (size_t e = 0; e < J->count; e++) {
        if ((int)(((size_t)J->rows[e] >> 4) % (size_t)J->nthreads) != me) continue;
        uint32_t *h = J->H + (size_t)J->rows[e] * J->ldh;
        const uint32_t *a = J->A + (size_t)J->cols[e] * J->lda;
        if (J->avx2) axpy_avx2(h, a, (uint32_t)J->delta[e], J->n);
        else axpy_port(h, a, (uint32_t)J->delta[e], J->n);
    }
    return NULL;
}

void mm_pir_hint_update(uint32_t *H, size_t ldh, const uint32_t *A, size_t lda, size_t n,
                        const int64_t *rows, const int64_t *cols, const int32_t *delta,
                        size_t count, int nthreads) {
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    if (count < 4096) nthreads = 1;
    hint_job J = {H, ldh, lda, n, count, A, rows, cols, delta, nthreads, 0,
                  mm_pir_best_path() >= MM_PIR_PATH_AVX2};
    pthread_t tids[64];
    int spawned = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tids[spawned], NULL, hint_worker, &J) != 0) break;
        spawned++;
    }
    hint_worker(&J);
    for (int t = spawned + 1; t < nthreads; t++) { /* shares of threads that did not start */
        hint_job K = J;
        K.next = t;
        hint_worker(&K);
    }
    for (int t = 0; t < spawned; t++) pthread_join(tids[t], NULL);
}

/* ---------- slot writing and record bodies ---------- */

typedef struct {
    uint8_t *db;
    size_t buckets, cols, slots, size, next;
    const int64_t *table;
    const uint8_t *content;
} slot_job;

static void write_band(const slot_job *J, size_t b, size_t j) {
    size_t m = J->cols, size = J->size;
    uint8_t *band = J->db + (b * J->slots * size + j * size) * m;
    const int64_t *bins = J->table + b * m * J->slots + j;
    for (size_t c = 0; c < m; c++) {
        int64_t item = bins[c * J->slots];
        if (item < 0) continue;
        const uint8_t *src = J->content + (size_t)item * size;
        for (size_t t = 0; t < size; t++) band[t * m + c] = src[t];
    }
}

static void *slot_worker(void *arg) {
    slot_job *J = (slot_job *)arg;
    size_t bands = J->buckets * J->slots;
    for (;;) {
        size_t k = __atomic_fetch_add(&J->next, 1, __ATOMIC_RELAXED);
        if (k >= bands) break;
        write_band(J, k / J->slots, k % J->slots);
    }
    return NULL;
}

void mm_pir_write_slots(uint8_t *db, size_t buckets, size_t cols, size_t slots, size_t size,
                        const int64_t *table, const uint8_t *content, int nthreads) {
    slot_job J = {db, buckets, cols, slots, size, 0, table, content};
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    pthread_t tids[64];
    int spawned = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tids[spawned], NULL, slot_worker, &J) != 0) break;
        spawned++;
    }
    slot_worker(&J);
    for (int t = 0; t < spawned; t++) pthread_join(tids[t], NULL);
}

int64_t mm_pir_pack_bodies(const uint8_t *data, const int64_t *offsets, size_t n,
                           size_t record_bytes, uint8_t *out) {
    size_t width = 2 + record_bytes;
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)(offsets[i + 1] - offsets[i]);
        if (len > record_bytes || len > 0xffff) return (int64_t)i;
        uint8_t *row = out + i * width;
        row[0] = (uint8_t)len;
        row[1] = (uint8_t)(len >> 8);
        if (len) memcpy(row + 2, data + offsets[i], len);
        memset(row + 2 + len, 0, record_bytes - len);
    }
    return -1;
}
