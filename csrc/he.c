/* Batch GMP kernels for additively homomorphic encryption; see meshmpc/he.h.
 *
 * Rows are independent, so every entry point is a parallel loop over rows (or,
 * for the histogram, over features): threads take chunks of rows from a shared
 * counter and stop at the first error. Inputs are read in place through
 * mpz_roinit_n (no copy); results are written back as zero-padded limbs.
 */
#include "meshmpc/he.h"

#include <gmp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

typedef struct {
    mpz_t t, u; /* per-thread scratch */
} scratch;

typedef int (*row_fn)(const void *job, size_t i, scratch *s);

typedef struct {
    row_fn fn;
    const void *job;
    size_t count, chunk, next;
    int err;
} pool;

static void *pool_worker(void *arg) {
    pool *P = arg;
    scratch s;
    mpz_init(s.t);
    mpz_init(s.u);
    for (;;) {
        if (__atomic_load_n(&P->err, __ATOMIC_RELAXED)) break;
        size_t start = __atomic_fetch_add(&P->next, P->chunk, __ATOMIC_RELAXED);
        if (start >= P->count) break;
        size_t end = start + P->chunk < P->count ? start + P->chunk : P->count;
        for (size_t i = start; i < end; i++) {
            int rc = P->fn(P->job, i, &s);
            if (rc) {
                __atomic_store_n(&P->err, rc, __ATOMIC_RELAXED);
                break;
            }
        }
    }
    mpz_clear(s.t);
    mpz_clear(s.u);
    return NULL;
}

static int run_rows(row_fn fn, const void *job, size_t count, int nthreads) {
    if (count == 0) return MM_HE_OK;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if ((size_t)nthreads > count) nthreads = (int)count;
    size_t chunk = count / ((size_t)nthreads * 16);
    if (chunk < 1) chunk = 1;
    pool P = {fn, job, count, chunk, 0, 0};
    pthread_t tids[MAX_THREADS];
    int spawned = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tids[spawned], NULL, pool_worker, &P) != 0) break;
        spawned++;
    }
    pool_worker(&P);
    for (int t = 0; t < spawned; t++) pthread_join(tids[t], NULL);
    return P.err;
}

static mpz_srcptr view(mpz_t tmp, mm_he_vec v, size_t i) {
    return mpz_roinit_n(tmp, (const mp_limb_t *)(v.p + v.stride * i), (mp_size_t)v.width);
}

static int put(uint64_t *dst, size_t width, mpz_srcptr x) {
    size_t n = mpz_size(x);
    if (n > width) return MM_HE_EWIDTH;
    if (n) memcpy(dst, mpz_limbs_read(x), n * sizeof(uint64_t));
    memset(dst + n, 0, (width - n) * sizeof(uint64_t));
    return MM_HE_OK;
}

/* ---- element-wise operations -------------------------------------------- */

typedef struct {
    mm_he_vec a, b;
    uint64_t *out;
    size_t out_width;
    mpz_t m;   /* read-only view of the modulus */
    mpz_t aux; /* read-only view: p^-1 mod q for crt */
    mpz_t m2;  /* read-only view: q for crt */
} ew_job;

static int mulmod_row(const void *vj, size_t i, scratch *s) {
    const ew_job *J = vj;
    mpz_t va, vb;
    mpz_mul(s->t, view(va, J->a, i), view(vb, J->b, i));
    mpz_tdiv_r(s->t, s->t, J->m);
    return put(J->out + i * J->out_width, J->out_width, s->t);
}

static int powmod_row(const void *vj, size_t i, scratch *s) {
    const ew_job *J = vj;
    mpz_t va, vb;
    mpz_powm(s->t, view(va, J->a, i), view(vb, J->b, i), J->m);
    return put(J->out + i * J->out_width, J->out_width, s->t);
}

static int mod_row(const void *vj, size_t i, scratch *s) {
    const ew_job *J = vj;
    mpz_t va;
    mpz_tdiv_r(s->t, view(va, J->a, i), J->m);
    return put(J->out + i * J->out_width, J->out_width, s->t);
}

static int invert_row(const void *vj, size_t i, scratch *s) {
    const ew_job *J = vj;
    mpz_t va;
    if (!mpz_invert(s->t, view(va, J->a, i), J->m)) return MM_HE_EINVERT;
    return put(J->out + i * J->out_width, J->out_width, s->t);
}

