/* Batched OPRF kernels over libsodium's ristretto255 (see meshmpc/oprf.h).
 *
 * Why here and not in Python: PIR set-up evaluates the OPRF on every record
 * (2^20 and more); one Python call per group operation cost more than the
 * operation. Each kernel runs its items in chunks pulled from a shared
 * counter by nthreads threads (as the PIR dot products do), so a thread slowed
 * by other load does not hold the batch back.
 */
#include "meshmpc/oprf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "meshmpc/kernels.h"

#define CHUNK 256

typedef struct batch batch;
typedef int (*range_fn)(batch *b, size_t lo, size_t hi);

struct batch {
    const mm_sodium_fns *f;
    const uint8_t *domain;
    size_t dlen;
    const uint8_t *data;
    const int64_t *offsets;
    const uint8_t *in;
    size_t step, inlen, outlen, keylen;
    const uint8_t *key;
    const uint8_t *personal;
    uint8_t *out;
    size_t n, next;
    range_fn fn;
    int64_t failed; /* lowest failing index, or -1 */
    pthread_mutex_t lock;
};

static void note_failure(batch *b, int64_t index) {
    pthread_mutex_lock(&b->lock);
    if (b->failed < 0 || index < b->failed) b->failed = index;
    pthread_mutex_unlock(&b->lock);
}

static void *worker(void *arg) {
    batch *b = (batch *)arg;
    for (;;) {
        size_t lo = __atomic_fetch_add(&b->next, CHUNK, __ATOMIC_RELAXED);
        if (lo >= b->n) break;
        size_t hi = lo + CHUNK < b->n ? lo + CHUNK : b->n;
        b->fn(b, lo, hi);
    }
    return NULL;
}

static int64_t run(batch *b, int nthreads) {
    b->next = 0;
    b->failed = -1;
    pthread_mutex_init(&b->lock, NULL);
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    if ((size_t)nthreads * CHUNK > b->n) nthreads = (int)(b->n / CHUNK) + 1;
    pthread_t tids[64];
    int spawned = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tids[spawned], NULL, worker, b) != 0) break;
        spawned++;
    }
    worker(b);
    for (int t = 0; t < spawned; t++) pthread_join(tids[t], NULL);
    pthread_mutex_destroy(&b->lock);
    return b->failed;
}

/* SHA-512(domain || le64(len) || item [|| extra]) */
static int framed_sha512(const mm_sodium_fns *f, const uint8_t *domain, size_t dlen,
                         const uint8_t *item, size_t len, const uint8_t *extra, size_t elen,
                         uint8_t out[64]) {
    unsigned char state[MM_SHA512_STATE_MAX] __attribute__((aligned(64)));
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)len >> (8 * i));
    if (f->sha512_init(state) != 0) return -1;
    f->sha512_update(state, domain, dlen);
    f->sha512_update(state, le, 8);
    f->sha512_update(state, item, len);
    if (elen) f->sha512_update(state, extra, elen);
    return f->sha512_final(state, out);
}

static int h1_range(batch *b, size_t lo, size_t hi) {
    uint8_t h[64];
    for (size_t i = lo; i < hi; i++) {
        const uint8_t *item = b->data + b->offsets[i];
        size_t len = (size_t)(b->offsets[i + 1] - b->offsets[i]);
        if (framed_sha512(b->f, b->domain, b->dlen, item, len, NULL, 0, h) != 0 ||
            b->f->from_hash(b->out + 32 * i, h) != 0)
            note_failure(b, (int64_t)i);
    }
    return 0;
}

int mm_oprf_h1(const mm_sodium_fns *f, const uint8_t *domain, size_t dlen, const uint8_t *data,
               const int64_t *offsets, size_t n, uint8_t *out, int nthreads) {
    batch b = {0};
    b.f = f, b.domain = domain, b.dlen = dlen, b.data = data, b.offsets = offsets;
    b.out = out, b.n = n, b.fn = h1_range;
    return run(&b, nthreads) < 0 ? 0 : -1;
}

static int mul_range(batch *b, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++)
        if (b->f->scalarmult(b->out + 32 * i, b->key + b->step * i, b->in + 32 * i) != 0)
            note_failure(b, (int64_t)i);
    return 0;
}

int64_t mm_ristretto_mul(const mm_sodium_fns *f, const uint8_t *scalars, size_t scalar_step,
                         const uint8_t *points, size_t n, uint8_t *out, int nthreads) {
    batch b = {0};
    b.f = f, b.key = scalars, b.step = scalar_step, b.in = points, b.out = out, b.n = n;
    b.fn = mul_range;
    return run(&b, nthreads);
}

