/* Montgomery kernels for additively homomorphic encryption; see meshmpc/he.h.
 *
 * Modular powers, fixed-base tables, Horner packing and encrypted histograms
 * run in the Montgomery domain of OpenSSL's BIGNUM library (BN_MONT_CTX,
 * BN_mod_mul_montgomery, BN_mod_exp_mont_consttime): its x86-64 and ARM
 * assembly multiplies 2048- and 4096-bit residues 1.2-1.5x faster than
 * mpz_mul + mpz_tdiv_r, and its constant-time exponentiation beats mpz_powm
 * from 2048-bit moduli and 512-bit exponents up (Paillier decryption; measured
 * in protocols/he.md). Below that (OU decryption modulo a 1365-bit p^2, short
 * mul_plain scalars) mpz_powm is faster and is kept. Long products (a fixed-base power, a bin's sum
 * of hundreds of thousands of ciphertexts) stay in Montgomery form from the
 * first factor to the last, so each factor costs one Montgomery product.
 * Limb rows are read as little-endian byte strings (BN_lebin2bn), so the layout
 * of he.c is kept. An even modulus (no Montgomery form) is an error except for
 * mm_he_powmod, which then uses mpz_powm.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "he_internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "he_mont.c reads uint64 limb rows as little-endian bytes"
#endif

typedef struct {
    BIGNUM *m;
    BN_MONT_CTX *mont;
} mont_mod;

static BIGNUM *bn_of(BIGNUM *r, const uint64_t *p, size_t width) {
    return BN_lebin2bn((const unsigned char *)p, (int)(width * sizeof(uint64_t)), r);
}

static int bn_put(uint64_t *dst, size_t width, const BIGNUM *x) {
    int bytes = (int)(width * sizeof(uint64_t));
    if (BN_num_bytes(x) > bytes) return MM_HE_EWIDTH;
    return BN_bn2lebinpad(x, (unsigned char *)dst, bytes) < 0 ? MM_HE_EWIDTH : MM_HE_OK;
}

/* The Montgomery context of an odd modulus (MM_HE_EEVEN for an even one). */
static int mont_open(mont_mod *M, const uint64_t *m, size_t m_limbs) {
    M->m = bn_of(NULL, m, m_limbs);
    M->mont = BN_MONT_CTX_new();
    BN_CTX *ctx = BN_CTX_new();
    int rc = MM_HE_OK;
    if (!M->m || !M->mont || !ctx) rc = MM_HE_ENOMEM;
    else if (!BN_is_odd(M->m)) rc = MM_HE_EEVEN;
    else if (!BN_MONT_CTX_set(M->mont, M->m, ctx)) rc = MM_HE_ENOMEM;
    BN_CTX_free(ctx);
    return rc;
}

static void mont_close(mont_mod *M) {
    BN_MONT_CTX_free(M->mont);
    BN_free(M->m);
}

/* r = x R mod m (x reduced first when it is not below m). */
static int to_mont(BIGNUM *r, BIGNUM *x, const mont_mod *M, BN_CTX *ctx) {
    if (BN_ucmp(x, M->m) >= 0 && !BN_nnmod(x, x, M->m, ctx)) return MM_HE_ENOMEM;
    return BN_to_montgomery(r, x, M->mont, ctx) ? MM_HE_OK : MM_HE_ENOMEM;
}

static int mont_mul(BIGNUM *r, const BIGNUM *a, const BIGNUM *b, const mont_mod *M,
                    BN_CTX *ctx) {
    return BN_mod_mul_montgomery(r, a, b, M->mont, ctx) ? MM_HE_OK : MM_HE_ENOMEM;
}

/* ---- element-wise powers ------------------------------------------------- */

typedef struct {
    mm_he_vec a, e;
    uint64_t *out;
    size_t out_width;
    mont_mod M;
    mpz_t m; /* view of the modulus, for the even-modulus fallback */
} pow_job;