static int lfunc_row(const void *vj, size_t i, scratch *s) {
    const ew_job *J = vj;
    mpz_t va;
    mpz_sub_ui(s->t, view(va, J->a, i), 1);
    mpz_divexact(s->t, s->t, J->m);
    return put(J->out + i * J->out_width, J->out_width, s->t);
}

static int linear_row(const void *vj, size_t i, scratch *s) {
    const ew_job *J = vj;
    mpz_t va;
    mpz_mul(s->t, view(va, J->a, i), J->m);
    mpz_add_ui(s->t, s->t, 1);
    return put(J->out + i * J->out_width, J->out_width, s->t);
}

static int crt_row(const void *vj, size_t i, scratch *s) {
    const ew_job *J = vj; /* m = p, m2 = q, aux = p^-1 mod q */
    mpz_t va, vb;
    mpz_srcptr a = view(va, J->a, i);
    mpz_sub(s->t, view(vb, J->b, i), a);
    mpz_mul(s->t, s->t, J->aux);
    mpz_mod(s->t, s->t, J->m2);
    mpz_mul(s->u, s->t, J->m);
    mpz_add(s->u, s->u, a);
    return put(J->out + i * J->out_width, J->out_width, s->u);
}

static int run_ew(row_fn fn, mm_he_vec a, mm_he_vec b, uint64_t *out, size_t out_width,
                  size_t count, const uint64_t *m, size_t m_limbs, int nthreads) {
    ew_job J;
    J.a = a;
    J.b = b;
    J.out = out;
    J.out_width = out_width;
    mpz_roinit_n(J.m, (const mp_limb_t *)m, (mp_size_t)m_limbs);
    return run_rows(fn, &J, count, nthreads);
}

static const mm_he_vec NO_VEC = {NULL, 0, 0};

int mm_he_mulmod(mm_he_vec a, mm_he_vec b, uint64_t *out, size_t out_width, size_t count,
                 const uint64_t *m, size_t m_limbs, int nthreads) {
    return run_ew(mulmod_row, a, b, out, out_width, count, m, m_limbs, nthreads);
}

int mm_he_powmod(mm_he_vec a, mm_he_vec e, uint64_t *out, size_t out_width, size_t count,
                 const uint64_t *m, size_t m_limbs, int nthreads) {
    return run_ew(powmod_row, a, e, out, out_width, count, m, m_limbs, nthreads);
}

int mm_he_mod(mm_he_vec a, uint64_t *out, size_t out_width, size_t count, const uint64_t *m,
              size_t m_limbs, int nthreads) {
    return run_ew(mod_row, a, NO_VEC, out, out_width, count, m, m_limbs, nthreads);
}

int mm_he_invert(mm_he_vec a, uint64_t *out, size_t out_width, size_t count, const uint64_t *m,
                 size_t m_limbs, int nthreads) {
    return run_ew(invert_row, a, NO_VEC, out, out_width, count, m, m_limbs, nthreads);
}

int mm_he_lfunc(mm_he_vec a, uint64_t *out, size_t out_width, size_t count, const uint64_t *p,
                size_t p_limbs, int nthreads) {
    return run_ew(lfunc_row, a, NO_VEC, out, out_width, count, p, p_limbs, nthreads);
}

int mm_he_linear(mm_he_vec a, uint64_t *out, size_t out_width, size_t count, const uint64_t *n,
                 size_t n_limbs, int nthreads) {
    return run_ew(linear_row, a, NO_VEC, out, out_width, count, n, n_limbs, nthreads);
}

int mm_he_crt(mm_he_vec a, mm_he_vec b, uint64_t *out, size_t out_width, size_t count,
              const uint64_t *p, size_t p_limbs, const uint64_t *q, size_t q_limbs,
              const uint64_t *pinv, size_t pinv_limbs, int nthreads) {
    ew_job J;
    J.a = a;
    J.b = b;
    J.out = out;
    J.out_width = out_width;
    mpz_roinit_n(J.m, (const mp_limb_t *)p, (mp_size_t)p_limbs);
    mpz_roinit_n(J.m2, (const mp_limb_t *)q, (mp_size_t)q_limbs);
    mpz_roinit_n(J.aux, (const mp_limb_t *)pinv, (mp_size_t)pinv_limbs);
    return run_rows(crt_row, &J, count, nthreads);
}