static int h2_range(batch *b, size_t lo, size_t hi) {
    uint8_t h[64];
    for (size_t i = lo; i < hi; i++) {
        const uint8_t *item = b->data + b->offsets[i];
        size_t len = (size_t)(b->offsets[i + 1] - b->offsets[i]);
        if (framed_sha512(b->f, b->domain, b->dlen, item, len, b->in + 32 * i, 32, h) != 0)
            note_failure(b, (int64_t)i);
        memcpy(b->out + 32 * i, h, 32);
    }
    return 0;
}

int mm_oprf_h2(const mm_sodium_fns *f, const uint8_t *domain, size_t dlen, const uint8_t *data,
               const int64_t *offsets, size_t n, const uint8_t *points, uint8_t *out,
               int nthreads) {
    batch b = {0};
    b.f = f, b.domain = domain, b.dlen = dlen, b.data = data, b.offsets = offsets;
    b.in = points, b.out = out, b.n = n, b.fn = h2_range;
    return run(&b, nthreads) < 0 ? 0 : -1;
}

int64_t mm_ristretto_scalars(const mm_sodium_fns *f, const uint8_t *wide, size_t n,
                             uint8_t *scalars, uint8_t *inv) {
    static const uint8_t zero[32] = {0};
    for (size_t i = 0; i < n; i++) {
        f->scalar_reduce(scalars + 32 * i, wide + 64 * i);
        if (memcmp(scalars + 32 * i, zero, 32) == 0) return (int64_t)i;
        if (inv && f->scalar_invert(inv + 32 * i, scalars + 32 * i) != 0) return (int64_t)i;
    }
    return -1;
}

static int blake_range(batch *b, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++)
        if (b->f->blake2b(b->out + b->outlen * i, b->outlen, b->in + b->inlen * i, b->inlen,
                          b->keylen ? b->key : NULL, b->keylen, NULL, b->personal) != 0)
            note_failure(b, (int64_t)i);
    return 0;
}

int mm_blake2b_rows(const mm_sodium_fns *f, const uint8_t *in, size_t inlen, size_t n,
                    const uint8_t *key, size_t keylen, const uint8_t personal[16],
                    uint8_t *out, size_t outlen, int nthreads) {
    batch b = {0};
    b.f = f, b.in = in, b.inlen = inlen, b.n = n, b.key = key, b.keylen = keylen;
    b.personal = personal, b.out = out, b.outlen = outlen, b.fn = blake_range;
    return run(&b, nthreads) < 0 ? 0 : -1;
}

static int blake_items_range(batch *b, size_t lo, size_t hi) {
    static const uint8_t salt[16] = {0};
    for (size_t i = lo; i < hi; i++) {
        const uint8_t *item = b->data + b->offsets[i];
        size_t len = (size_t)(b->offsets[i + 1] - b->offsets[i]);
        if (b->f->blake2b(b->out + b->outlen * i, b->outlen, item, len,
                          b->keylen ? b->key : NULL, b->keylen, salt, b->personal) != 0)
            note_failure(b, (int64_t)i);
    }
    return 0;
}

int mm_blake2b_items(const mm_sodium_fns *f, const uint8_t *data, const int64_t *offsets,
                     size_t n, const uint8_t *key, size_t keylen, const uint8_t personal[16],
                     uint8_t *out, size_t outlen, int nthreads) {
    batch b = {0};
    b.f = f, b.data = data, b.offsets = offsets, b.n = n, b.key = key, b.keylen = keylen;
    b.personal = personal, b.out = out, b.outlen = outlen, b.fn = blake_items_range;
    return run(&b, nthreads) < 0 ? 0 : -1;
}

static int seal_range(batch *b, size_t lo, size_t hi) {
    size_t blocks = (b->inlen + 15) / 16;
    uint8_t *stream = malloc(16 * (blocks ? blocks : 1));
    if (!stream) {
        note_failure(b, (int64_t)lo);
        return -1;
    }
    mm_aes_key k;
    const uint64_t *starts = (const uint64_t *)b->in;
    for (size_t i = lo; i < hi; i++) {
        mm_aes128_expand(b->key + 16 * i, &k);
        mm_aes128_ctr(&k, starts ? starts[i] : 0, stream, blocks, -1);
        uint8_t *row = b->out + b->inlen * i;
        for (size_t j = 0; j < b->inlen; j++) row[j] ^= stream[j];
    }
    free(stream);
    return 0;
}

void mm_seal_rows(const uint8_t *keys, const uint64_t *starts, uint8_t *rows, size_t len,
                  size_t n, int nthreads) {
    batch b = {0};
    b.key = keys, b.in = (const uint8_t *)starts, b.out = rows, b.inlen = len, b.n = n;
    b.fn = seal_range;
    run(&b, nthreads);
}
