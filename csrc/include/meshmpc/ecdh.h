/* meshmpc ECDH PSI kernels: batched X25519 (RFC 7748) for the ECDH PSI group.
 *
 * Two paths compute the same function, chosen at run time:
 *   MM_X25519_SODIUM  libsodium's crypto_scalarmult_curve25519, one point at a time;
 *   MM_X25519_MB8     Intel's multi-buffer mbx_x25519_mb8 (crypto_mb, from the
 *                     ipp-crypto wheel), eight points per call on AVX-512 IFMA.
 * Neither library is linked: libsodium's functions come as addresses from the
 * caller (meshmpc.crypto.sodium), crypto_mb is dlopen()ed by mm_x25519_mb_load
 * from paths the caller found in the installed wheel. No curve arithmetic
 * lives here: every scalar multiplication is one library call; this file
 * clamps scalars and canonicalises u-coordinates (RFC 7748 decoding, so that
 * both libraries see the same input) and checks the output is not all zero.
 */
#ifndef MESHMPC_ECDH_H
#define MESHMPC_ECDH_H

#include <stddef.h>
#include <stdint.h>

#define MM_X25519_SODIUM 0
#define MM_X25519_MB8 1

typedef struct {
    /* crypto_scalarmult_curve25519(q, n, p): 0, or -1 when q would be all zero */
    int (*scalarmult)(unsigned char *q, const unsigned char *n, const unsigned char *p);
    /* crypto_generichash_blake2b_salt_personal */
    int (*blake2b)(unsigned char *out, size_t outlen, const unsigned char *in,
                   unsigned long long inlen, const unsigned char *key, size_t keylen,
                   const unsigned char *salt, const unsigned char *personal);
} mm_ecdh_fns;

/* Try to make MM_X25519_MB8 usable: check the CPU (AVX-512 F/DQ/BW/IFMA/VBMI2)
 * unless check_cpu is 0, dlopen() paths[0..n-2] (the library's runtime
 * dependencies, RTLD_GLOBAL) and then paths[n-1] (libcrypto_mb), resolve
 * mbx_x25519_mb8 and ask the library (mbx_is_crypto_mb_applicable,
 * mbx_get_algo_info). Returns 1 when the path is ready, else 0 with the reason
 * in why (NUL-terminated). Call once, before any batch on the MB8 path. */
int mm_x25519_mb_load(const char *const *paths, size_t n, int check_cpu, char *why,
                      size_t whylen);

/* 1 when mm_x25519_mb_load has succeeded. */
int mm_x25519_mb_ready(void);

/* out_i = X25519(key, u_i) for n inputs on the given path. With personal NULL,
 * in holds n 32-byte u-coordinates; else n 16-byte digests d_i and
 * u_i = BLAKE2b-256(d_i, personal) (unkeyed, zero salt). Returns -1, the index
 * of the first input whose result is all zero (a low-order point), or -2 when
 * the path is unknown or not ready (nothing computed). */
int64_t mm_x25519_batch(const mm_ecdh_fns *f, int path, const uint8_t key[32],
                        const uint8_t *in, size_t n, const uint8_t *personal, uint8_t *out);

#endif
