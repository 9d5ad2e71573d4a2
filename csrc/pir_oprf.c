/* PIR OPRF kernels over Curve25519 (see meshmpc/pir_oprf.h, protocols/pir.md).
 *
 * Why this shape: PIR set-up evaluates the PRF on every record (2^20 and
 * more) with the server's own key and no blinding, so the server uses the
 * cheapest variable-base multiplication libsodium has, the X25519 Montgomery
 * ladder (about 60 % of ristretto255's cost). The ladder is x-only, so the
 * hash to the group is a try-and-increment on u-coordinates (no point
 * addition needed); a client blinds on edwards25519, where libsodium offers
 * unclamped multiplication and a subgroup check. No curve arithmetic lives
 * here: only batching over items and threads, and the residue test and
 * birational map through GMP.
 */
#include "meshmpc/pir_oprf.h"

#include <gmp.h>
#include <pthread.h>
#include <string.h>

#define CHUNK 128
#define H1_TRIES 64 /* 128 candidates: all rejected with probability 2^-128 */
#define SHA512_STATE_MAX 512

typedef struct job job;
typedef int (*item_fn)(const job *j, size_t i, mpz_t *scratch);

struct job {
    const mm_x25519_fns *f;
    const uint8_t *key, *d1, *d2, *data, *in, *scal;
    size_t d1len, d2len, step, n, next;
    const int64_t *offsets;
    uint8_t *out;
    item_fn fn;
    int64_t failed;
    pthread_mutex_t lock;
};

/* p = 2^255 - 19 and the Montgomery coefficient A, shared read-only. */
static mpz_t P25519, PM1;
static pthread_once_t consts_once = PTHREAD_ONCE_INIT;
static void consts_init(void) {
    mpz_init(P25519);
    mpz_ui_pow_ui(P25519, 2, 255);
    mpz_sub_ui(P25519, P25519, 19);
    mpz_init(PM1);
    mpz_sub_ui(PM1, P25519, 1);
}
#define MONT_A 486662UL

static void note_failure(job *j, int64_t index) {
    pthread_mutex_lock(&j->lock);
    if (j->failed < 0 || index < j->failed) j->failed = index;
    pthread_mutex_unlock(&j->lock);
}

static void *worker(void *arg) {
    job *j = (job *)arg;
    mpz_t scratch[3];
    for (int t = 0; t < 3; t++) mpz_init2(scratch[t], 640);
    for (;;) {
        size_t lo = __atomic_fetch_add(&j->next, CHUNK, __ATOMIC_RELAXED);
        if (lo >= j->n) break;
        size_t hi = lo + CHUNK < j->n ? lo + CHUNK : j->n;
        for (size_t i = lo; i < hi; i++)
            if (j->fn(j, i, scratch) != 0) note_failure(j, (int64_t)i);
    }
    for (int t = 0; t < 3; t++) mpz_clear(scratch[t]);
    return NULL;
}

static int64_t run(job *j, int nthreads) {
    pthread_once(&consts_once, consts_init);
    j->next = 0;
    j->failed = -1;
    pthread_mutex_init(&j->lock, NULL);
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    if ((size_t)nthreads * CHUNK > j->n) nthreads = (int)(j->n / CHUNK) + 1;
    pthread_t tids[64];
    int spawned = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tids[spawned], NULL, worker, j) != 0) break;
        spawned++;
    }
    worker(j);
    for (int t = 0; t < spawned; t++) pthread_join(tids[t], NULL);
    pthread_mutex_destroy(&j->lock);
    return j->failed;
}

static void le64(uint8_t out[8], uint64_t v) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}

/* SHA-512(domain || le64(len) || item || extra) */
static int framed(const mm_x25519_fns *f, const uint8_t *d, size_t dlen, const uint8_t *item,
                  size_t len, const uint8_t *extra, size_t elen, uint8_t out[64]) {
    unsigned char state[SHA512_STATE_MAX] __attribute__((aligned(64)));
    uint8_t l[8];
    le64(l, len);
    if (f->sha512_init(state) != 0) return -1;
    f->sha512_update(state, d, dlen);
    f->sha512_update(state, l, 8);
    f->sha512_update(state, item, len);
    if (elen) f->sha512_update(state, extra, elen);
    return f->sha512_final(state, out);
}