/* ---- fixed-base exponentiation ------------------------------------------ */

typedef struct {
    uint64_t *table;
    const uint64_t *ctable;
    int w;
    size_t nwin, m_limbs;
    mm_he_vec e;
    uint64_t *out;
    size_t out_width;
    mpz_t m;
} fb_job;

/* Row j of the table: base_j^d for d < 2^w, where base_j = table[j][1] is already set. */
static int fb_table_row(const void *vj, size_t j, scratch *s) {
    const fb_job *J = vj;
    size_t L = J->m_limbs, span = (size_t)1 << J->w;
    uint64_t *row = J->table + j * span * L;
    mpz_t vb, vp;
    mpz_set_ui(s->t, 1);
    int rc = put(row, L, s->t);
    mpz_srcptr base = view(vb, (mm_he_vec){row + L, 0, L}, 0);
    for (size_t d = 2; d < span && !rc; d++) {
        mpz_mul(s->t, view(vp, (mm_he_vec){row + (d - 1) * L, 0, L}, 0), base);
        mpz_tdiv_r(s->t, s->t, J->m);
        rc = put(row + d * L, L, s->t);
    }
    return rc;
}

int mm_he_fb_table(const uint64_t *base, size_t base_limbs, int w, size_t nwin, uint64_t *out,
                   const uint64_t *m, size_t m_limbs, int nthreads) {
    fb_job J;
    memset(&J, 0, sizeof J);
    J.table = out;
    J.w = w;
    J.nwin = nwin;
    J.m_limbs = m_limbs;
    mpz_roinit_n(J.m, (const mp_limb_t *)m, (mp_size_t)m_limbs);
    size_t span = (size_t)1 << w;
    mpz_t b, vb;
    mpz_init(b);
    mpz_tdiv_r(b, mpz_roinit_n(vb, (const mp_limb_t *)base, (mp_size_t)base_limbs), J.m);
    int rc = MM_HE_OK;
    for (size_t j = 0; j < nwin && !rc; j++) { /* base_j = base^(2^(w*j)) */
        rc = put(out + (j * span + 1) * m_limbs, m_limbs, b);
        for (int k = 0; k < w; k++) {
            mpz_mul(b, b, b);
            mpz_tdiv_r(b, b, J.m);
        }
    }
    mpz_clear(b);
    if (rc) return rc;
    return run_rows(fb_table_row, &J, nwin, nthreads);
}

static unsigned digit(const uint64_t *e, size_t width, size_t bit, int w) {
    size_t limb = bit / 64, off = bit % 64;
    if (limb >= width) return 0;
    uint64_t v = e[limb] >> off;
    if (off + (size_t)w > 64 && limb + 1 < width) v |= e[limb + 1] << (64 - off);
    return (unsigned)(v & (((uint64_t)1 << w) - 1));
}

static int fb_pow_row(const void *vj, size_t i, scratch *s) {
    const fb_job *J = vj;
    size_t L = J->m_limbs, span = (size_t)1 << J->w;
    const uint64_t *e = J->e.p + J->e.stride * i;
    int started = 0;
    mpz_t ve;
    for (size_t j = 0; j < J->nwin; j++) {
        unsigned d = digit(e, J->e.width, j * (size_t)J->w, J->w);
        if (!d) continue;
        mpz_srcptr entry = view(ve, (mm_he_vec){J->ctable + (j * span + d) * L, 0, L}, 0);
        if (!started) {
            mpz_set(s->t, entry);
            started = 1;
        } else {
            mpz_mul(s->t, s->t, entry);
            mpz_tdiv_r(s->t, s->t, J->m);
        }
    }
    if (!started) mpz_set_ui(s->t, 1);
    return put(J->out + i * J->out_width, J->out_width, s->t);
}

