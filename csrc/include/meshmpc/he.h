/* meshmpc additively homomorphic encryption kernels (Paillier, Okamoto-Uchiyama).
 *
 * Batch big-integer operations over GMP for the schemes in meshmpc.crypto.he.
 * A batch of `count` numbers is a row-major array of little-endian 64-bit
 * limbs, `stride` limbs per number (stride 0 broadcasts one number to every
 * row) and `width` significant limbs read from each row. Outputs are written
 * zero-padded to `out_width` limbs per row. A modulus is (m, m_limbs) with a
 * non-zero top limb. Every entry point splits its rows over `nthreads` POSIX
 * threads and returns 0, or a negative MM_HE_E* code (nothing is partially
 * reported: on error the caller discards the output).
 *
 * All arithmetic is GMP's (mpz_mul, mpz_tdiv_r, mpz_invert, mpz_divexact) or,
 * for powers, fixed-base tables, packing and histograms, OpenSSL's Montgomery
 * BIGNUM code (faster on these sizes); these kernels only batch it, thread it
 * and move limbs. Fixed-base tables hold their entries in Montgomery form and
 * need an odd modulus (MM_HE_EEVEN otherwise), as do packing and histograms.
 */
#ifndef MESHMPC_HE_H
#define MESHMPC_HE_H

#include <stddef.h>
#include <stdint.h>

#define MM_HE_OK 0
#define MM_HE_EWIDTH (-1)   /* a result does not fit out_width limbs */
#define MM_HE_EBIN (-2)     /* a bin index is >= nbins */
#define MM_HE_EINVERT (-3)  /* a number has no inverse modulo m */
#define MM_HE_ENOMEM (-4)   /* out of memory (or an OpenSSL BIGNUM call failed) */
#define MM_HE_EEVEN (-5)    /* an even modulus where a Montgomery form is needed */
#define MM_HE_ENOTSUB (-6)  /* an L-function input is not 1 mod p (not of the key's group) */

typedef struct {
    const uint64_t *p; /* first limb of row 0 */
    size_t stride;     /* limbs between rows (0: broadcast) */
    size_t width;      /* limbs read per row */
} mm_he_vec;

/* out_i = a_i * b_i mod m */
int mm_he_mulmod(mm_he_vec a, mm_he_vec b, uint64_t *out, size_t out_width, size_t count,
                 const uint64_t *m, size_t m_limbs, int nthreads);
/* out_i = a_i ^ e_i mod m (e_i >= 0). With m of 32 limbs or more, odd, and e of 8
 * limbs or more: OpenSSL's constant-time Montgomery ladder; otherwise mpz_powm. */
int mm_he_powmod(mm_he_vec a, mm_he_vec e, uint64_t *out, size_t out_width, size_t count,
                 const uint64_t *m, size_t m_limbs, int nthreads);
/* out_i = a_i ^ e_i mod m for secret exponents of any length: always OpenSSL's
 * constant-time power (m odd, MM_HE_EEVEN otherwise). Decryption exponents. */
int mm_he_powmod_secret(mm_he_vec a, mm_he_vec e, uint64_t *out, size_t out_width, size_t count,
                        const uint64_t *m, size_t m_limbs, int nthreads);
/* out_i = a_i mod m */
int mm_he_mod(mm_he_vec a, uint64_t *out, size_t out_width, size_t count, const uint64_t *m,
              size_t m_limbs, int nthreads);
/* out_i = a_i^-1 mod m */
int mm_he_invert(mm_he_vec a, uint64_t *out, size_t out_width, size_t count, const uint64_t *m,
                 size_t m_limbs, int nthreads);
/* out_i = (a_i - 1) / p (the L function of Paillier and Okamoto-Uchiyama);
 * MM_HE_ENOTSUB when p does not divide a_i - 1 (a ciphertext outside the key's group) */
int mm_he_lfunc(mm_he_vec a, uint64_t *out, size_t out_width, size_t count, const uint64_t *p,
                size_t p_limbs, int nthreads);
/* out_i = 1 + a_i * n (Paillier's (1+n)^a mod n^2 for a < n; no reduction needed) */
int mm_he_linear(mm_he_vec a, uint64_t *out, size_t out_width, size_t count, const uint64_t *n,
                 size_t n_limbs, int nthreads);
/* CRT: out_i = x with x = a_i mod p, x = b_i mod q, 0 <= x < p*q; pinv = p^-1 mod q */
int mm_he_crt(mm_he_vec a, mm_he_vec b, uint64_t *out, size_t out_width, size_t count,
              const uint64_t *p, size_t p_limbs, const uint64_t *q, size_t q_limbs,
              const uint64_t *pinv, size_t pinv_limbs, int nthreads);
/* Fixed-base table: out[(j * 2^w + d) * m_limbs] = base^(d * 2^(w*j)) mod m,
 * for j < nwin, d < 2^w. */
int mm_he_fb_table(const uint64_t *base, size_t base_limbs, int w, size_t nwin, uint64_t *out,
                   const uint64_t *m, size_t m_limbs, int nthreads);
/* out_i = base^e_i mod m from a table of mm_he_fb_table (e_i < 2^(w*nwin)) */
int mm_he_fb_pow(const uint64_t *table, int w, size_t nwin, mm_he_vec e, uint64_t *out,
                 size_t out_width, size_t count, const uint64_t *m, size_t m_limbs,
                 int nthreads);
/* The same in constant time: every table entry of a window is read (masked)
 * and every window multiplied, whatever the exponent's digits (secret
 * randomisers and plaintexts); the cost grows with 2^w, so use a small w. */
int mm_he_fb_pow_ct(const uint64_t *table, int w, size_t nwin, mm_he_vec e, uint64_t *out,
                    size_t out_width, size_t count, const uint64_t *m, size_t m_limbs,
                    int nthreads);
/* Horner packing: out_i = prod_{j<k} c_{i,j}^(2^(shift*j)) mod m, where c_{i,j} is
 * row i*k + j of c (so the plaintexts become sum_j x_{i,j} * 2^(shift*j)). */
int mm_he_horner(mm_he_vec c, size_t k, size_t shift, uint64_t *out, size_t out_width,
                 size_t count, const uint64_t *m, size_t m_limbs, int nthreads);
/* Encrypted histogram: for every feature f < nfeat and every r < nrows,
 * out[f, bins[f*ldb + rows[r]]] *= c_{rows[r]} mod m (rows of c indexed by row id).
 * out is nfeat * nbins * m_limbs; a bin nothing falls into is 1 (the product of
 * nothing) and filled[f*nbins + b] = 0, else 1. With limits (NULL: none), rows
 * whose bin of feature f is >= limits[f] (but < nbins) are skipped: their bins
 * stay 1, unfilled (a caller that never reads those bins saves their products). */
int mm_he_hist(mm_he_vec c, const int64_t *rows, size_t nrows, const uint8_t *bins, size_t ldb,
               size_t nfeat, size_t nbins, const uint8_t *limits, uint64_t *out,
               uint8_t *filled, const uint64_t *m, size_t m_limbs, int nthreads);

#endif