static void to_le32(uint8_t out[32], const mpz_t v) {
    size_t count = 0;
    memset(out, 0, 32);
    mpz_export(out, &count, -1, 1, 0, 0, v);
}

/* A candidate c (255-bit little-endian) is accepted when c < p, c not in {0, 1, p-1}
 * and c (c^2 + A c + 1) is a non-zero square mod p. */
static int acceptable(const uint8_t c[32], mpz_t *s) {
    mpz_import(s[0], 32, -1, 1, 0, 0, c);
    if (mpz_cmp(s[0], P25519) >= 0 || mpz_cmp_ui(s[0], 1) <= 0 || mpz_cmp(s[0], PM1) == 0)
        return 0;
    mpz_add_ui(s[1], s[0], MONT_A);
    mpz_mul(s[1], s[1], s[0]);
    mpz_add_ui(s[1], s[1], 1);
    mpz_mul(s[1], s[1], s[0]);
    mpz_mod(s[1], s[1], P25519);
    return mpz_sgn(s[1]) != 0 && mpz_jacobi(s[1], P25519) == 1;
}

static int h1_item(const mm_x25519_fns *f, const uint8_t *d, size_t dlen, const uint8_t *item,
                   size_t len, uint8_t u[32], mpz_t *s) {
    uint8_t h[64];
    for (int ctr = 0; ctr < H1_TRIES; ctr++) {
        uint8_t c = (uint8_t)ctr;
        if (framed(f, d, dlen, item, len, &c, 1, h) != 0) return -1;
        for (int half = 0; half < 2; half++) {
            memcpy(u, h + 32 * half, 32);
            u[31] &= 0x7f;
            if (acceptable(u, s)) return 0;
        }
    }
    return -1;
}

#define ITEM(j, i) ((j)->data + (j)->offsets[i])
#define ITEM_LEN(j, i) ((size_t)((j)->offsets[(i) + 1] - (j)->offsets[i]))

static int h1_fn(const job *j, size_t i, mpz_t *s) {
    return h1_item(j->f, j->d1, j->d1len, ITEM(j, i), ITEM_LEN(j, i), j->out + 32 * i, s);
}

int64_t mm_x25519_h1(const mm_x25519_fns *f, const uint8_t *domain, size_t dlen,
                     const uint8_t *data, const int64_t *offsets, size_t n, uint8_t *u,
                     int nthreads) {
    job j = {0};
    j.f = f, j.d1 = domain, j.d1len = dlen, j.data = data, j.offsets = offsets, j.n = n;
    j.out = u, j.fn = h1_fn;
    return run(&j, nthreads);
}

/* H2: SHA-512(d2 || le64(len) || item || u)[:32] */
static int h2(const job *j, size_t i, const uint8_t u[32]) {
    uint8_t h[64];
    if (framed(j->f, j->d2, j->d2len, ITEM(j, i), ITEM_LEN(j, i), u, 32, h) != 0) return -1;
    memcpy(j->out + 32 * i, h, 32);
    return 0;
}

static int prf_fn(const job *j, size_t i, mpz_t *s) {
    uint8_t u[32], ku[32];
    if (h1_item(j->f, j->d1, j->d1len, ITEM(j, i), ITEM_LEN(j, i), u, s) != 0) return -1;
    if (j->f->x25519(ku, j->key, u) != 0) return -1; /* zero output: low-order input */
    return h2(j, i, ku);
}

int64_t mm_x25519_prf(const mm_x25519_fns *f, const uint8_t *key, const uint8_t *d1,
                      size_t d1len, const uint8_t *d2, size_t d2len, const uint8_t *data,
                      const int64_t *offsets, size_t n, uint8_t *out, int nthreads) {
    job j = {0};
    j.f = f, j.key = key, j.d1 = d1, j.d1len = d1len, j.d2 = d2, j.d2len = d2len;
    j.data = data, j.offsets = offsets, j.n = n, j.out = out, j.fn = prf_fn;
    return run(&j, nthreads);
}

