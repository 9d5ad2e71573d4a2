/* meshmpc PIR OPRF kernels: 2HashDH over Curve25519, the server's bulk
 * evaluation on the Montgomery ladder (X25519), the client's blinding on
 * edwards25519 (see protocols/pir.md, "OPRF").
 *
 * libsodium is not linked: the caller passes the addresses of the libsodium
 * functions (meshmpc.pir.oprf25519 loads them once from the system library).
 * Every group operation is one libsodium call. GMP does the two pieces of
 * field arithmetic libsodium does not expose: the quadratic-residue test of
 * the hash to curve (try and increment: mpz_jacobi) and the birational map
 * u -> y = (u - 1) / (u + 1) (mpz_invert).
 */
#ifndef MESHMPC_PIR_OPRF_H
#define MESHMPC_PIR_OPRF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int (*sha512_init)(void *state);
    int (*sha512_update)(void *state, const unsigned char *in, unsigned long long inlen);
    int (*sha512_final)(void *state, unsigned char *out);
    int (*x25519)(unsigned char *q, const unsigned char *n, const unsigned char *p);
    int (*ed_add)(unsigned char *r, const unsigned char *p, const unsigned char *q);
    int (*ed_mul_noclamp)(unsigned char *q, const unsigned char *n, const unsigned char *p);
    int (*ed_is_valid)(const unsigned char *p);
    int (*ed_to_u)(unsigned char *u, const unsigned char *ed);
    void (*scalar_reduce)(unsigned char *r, const unsigned char *s);
    void (*scalar_mul)(unsigned char *z, const unsigned char *x, const unsigned char *y);
    int (*scalar_invert)(unsigned char *recip, const unsigned char *s);
} mm_x25519_fns;

#define MM_X25519_FNS 11

/* u[i] = H1(item i): the u-coordinate of a uniform point of Curve25519 (try and
 * increment over SHA-512(domain || le64(len) || item || ctr) halves, each
 * reduced to 255 bits, accepted when below p, not in {0, 1, p - 1} and
 * u^3 + A u^2 + u is a non-zero square). Returns -1 or the first failing index. */
int64_t mm_x25519_h1(const mm_x25519_fns *f, const uint8_t *domain, size_t dlen,
                     const uint8_t *data, const int64_t *offsets, size_t n, uint8_t *u,
                     int nthreads);

/* out[i] = SHA-512(d2 || le64(len) || item || X25519(key, H1(item)))[:32]: the
 * server's PRF on its own items (key already clamped). -1 or the first failing index. */
int64_t mm_x25519_prf(const mm_x25519_fns *f, const uint8_t *key, const uint8_t *d1,
                      size_t d1len, const uint8_t *d2, size_t d2len, const uint8_t *data,
                      const int64_t *offsets, size_t n, uint8_t *out, int nthreads);

/* blinded[i] = r_i * 8 * Ed(u_i) on edwards25519 (Ed(u): y = (u-1)/(u+1), sign 0). */
int64_t mm_x25519_blind(const mm_x25519_fns *f, const uint8_t *u, const uint8_t *r, size_t n,
                        uint8_t *blinded, int nthreads);

/* out[i] = s_i * P_i on edwards25519 (step 0: one scalar), after checking that P_i
 * is a canonical point of the prime-order subgroup. -1 or the first bad index. */
int64_t mm_x25519_ed_mul(const mm_x25519_fns *f, const uint8_t *s, size_t step,
                         const uint8_t *points, size_t n, uint8_t *out, int nthreads);

/* out[i] = SHA-512(d2 || le64(len) || item || u(s_i * P_i))[:32]: the client's unblinding
 * and output hash. -1 or the first failing index. */
int64_t mm_x25519_finalize(const mm_x25519_fns *f, const uint8_t *s, const uint8_t *points,
                           const uint8_t *d2, size_t d2len, const uint8_t *data,
                           const int64_t *offsets, size_t n, uint8_t *out, int nthreads);

/* r_i = reduce(wide_i) (non-zero) and s_i = (8 r_i)^-1 mod L. -1 or the first zero index. */
int64_t mm_x25519_scalars(const mm_x25519_fns *f, const uint8_t *wide, size_t n, uint8_t *r,
                          uint8_t *s);

#endif