/* Constant-time in the exponent (Paillier decryption raises to p - 1). */
static int powmod_row(const void *vj, size_t i, mm_he_scratch *s) {
    const pow_job *J = vj;
    int rc = mm_he_bn_ready(s);
    if (rc) return rc;
    if (!bn_of(s->x, J->a.p + J->a.stride * i, J->a.width) ||
        !bn_of(s->y, J->e.p + J->e.stride * i, J->e.width))
        return MM_HE_ENOMEM;
    if (!BN_mod_exp_mont_consttime(s->z, s->x, s->y, J->M.m, s->bn, J->M.mont))
        return MM_HE_ENOMEM;
    return bn_put(J->out + i * J->out_width, J->out_width, s->z);
}

static int powmod_row_gmp(const void *vj, size_t i, mm_he_scratch *s) {
    const pow_job *J = vj;
    mpz_t va, ve;
    mpz_roinit_n(va, (const mp_limb_t *)(J->a.p + J->a.stride * i), (mp_size_t)J->a.width);
    mpz_roinit_n(ve, (const mp_limb_t *)(J->e.p + J->e.stride * i), (mp_size_t)J->e.width);
    mpz_powm(s->t, va, ve, J->m);
    size_t n = mpz_size(s->t);
    if (n > J->out_width) return MM_HE_EWIDTH;
    uint64_t *dst = J->out + i * J->out_width;
    if (n) memcpy(dst, mpz_limbs_read(s->t), n * sizeof(uint64_t));
    memset(dst + n, 0, (J->out_width - n) * sizeof(uint64_t));
    return MM_HE_OK;
}

int mm_he_powmod(mm_he_vec a, mm_he_vec e, uint64_t *out, size_t out_width, size_t count,
                 const uint64_t *m, size_t m_limbs, int nthreads) {
    pow_job J = {a, e, out, out_width, {NULL, NULL}, {{0}}};
    mpz_roinit_n(J.m, (const mp_limb_t *)m, (mp_size_t)m_limbs);
    if (m_limbs < 32 || e.width < 8 || (m[0] & 1) == 0) /* see mm_he_powmod in he.h */
        return mm_he_run_rows(powmod_row_gmp, &J, count, nthreads);
    int rc = mont_open(&J.M, m, m_limbs);
    if (!rc) rc = mm_he_run_rows(powmod_row, &J, count, nthreads);
    mont_close(&J.M);
    return rc;
}

int mm_he_powmod_secret(mm_he_vec a, mm_he_vec e, uint64_t *out, size_t out_width,
                        size_t count, const uint64_t *m, size_t m_limbs, int nthreads) {
    pow_job J = {a, e, out, out_width, {NULL, NULL}, {{0}}};
    int rc = mont_open(&J.M, m, m_limbs);
    if (!rc) rc = mm_he_run_rows(powmod_row, &J, count, nthreads);
    mont_close(&J.M);
    return rc;
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
    mont_mod M;
} fb_job;

/* Row j of the table in Montgomery form: entry d = base_j^d, entry 1 already set. */
static int fb_table_row(const void *vj, size_t j, mm_he_scratch *s) {
    const fb_job *J = vj;
    size_t L = J->m_limbs, span = (size_t)1 << J->w;
    uint64_t *row = J->table + j * span * L;
    int rc = mm_he_bn_ready(s);
    if (rc) return rc;
    if (!BN_one(s->x) || (rc = to_mont(s->z, s->x, &J->M, s->bn))) return rc ? rc : MM_HE_ENOMEM;
    if ((rc = bn_put(row, L, s->z))) return rc;
    if (!bn_of(s->y, row + L, L) || !BN_copy(s->z, s->y)) return MM_HE_ENOMEM;
    for (size_t d = 2; d < span && !rc; d++) {
        rc = mont_mul(s->z, s->z, s->y, &J->M, s->bn);
        if (!rc) rc = bn_put(row + d * L, L, s->z);
    }
    return rc;
}