/* The edwards25519 point with Montgomery u-coordinate u: y = (u - 1) / (u + 1), sign 0. */
static int edwards_of_u(const uint8_t u[32], uint8_t ed[32], mpz_t *s) {
    mpz_import(s[0], 32, -1, 1, 0, 0, u);
    if (mpz_cmp(s[0], P25519) >= 0) return -1;
    mpz_add_ui(s[1], s[0], 1);
    if (mpz_invert(s[1], s[1], P25519) == 0) return -1; /* u = -1 */
    mpz_sub_ui(s[2], s[0], 1);
    mpz_mul(s[2], s[2], s[1]);
    mpz_mod(s[2], s[2], P25519);
    to_le32(ed, s[2]);
    return 0;
}

static int blind_fn(const job *j, size_t i, mpz_t *s) {
    uint8_t p[32], q[32];
    if (edwards_of_u(j->in + 32 * i, p, s) != 0) return -1;
    /* 8 P by three doublings: libsodium's unclamped multiplication refuses points
     * outside the prime-order subgroup, and Ed(u) may carry a torsion component. */
    if (j->f->ed_add(q, p, p) != 0 || j->f->ed_add(p, q, q) != 0 || j->f->ed_add(q, p, p) != 0)
        return -1;
    return j->f->ed_mul_noclamp(j->out + 32 * i, j->scal + 32 * i, q) != 0 ? -1 : 0;
}

int64_t mm_x25519_blind(const mm_x25519_fns *f, const uint8_t *u, const uint8_t *r, size_t n,
                        uint8_t *blinded, int nthreads) {
    job j = {0};
    j.f = f, j.in = u, j.scal = r, j.n = n, j.out = blinded, j.fn = blind_fn;
    return run(&j, nthreads);
}

static int ed_mul_fn(const job *j, size_t i, mpz_t *s) {
    (void)s;
    const uint8_t *p = j->in + 32 * i;
    if (j->f->ed_is_valid(p) != 1) return -1; /* hostile input: subgroup check first */
    return j->f->ed_mul_noclamp(j->out + 32 * i, j->scal + j->step * i, p) != 0 ? -1 : 0;
}

int64_t mm_x25519_ed_mul(const mm_x25519_fns *f, const uint8_t *s, size_t step,
                         const uint8_t *points, size_t n, uint8_t *out, int nthreads) {
    job j = {0};
    j.f = f, j.scal = s, j.step = step, j.in = points, j.n = n, j.out = out, j.fn = ed_mul_fn;
    return run(&j, nthreads);
}

static int finalize_fn(const job *j, size_t i, mpz_t *s) {
    (void)s;
    uint8_t c[32], u[32];
    if (j->f->ed_mul_noclamp(c, j->scal + 32 * i, j->in + 32 * i) != 0) return -1;
    if (j->f->ed_to_u(u, c) != 0) return -1;
    return h2(j, i, u);
}

int64_t mm_x25519_finalize(const mm_x25519_fns *f, const uint8_t *s, const uint8_t *points,
                           const uint8_t *d2, size_t d2len, const uint8_t *data,
                           const int64_t *offsets, size_t n, uint8_t *out, int nthreads) {
    job j = {0};
    j.f = f, j.scal = s, j.in = points, j.d2 = d2, j.d2len = d2len, j.data = data;
    j.offsets = offsets, j.n = n, j.out = out, j.fn = finalize_fn;
    return run(&j, nthreads);
}

int64_t mm_x25519_scalars(const mm_x25519_fns *f, const uint8_t *wide, size_t n, uint8_t *r,
                          uint8_t *s) {
    static const uint8_t zero[32] = {0};
    static const uint8_t eight[32] = {8};
    uint8_t r8[32];
    for (size_t i = 0; i < n; i++) {
        f->scalar_reduce(r + 32 * i, wide + 64 * i);
        if (memcmp(r + 32 * i, zero, 32) == 0) return (int64_t)i;
        f->scalar_mul(r8, r + 32 * i, eight);
        if (f->scalar_invert(s + 32 * i, r8) != 0) return (int64_t)i;
    }
    return -1;
}