int mm_he_fb_pow(const uint64_t *table, int w, size_t nwin, mm_he_vec e, uint64_t *out,
                 size_t out_width, size_t count, const uint64_t *m, size_t m_limbs,
                 int nthreads) {
    fb_job J;
    memset(&J, 0, sizeof J);
    J.ctable = table;
    J.w = w;
    J.nwin = nwin;
    J.m_limbs = m_limbs;
    J.e = e;
    J.out = out;
    J.out_width = out_width;
    mpz_roinit_n(J.m, (const mp_limb_t *)m, (mp_size_t)m_limbs);
    return run_rows(fb_pow_row, &J, count, nthreads);
}

/* ---- packing by Horner's rule -------------------------------------------- */

typedef struct {
    mm_he_vec c;
    size_t k;
    uint64_t *out;
    size_t out_width;
    mpz_t m, shift; /* shift = 2^shift_bits (owned) */
} horner_job;

static int horner_row(const void *vj, size_t i, scratch *s) {
    const horner_job *J = vj;
    mpz_t vc;
    mpz_set(s->t, view(vc, J->c, i * J->k + J->k - 1));
    for (size_t j = J->k - 1; j-- > 0;) {
        mpz_powm(s->t, s->t, J->shift, J->m);
        mpz_mul(s->t, s->t, view(vc, J->c, i * J->k + j));
        mpz_tdiv_r(s->t, s->t, J->m);
    }
    return put(J->out + i * J->out_width, J->out_width, s->t);
}

int mm_he_horner(mm_he_vec c, size_t k, size_t shift, uint64_t *out, size_t out_width,
                 size_t count, const uint64_t *m, size_t m_limbs, int nthreads) {
    horner_job J;
    J.c = c;
    J.k = k;
    J.out = out;
    J.out_width = out_width;
    mpz_roinit_n(J.m, (const mp_limb_t *)m, (mp_size_t)m_limbs);
    mpz_init(J.shift);
    mpz_setbit(J.shift, shift);
    int rc = k ? run_rows(horner_row, &J, count, nthreads) : MM_HE_OK;
    mpz_clear(J.shift);
    return rc;
}

/* ---- encrypted histograms ------------------------------------------------ */

typedef struct {
    mm_he_vec c;
    const int64_t *rows;
    size_t nrows;
    const uint8_t *bins;
    size_t ldb, nbins;
    uint64_t *out;
    uint8_t *filled;
    size_t m_limbs;
    mpz_t m;
} hist_job;

static int hist_feature(const void *vj, size_t f, scratch *s) {
    const hist_job *J = vj;
    size_t L = J->m_limbs;
    const uint8_t *fb = J->bins + f * J->ldb;
    uint8_t *filled = J->filled + f * J->nbins;
    mpz_t *acc = malloc(J->nbins * sizeof(mpz_t));
    if (!acc) return MM_HE_EWIDTH;
    for (size_t b = 0; b < J->nbins; b++) mpz_init2(acc[b], (mp_bitcnt_t)(2 * L * 64 + 64));
    memset(filled, 0, J->nbins);
    int rc = MM_HE_OK;
    mpz_t vc;
    for (size_t r = 0; r < J->nrows; r++) {
        int64_t row = J->rows[r];
        size_t b = fb[row];
        if (b >= J->nbins) {
            rc = MM_HE_EBIN;
            break;
        }
        mpz_srcptr c = view(vc, J->c, (size_t)row);
        if (!filled[b]) {
            mpz_set(acc[b], c);
            filled[b] = 1;
        } else {
            mpz_mul(s->t, acc[b], c);
            mpz_tdiv_r(acc[b], s->t, J->m);
        }
    }
    for (size_t b = 0; b < J->nbins; b++) {
        if (!rc) {
            if (!filled[b]) mpz_set_ui(acc[b], 1);
            rc = put(J->out + (f * J->nbins + b) * L, L, acc[b]);
        }
        mpz_clear(acc[b]);
    }
    free(acc);
    return rc;
}

int mm_he_hist(mm_he_vec c, const int64_t *rows, size_t nrows, const uint8_t *bins, size_t ldb,
               size_t nfeat, size_t nbins, uint64_t *out, uint8_t *filled, const uint64_t *m,
               size_t m_limbs, int nthreads) {
    hist_job J = {c, rows, nrows, bins, ldb, nbins, out, filled, m_limbs, {{0}}};
    mpz_roinit_n(J.m, (const mp_limb_t *)m, (mp_size_t)m_limbs);
    return run_rows(hist_feature, &J, nfeat, nthreads);
}