static int fb_bases(fb_job *J, const uint64_t *base, size_t base_limbs) {
    size_t L = J->m_limbs, span = (size_t)1 << J->w;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *b = bn_of(NULL, base, base_limbs), *bm = BN_new();
    int rc = ctx && b && bm ? to_mont(bm, b, &J->M, ctx) : MM_HE_ENOMEM;
    for (size_t j = 0; j < J->nwin && !rc; j++) { /* base_j = base^(2^(w*j)) */
        rc = bn_put(J->table + (j * span + 1) * L, L, bm);
        for (int k = 0; k < J->w && !rc; k++) rc = mont_mul(bm, bm, bm, &J->M, ctx);
    }
    BN_free(b);
    BN_free(bm);
    BN_CTX_free(ctx);
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
    int rc = mont_open(&J.M, m, m_limbs);
    if (!rc) rc = fb_bases(&J, base, base_limbs);
    if (!rc) rc = mm_he_run_rows(fb_table_row, &J, nwin, nthreads);
    mont_close(&J.M);
    return rc;
}

static unsigned digit(const uint64_t *e, size_t width, size_t bit, int w) {
    size_t limb = bit / 64, off = bit % 64;
    if (limb >= width) return 0;
    uint64_t v = e[limb] >> off;
    if (off + (size_t)w > 64 && limb + 1 < width) v |= e[limb + 1] << (64 - off);
    return (unsigned)(v & (((uint64_t)1 << w) - 1));
}

static int fb_pow_row(const void *vj, size_t i, mm_he_scratch *s) {
    const fb_job *J = vj;
    size_t L = J->m_limbs, span = (size_t)1 << J->w;
    const uint64_t *e = J->e.p + J->e.stride * i;
    int rc = mm_he_bn_ready(s), started = 0;
    for (size_t j = 0; j < J->nwin && !rc; j++) {
        unsigned d = digit(e, J->e.width, j * (size_t)J->w, J->w);
        if (!d) continue;
        const uint64_t *entry = J->ctable + (j * span + d) * L;
        if (!bn_of(started ? s->y : s->x, entry, L)) return MM_HE_ENOMEM;
        if (started) rc = mont_mul(s->x, s->x, s->y, &J->M, s->bn);
        started = 1;
    }
    if (rc) return rc;
    if (!started) return BN_one(s->z) ? bn_put(J->out + i * J->out_width, J->out_width, s->z)
                                      : MM_HE_ENOMEM;
    if (!BN_from_montgomery(s->z, s->x, J->M.mont, s->bn)) return MM_HE_ENOMEM;
    return bn_put(J->out + i * J->out_width, J->out_width, s->z);
}

/* Run a fixed-base power row function over every exponent row. */
static int fb_pow_rows(mm_he_row_fn row_fn, const uint64_t *table, int w, size_t nwin,
                       mm_he_vec e, uint64_t *out, size_t out_width, size_t count,
                       const uint64_t *m, size_t m_limbs, int nthreads) {
    fb_job J;
    memset(&J, 0, sizeof J);
    J.ctable = table;
    J.w = w;
    J.nwin = nwin;
    J.m_limbs = m_limbs;
    J.e = e;
    J.out = out;
    J.out_width = out_width;
    int rc = mont_open(&J.M, m, m_limbs);
    if (!rc) rc = mm_he_run_rows(row_fn, &J, count, nthreads);
    mont_close(&J.M);
    return rc;
}

int mm_he_fb_pow(const uint64_t *table, int w, size_t nwin, mm_he_vec e, uint64_t *out,
                 size_t out_width, size_t count, const uint64_t *m, size_t m_limbs,
                 int nthreads) {
    return fb_pow_rows(fb_pow_row, table, w, nwin, e, out, out_width, count, m, m_limbs,
                       nthreads);
}

/* ---- fixed-base exponentiation in constant time ------------------------ */

#define FB_CT_MAX_LIMBS 128

/* entry = table row d of a window, read without an address that depends on d:
 * every entry of the window is loaded and masked (the masked scan OpenSSL's
 * constant-time exponentiation uses since CacheBleed). */
