/* Batch GMP kernels for additively homomorphic encryption and the thread pool; see
 * meshmpc/he.h. The Montgomery kernels (powers, fixed-base tables, packing,
 * histograms) are in he_mont.c.
 *
 * Rows are independent, so every entry point is a parallel loop over rows (or,
 * for the histogram, over features): threads take chunks of rows from a shared
 * counter and stop at the first error. Inputs are read in place through
 * mpz_roinit_n (no copy); results are written back as zero-padded limbs.
 */
#include "he_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

typedef mm_he_scratch scratch;
typedef mm_he_row_fn row_fn;

typedef struct {
    row_fn fn;
    const void *job;
    size_t count, chunk, next;
    int err;
} pool;

int mm_he_bn_ready(mm_he_scratch *s) {
    if (s->bn) return MM_HE_OK;
    s->bn = BN_CTX_new();
    s->x = BN_new();
    s->y = BN_new();
    s->z = BN_new();
    return s->bn && s->x && s->y && s->z ? MM_HE_OK : MM_HE_ENOMEM;
}

static void *pool_worker(void *arg) {
    pool *P = arg;
    scratch s;
    memset(&s, 0, sizeof s);
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
    BN_free(s.x);
    BN_free(s.y);
    BN_free(s.z);
    BN_CTX_free(s.bn);
    return NULL;
}

int mm_he_run_rows(row_fn fn, const void *job, size_t count, int nthreads) {
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

#define run_rows mm_he_run_rows

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
    if (!mpz_divisible_p(s->t, J->m)) return MM_HE_ENOTSUB;
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
