/* meshmpc OPRF kernels: batched ristretto255 hash-to-group, scalar
 * multiplication and hashing through libsodium, spread over threads.
 *
 * libsodium is not linked: the caller passes the addresses of the libsodium
 * functions (loaded once from the system library by meshmpc.crypto.sodium),
 * as the BLAKE2b kernels do. No curve arithmetic lives here: every group
 * operation is one libsodium call; this file only batches them over items and
 * threads so that a million-record job makes no per-record Python call.
 */
#ifndef MESHMPC_OPRF_H
#define MESHMPC_OPRF_H

#include <stddef.h>
#include <stdint.h>

#define MM_SHA512_STATE_MAX 512

typedef struct {
    int (*sha512_init)(void *state);
    int (*sha512_update)(void *state, const unsigned char *in, unsigned long long inlen);
    int (*sha512_final)(void *state, unsigned char *out);
    int (*from_hash)(unsigned char *p, const unsigned char *h);          /* 64 -> 32 bytes */
    int (*scalarmult)(unsigned char *q, const unsigned char *n, const unsigned char *p);
    void (*scalar_reduce)(unsigned char *r, const unsigned char *s);    /* 64 -> 32 bytes */
    int (*scalar_invert)(unsigned char *recip, const unsigned char *s);
    int (*blake2b)(unsigned char *out, size_t outlen, const unsigned char *in,
                   unsigned long long inlen, const unsigned char *key, size_t keylen,
                   const unsigned char *salt, const unsigned char *personal);
} mm_sodium_fns;

/* out[i] = from_hash(SHA-512(domain || le64(len x_i) || x_i)): H1 of every item. */
int mm_oprf_h1(const mm_sodium_fns *f, const uint8_t *domain, size_t dlen, const uint8_t *data,
               const int64_t *offsets, size_t n, uint8_t *out, int nthreads);

/* out[i] = s_i * P_i (s_i = scalars + i * scalar_step; step 0: one scalar).
 * Returns -1, or the index of the first point libsodium rejects. */
int64_t mm_ristretto_mul(const mm_sodium_fns *f, const uint8_t *scalars, size_t scalar_step,
                         const uint8_t *points, size_t n, uint8_t *out, int nthreads);

/* out[i] = SHA-512(domain || le64(len x_i) || x_i || P_i)[:32]: H2 of every item. */
int mm_oprf_h2(const mm_sodium_fns *f, const uint8_t *domain, size_t dlen, const uint8_t *data,
               const int64_t *offsets, size_t n, const uint8_t *points, uint8_t *out,
               int nthreads);

/* s_i = reduce(wide_i) (64 -> 32 bytes); inv_i = s_i^-1 when inv is not NULL.
 * Returns -1, or the index of the first zero scalar (the caller draws again). */
int64_t mm_ristretto_scalars(const mm_sodium_fns *f, const uint8_t *wide, size_t n,
                             uint8_t *scalars, uint8_t *inv);

/* out_i = BLAKE2b(in_i, key, personal) truncated to outlen (in_i = inlen bytes). */
int mm_blake2b_rows(const mm_sodium_fns *f, const uint8_t *in, size_t inlen, size_t n,
                    const uint8_t *key, size_t keylen, const uint8_t personal[16],
                    uint8_t *out, size_t outlen, int nthreads);

/* out_i = BLAKE2b(item_i, key, zero salt, personal) truncated to outlen, for items of
 * any length (item i = data[offsets[i] .. offsets[i+1]]): the digests of
 * meshmpc.crypto.hashing.item_hash, on nthreads threads. */
int mm_blake2b_items(const mm_sodium_fns *f, const uint8_t *data, const int64_t *offsets,
                     size_t n, const uint8_t *key, size_t keylen, const uint8_t personal[16],
                     uint8_t *out, size_t outlen, int nthreads);

/* rows_i ^= AES-128-CTR keystream under key_i, counter blocks from starts[i]
 * (0 when starts is NULL), len bytes each. */
void mm_seal_rows(const uint8_t *keys, const uint64_t *starts, uint8_t *rows, size_t len,
                  size_t n, int nthreads);

#endif