static void fb_ct_gather(uint64_t *entry, const uint64_t *window, size_t span, size_t L,
                         unsigned d) {
    memset(entry, 0, L * sizeof(uint64_t));
    for (size_t t = 0; t < span; t++) {
        uint64_t diff = (uint64_t)(t ^ d);
        uint64_t mask = ((diff | (0 - diff)) >> 63) - 1; /* all ones iff t == d */
        const uint64_t *row = window + t * L;
        for (size_t k = 0; k < L; k++) entry[k] |= row[k] & mask;
    }
}

/* Every window is gathered and multiplied, zero digits included (entry 0 is
 * one in Montgomery form), so neither the addresses read nor the number of
 * products depends on the exponent. */
static int fb_pow_ct_row(const void *vj, size_t i, mm_he_scratch *s) {
    const fb_job *J = vj;
    size_t L = J->m_limbs, span = (size_t)1 << J->w;
    const uint64_t *e = J->e.p + J->e.stride * i;
    uint64_t entry[FB_CT_MAX_LIMBS];
    int rc = mm_he_bn_ready(s);
    for (size_t j = 0; j < J->nwin && !rc; j++) {
        unsigned d = digit(e, J->e.width, j * (size_t)J->w, J->w);
        fb_ct_gather(entry, J->ctable + j * span * L, span, L, d);
        if (!bn_of(j ? s->y : s->x, entry, L)) rc = MM_HE_ENOMEM;
        else if (j) rc = mont_mul(s->x, s->x, s->y, &J->M, s->bn);
    }
    OPENSSL_cleanse(entry, sizeof entry);
    if (rc) return rc;
    if (!J->nwin) return BN_one(s->z) ? bn_put(J->out + i * J->out_width, J->out_width, s->z)
                                      : MM_HE_ENOMEM;
    if (!BN_from_montgomery(s->z, s->x, J->M.mont, s->bn)) return MM_HE_ENOMEM;
    return bn_put(J->out + i * J->out_width, J->out_width, s->z);
}

int mm_he_fb_pow_ct(const uint64_t *table, int w, size_t nwin, mm_he_vec e, uint64_t *out,
                    size_t out_width, size_t count, const uint64_t *m, size_t m_limbs,
                    int nthreads) {
    if (m_limbs > FB_CT_MAX_LIMBS) return MM_HE_EWIDTH;
    return fb_pow_rows(fb_pow_ct_row, table, w, nwin, e, out, out_width, count, m, m_limbs,
                       nthreads);
}

/* ---- packing by Horner's rule -------------------------------------------- */

typedef struct {
    mm_he_vec c;
    size_t k, shift;
    uint64_t *out;
    size_t out_width;
    mont_mod M;
} horner_job;

static int horner_row(const void *vj, size_t i, mm_he_scratch *s) {
    const horner_job *J = vj;
    const uint64_t *c = J->c.p + J->c.stride * i * J->k;
    int rc = mm_he_bn_ready(s);
    if (rc) return rc;
    if (!bn_of(s->y, c + J->c.stride * (J->k - 1), J->c.width)) return MM_HE_ENOMEM;
    rc = to_mont(s->x, s->y, &J->M, s->bn);
    for (size_t j = J->k - 1; j-- > 0 && !rc;) {
        for (size_t b = 0; b < J->shift && !rc; b++) rc = mont_mul(s->x, s->x, s->x, &J->M, s->bn);
        if (rc) break;
        if (!bn_of(s->y, c + J->c.stride * j, J->c.width)) return MM_HE_ENOMEM;
        rc = to_mont(s->z, s->y, &J->M, s->bn);
        if (!rc) rc = mont_mul(s->x, s->x, s->z, &J->M, s->bn);
    }
    if (rc) return rc;
    if (!BN_from_montgomery(s->z, s->x, J->M.mont, s->bn)) return MM_HE_ENOMEM;
    return bn_put(J->out + i * J->out_width, J->out_width, s->z);
}

int mm_he_horner(mm_he_vec c, size_t k, size_t shift, uint64_t *out, size_t out_width,
                 size_t count, const uint64_t *m, size_t m_limbs, int nthreads) {
    if (!k) return MM_HE_OK;
    horner_job J = {c, k, shift, out, out_width, {NULL, NULL}};
    int rc = mont_open(&J.M, m, m_limbs);
    if (!rc) rc = mm_he_run_rows(horner_row, &J, count, nthreads);
    mont_close(&J.M);
    return rc;
}

/* ---- encrypted histograms ------------------------------------------------ */

typedef struct {
    mm_he_vec c;
    const int64_t *rows;
    size_t nrows;
    const uint8_t *bins;
    size_t ldb, nbins;
    const uint8_t *limits;
    uint64_t *out;
    uint8_t *filled;
    size_t m_limbs;
    mont_mod M;
    BIGNUM **cm; /* the node's ciphertexts in Montgomery form, by position in rows */
} hist_job;

static int hist_convert(const void *vj, size_t r, mm_he_scratch *s) {
    const hist_job *J = vj;
    int rc = mm_he_bn_ready(s);
    if (rc) return rc;
    if (!(J->cm[r] = BN_new())) return MM_HE_ENOMEM;
    if (!bn_of(s->y, J->c.p + J->c.stride * (size_t)J->rows[r], J->c.width)) return MM_HE_ENOMEM;
    return to_mont(J->cm[r], s->y, &J->M, s->bn);
}

static int hist_feature(const void *vj, size_t f, mm_he_scratch *s) {
    const hist_job *J = vj;
    const uint8_t *fb = J->bins + f * J->ldb;
    uint8_t *filled = J->filled + f * J->nbins;
    size_t limit = J->limits ? J->limits[f] : J->nbins;
    int rc = mm_he_bn_ready(s);
    BIGNUM **acc = calloc(J->nbins, sizeof(BIGNUM *));
    if (!acc) return MM_HE_ENOMEM;
    for (size_t b = 0; b < J->nbins && !rc; b++)
        if (!(acc[b] = BN_new())) rc = MM_HE_ENOMEM;
    memset(filled, 0, J->nbins);
    for (size_t r = 0; r < J->nrows && !rc; r++) {
        size_t b = fb[J->rows[r]];
        if (b >= J->nbins) rc = MM_HE_EBIN;
        else if (b >= limit) continue;
        else if (!filled[b]) rc = BN_copy(acc[b], J->cm[r]) ? MM_HE_OK : MM_HE_ENOMEM;
        else rc = mont_mul(acc[b], acc[b], J->cm[r], &J->M, s->bn);
        if (!rc) filled[b] = 1;
    }
    for (size_t b = 0; b < J->nbins && !rc; b++) {
        if (!filled[b]) rc = BN_one(s->z) ? MM_HE_OK : MM_HE_ENOMEM;
        else if (!BN_from_montgomery(s->z, acc[b], J->M.mont, s->bn)) rc = MM_HE_ENOMEM;
        if (!rc) rc = bn_put(J->out + (f * J->nbins + b) * J->m_limbs, J->m_limbs, s->z);
    }
    for (size_t b = 0; b < J->nbins; b++) BN_free(acc[b]);
    free(acc);
    return rc;
}

int mm_he_hist(mm_he_vec c, const int64_t *rows, size_t nrows, const uint8_t *bins, size_t ldb,
               size_t nfeat, size_t nbins, const uint8_t *limits, uint64_t *out,
               uint8_t *filled, const uint64_t *m, size_t m_limbs, int nthreads) {
    hist_job J = {c, rows, nrows, bins, ldb, nbins, limits, out, filled, m_limbs,
                  {NULL, NULL}, NULL};
    int rc = mont_open(&J.M, m, m_limbs);
    if (!rc && nrows && !(J.cm = calloc(nrows, sizeof(BIGNUM *)))) rc = MM_HE_ENOMEM;
    if (!rc) rc = mm_he_run_rows(hist_convert, &J, nrows, nthreads);
    if (!rc) rc = mm_he_run_rows(hist_feature, &J, nfeat, nthreads);
    if (J.cm)
        for (size_t r = 0; r < nrows; r++) BN_free(J.cm[r]);
    free(J.cm);
    mont_close(&J.M);
    return rc;
}
